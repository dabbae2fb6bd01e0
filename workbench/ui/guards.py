"""Two guards in front of the Gradio app (plain ASGI middleware, so they see every request, page and API alike).

- `LoopbackHostOnly`: a server without a password answers only requests addressed to this machine by a loopback
  name. A web page elsewhere can point its own domain at 127.0.0.1 (DNS rebinding) and so read a local server
  as its own origin; its requests still carry its domain in the Host header, and are refused here.
- `LoginThrottle`: failed logins from one client wait 1 s, then 2, 4, ... up to a cap, one attempt at a time, so
  guessing a password from the page takes years rather than hours; a successful login starts again from nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REFUSED_HOST = (
    b"This workbench answers only requests addressed to localhost. To reach it from another machine, serve it "
    b"with --auth user:password."
)


def is_loopback_name(host: str) -> bool:
    """Whether a Host header (or a bind address) names this machine: localhost, 127.x.x.x or ::1, any port."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:7860
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:  # name:port (more colons: a bare IPv6 address)
        host = host.partition(":")[0]
    host = host.rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackHostOnly:
    """Refuse (403) every HTTP or websocket request whose Host header is not a loopback name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or is_loopback_name(_header(scope, b"host")):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": REFUSED_HOST})


@dataclass
class _Client:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    last_failure: float = 0.0


class LoginThrottle:
    """Slow failed logins down per client address: each failure answers after `base * 2**(n-1)` seconds (at most
    `cap`), attempts from one client are taken one at a time, and a success (or `forget` seconds without a
    failure) clears the count. Behind a reverse proxy every client shares the proxy's address, and its count."""

    def __init__(self, app: ASGIApp, base: float = 1.0, cap: float = 30.0, forget: float = 900.0) -> None:
        self.app, self.base, self.cap, self.forget = app, base, cap, forget
        self._clients: dict[str, _Client] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            await self.app(scope, receive, send)
            return
        client = self._client(scope)
        async with client.lock:
            # The answer is held back until its status is known, so a failure can be slowed before it is sent.
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
            now = time.monotonic()
            if status < 400:
                client.failures = 0
            else:
                if now - client.last_failure > self.forget:
                    client.failures = 0
                client.failures += 1
                client.last_failure = now
                await asyncio.sleep(self.delay(client.failures))
        for message in held:
            await send(message)

    def delay(self, failures: int) -> float:
        """Seconds a client's `failures`-th failure in a row waits."""
        return min(self.base * 2 ** min(failures - 1, 32), self.cap)

    def _client(self, scope: Scope) -> _Client:
        address = (scope.get("client") or ("unknown",))[0]
        if len(self._clients) > 10_000:  # many addresses: forget those that are not waiting now
            idle = [key for key, c in self._clients.items() if not c.lock.locked()]
            for key in idle:
                del self._clients[key]
        return self._clients.setdefault(address, _Client())


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""
