"""Slow down credential guessing on the APIs as the UI's login is slowed (workbench/ui/guards.py): each failed
attempt from one client address answers after 1 s, 2 s, 4 s, ... (at most 30 s), one attempt at a time; a success,
or 15 minutes without a failure, starts the count again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request


@dataclass
class _Client:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    last_failure: float = 0.0


class FailureThrottle:
    """Wraps a credential check: `await throttle.check(request, accepted)`; True when `accepted(request)` is."""

    def __init__(self, base: float = 1.0, cap: float = 30.0, forget: float = 900.0):
        self.base, self.cap, self.forget = base, cap, forget
        self._clients: dict[str, _Client] = {}

    async def check(self, request: Request, accepted: Callable[[Request], bool | Awaitable[bool]]) -> bool:
        address = request.client.host if request.client else "unknown"
        if len(self._clients) > 10_000:  # many addresses: forget those not waiting now
            for key in [k for k, c in self._clients.items() if not c.lock.locked()]:
                del self._clients[key]
        client = self._clients.setdefault(address, _Client())
        async with client.lock:
            ok = accepted(request)
            if not isinstance(ok, bool):
                ok = await ok
            now = time.monotonic()
            if ok:
                client.failures = 0
                return True
            if now - client.last_failure > self.forget:
                client.failures = 0
            client.failures += 1
            client.last_failure = now
            await asyncio.sleep(min(self.base * 2 ** min(client.failures - 1, 32), self.cap))
            return False
