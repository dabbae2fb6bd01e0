"""Bounded concurrency for a server with one model: one generation at a time, a bounded line of waiting requests,
and a refusal (429) once the line is full, so a burst cannot pile up unbounded work and memory."""

from __future__ import annotations

import asyncio

from workbench.errors import WorkbenchError


class QueueFull(WorkbenchError):
    """Too many requests are already waiting."""

    category = "rate_limit_exceeded"


class Admission:
    """`running` generations at once; up to `waiting` more wait their turn in arrival order."""

    def __init__(self, running: int = 1, waiting: int = 16):
        self.running, self.waiting = running, waiting
        self._slots = asyncio.Semaphore(running)
        self._queued = 0

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return self._queued

    async def acquire(self) -> Slot:
        """Wait for a slot; QueueFull at once if the line is full. Release the slot when the generation ends."""
        if self._slots.locked() and self._queued >= self.waiting:
            raise QueueFull(
                f"the server is busy: {self.running} request(s) generating and {self._queued} waiting; retry later"
            )
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        return Slot(self._slots)


class Slot:
    """A held generation slot; `release` may be called more than once (a stream's end and its response's both)."""

    def __init__(self, slots: asyncio.Semaphore):
        self._slots: asyncio.Semaphore | None = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None
