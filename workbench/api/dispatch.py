"""Which requests generate when: the server's one model works on one batch at a time, requests wait in a bounded
line, and a full line refuses at once (429), so a burst cannot pile up unbounded work and memory.

Whenever the engine is free, the oldest waiting request goes, together with up to `max_batch - 1` later ones that
may share its batch (the same way of sampling; see Sampling.batch_key). A batch runs to its end: requests that
arrive meanwhile wait for the next one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Future
from typing import Any

from workbench.api.request import Request
from workbench.errors import WorkbenchError


class QueueFull(WorkbenchError):
    """Too many requests are already waiting."""

    category = "rate_limit_exceeded"


class Dispatcher:
    """Runs `engine.generate(batch)` in a worker thread, one batch at a time; lives on the server's event loop."""

    def __init__(self, engine: Any, *, max_batch: int = 1, waiting: int = 16):
        self.engine, self.max_batch, self.waiting = engine, max_batch, waiting
        self._pending: deque[Request] = deque()
        self._busy = False

    @property
    def queued(self) -> int:
        """Requests waiting now."""
        return len(self._pending)

    def submit(self, request: Request) -> None:
        """Queue a request (its `send` hears the rest); QueueFull at once if the line is full."""
        if self._busy and len(self._pending) >= self.waiting:
            raise QueueFull(f"the server is busy: {len(self._pending)} requests are waiting; retry later")
        self._pending.append(request)
        self._start_next()

    def withdraw(self, request: Request) -> None:
        """Forget a request whose client has gone: a waiting one leaves the line; a generating one has been
        cancelled and stops taking tokens."""
        request.cancel.set()
        if request in self._pending:
            self._pending.remove(request)

    def _start_next(self) -> None:
        if self._busy or not self._pending:
            return
        first = self._pending.popleft()
        batch = [first]
        for request in list(self._pending):
            if len(batch) == self.max_batch:
                break
            if request.sampling.batch_key == first.sampling.batch_key:
                batch.append(request)
                self._pending.remove(request)
        self._busy = True
        running = asyncio.get_running_loop().run_in_executor(None, self.engine.generate, batch)
        running.add_done_callback(self._finished)

    def _finished(self, running: Future) -> None:
        self._busy = False
        running.exception()  # each request of the batch has been sent the error, if there was one
        self._start_next()
