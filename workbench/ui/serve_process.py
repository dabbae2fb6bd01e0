"""The OpenAI-compatible server the Chat tab starts: `python -m workbench serve RUN ... --port P` in a process of its
own (the UI process never imports torch), one per data home.

How it does not outlive the app: it runs in a session of its own, so its whole process group can be signalled and a
Ctrl-C in the app's terminal reaches only the app, which stops it as it ends (`stop`, called on exit and on
SIGTERM). For an app that is killed outright, the server watches it (`serve --exit-with PID`: it exits once that
process is gone), and its pid, with its creation time, is kept in `<home>/serve/server.json`, so the next app
tells whether it still runs and never signals a newcomer with a reused pid. (The kernel's parent-death signal is not
used: it fires when the *thread* that started the child ends, and Gradio's events run in pooled threads.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import home
from workbench.api.serve import API_KEY_ENV
from workbench.errors import WorkbenchError
from workbench.runs import processes, spawn

READY_SECONDS = 300  # loading a base model and its adapters; minutes on a slow CPU for a large base
_STOP_GRACE_SECONDS = 10
_started_here: set[int] = set()  # pids of the servers this process started, stopped as it ends


@dataclass(frozen=True)
class Server:
    """A started server: its process, where it listens, what it serves and its log."""

    pid: int
    created: float | None
    host: str
    port: int
    runs: tuple[str, ...]
    log: str
    api_key: bool  # whether requests need `Authorization: Bearer $WORKBENCH_SERVE_API_KEY`

    @property
    def url(self) -> str:
        """The API's base URL as a client on this machine reaches it."""
        return f"http://127.0.0.1:{self.port}/v1"


def folder() -> Path:
    path = home.home() / "serve"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _state_file() -> Path:
    return folder() / "server.json"


def current() -> Server | None:
    """The server this data home's app started, if it is still running."""
    try:
        found = json.loads(_state_file().read_text())
        server = Server(**{**found, "runs": tuple(found["runs"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if processes.alive(server.pid, server.created):
        return server
    _state_file().unlink(missing_ok=True)
    return None


def start(runs: list[str], port: int) -> Server:
    """Start `python -m workbench serve RUNS --port PORT` and return at once (see `wait_ready`).

    Bound to 127.0.0.1; with WORKBENCH_SERVE_API_KEY set in the app's environment (as in the Docker image), to
    every interface, and every request needs that key."""
    running = current()
    if running is not None:
        raise WorkbenchError(f"a server is already running at {running.url}: stop it first")
    if not runs:
        raise WorkbenchError("choose one or more finished runs to serve")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise WorkbenchError(f"port {port} is in use: choose another") from None
    keyed = bool(os.environ.get(API_KEY_ENV))
    host = "0.0.0.0" if keyed else "127.0.0.1"
    log = folder() / "serve.log"
    command = [sys.executable, "-m", "workbench", "serve", *runs, "--host", host, "--port", str(port)]
    command += ["--exit-with", str(os.getpid())]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            env=spawn.worker_env(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process.pid, processes.created(process.pid), host, port, tuple(runs), str(log), keyed)
    _started_here.add(process.pid)
    _state_file().write_text(json.dumps(asdict(server)))
    return server


def wait_ready(server: Server, seconds: float = READY_SECONDS) -> list[str]:
    """Wait until the server answers `GET /v1/models`; the models it serves. Raises WorkbenchError with the end of
    its log if it exits first, or when it does not answer in time."""
    import httpx

    key = os.environ.get(API_KEY_ENV)
    headers = {"Authorization": f"Bearer {key}"} if server.api_key and key else {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not processes.alive(server.pid, server.created):
            _state_file().unlink(missing_ok=True)
            raise WorkbenchError(f"the server stopped before it answered:\n{log_tail(server)}")
        try:
            reply = httpx.get(f"{server.url}/models", headers=headers, timeout=2)
            if reply.status_code == 200:
                return [model["id"] for model in reply.json()["data"]]
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise WorkbenchError(f"the server did not answer within {seconds:.0f} s (log: {server.log})")


def log_tail(server: Server, lines: int = 6) -> str:
    """The last lines of the server's log."""
    try:
        text = Path(server.log).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def stop() -> Server | None:
    """Stop the running server (SIGTERM to its process group, SIGKILL after a grace period); the one stopped."""
    server = current()
    if server is None:
        return None
    processes.signal_group(server.pid, server.created, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    while processes.alive(server.pid, server.created) and time.monotonic() < deadline:
        time.sleep(0.1)
    processes.signal_group(server.pid, server.created, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return server


def stop_own() -> None:
    """Stop the server if this process started it (as the app ends; another app's server on this home is kept)."""
    server = current()
    if server is not None and server.pid in _started_here:
        stop()
