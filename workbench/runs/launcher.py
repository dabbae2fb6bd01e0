"""A warm launcher: one idle process that has already imported the training stack and forks a worker per run.

Importing torch, transformers, peft and trl takes ~6 s on a small CPU, every time a worker starts. The UI starts
this launcher while a person is still choosing data and settings; a run started through it begins training
about a second after Start. Forking is safe here because the launcher itself never runs a tensor op, never
touches CUDA and starts no threads: each forked worker initialises those for itself. A forked worker calls
setsid, so like any other worker it outlives the UI and the launcher.

    python -m workbench.launcher      (started by the UI; exits with it, or after IDLE_SECONDS idle)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see workbench/worker.py: must precede torch's import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from workbench import home  # noqa: E402

IDLE_SECONDS = 30 * 60
_POLL_SECONDS = 2.0  # how often an idle launcher checks whether the process that started it is still there
_CONNECT_TIMEOUT = 2.0


def socket_path() -> Path:
    return home.home() / "launcher.sock"


def pid_path() -> Path:
    return home.home() / "launcher.pid"


def start_worker(run_dir: Path, log: Path, env: dict[str, str]) -> int | None:
    """Ask a running launcher to fork a worker for `run_dir`; its pid, or None when no launcher answers."""
    path = socket_path()
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_CONNECT_TIMEOUT)
            conn.connect(str(path))
            conn.sendall(json.dumps({"run_dir": str(run_dir), "log": str(log), "env": env}).encode() + b"\n")
            reply = json.loads(_read_line(conn))
    except (OSError, ValueError):
        return None  # a stale socket from a launcher that is gone: the caller starts the worker itself
    return reply.get("pid")


def ensure_running() -> None:
    """Start a launcher for this data directory unless one is running or starting (returns at once)."""
    path = socket_path()
    if path.exists():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(_CONNECT_TIMEOUT)
                conn.connect(str(path))
                return
        except OSError:
            path.unlink(missing_ok=True)
    if _other_launcher() is not None:  # still importing: it listens in a few seconds
        return
    log = (home.home() / "launcher.log").open("ab")
    subprocess.Popen(
        [sys.executable, "-m", "workbench.runs.launcher"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "WORKBENCH_HOME": str(home.home())},
        start_new_session=True,
    )


def _other_launcher() -> int | None:
    """The pid of another live launcher of this data directory, if its pid file names one."""
    try:
        pid = int(pid_path().read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and b"workbench.runs.launcher" in cmdline else None


def serve() -> None:
    if _other_launcher() is not None:
        return  # two starts raced: one launcher per data directory is enough
    pid_path().write_text(str(os.getpid()))  # first, so whoever started it can always stop it
    # Everything a worker imports, imported once here.
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    import workbench.runs.worker  # noqa: F401
    from workbench import data, methods, models  # noqa: F401
    from workbench.training import artifacts, callbacks, hardware, sft, varlen_attention  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped by the kernel
    path = socket_path()
    staging = path.with_name(f".launcher-{os.getpid()}.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(staging))
    server.listen()
    staging.rename(path)  # appears only once it accepts connections
    ours = path.stat().st_ino
    parent, idle_since = os.getppid(), time.monotonic()
    server.settimeout(_POLL_SECONDS)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                # Leave with whoever started us (the UI): workers already forked live on in their own sessions.
                if os.getppid() != parent or time.monotonic() - idle_since > IDLE_SECONDS:
                    return
                continue
            idle_since = time.monotonic()
            with conn:
                line = _read_line(conn)
                if not line:
                    continue  # a liveness probe
                request = json.loads(line)
                conn.sendall(json.dumps({"pid": _fork_worker(request, server)}).encode() + b"\n")
    finally:
        if path.exists() and path.stat().st_ino == ours:  # not a newer launcher's socket
            path.unlink()


def _fork_worker(request: dict, server: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        server.close()
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the worker's own subprocesses are waited for normally
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(request["env"])
        from workbench.runs import worker

        code = worker.main([request["run_dir"]])
    except BaseException:  # noqa: B036  the child must never return into the launcher's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _read_line(conn: socket.socket) -> str:
    chunks = b""
    while not chunks.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks += chunk
    return chunks.decode()


if __name__ == "__main__":
    serve()
