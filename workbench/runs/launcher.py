"""A warm launcher: one idle process that has already imported the training stack and forks a worker per run.

Importing torch, transformers, peft and trl takes ~6 s on a small CPU, every time a worker starts. The UI starts
this launcher while a person is still choosing data and settings; a run started through it begins training
about a second after Start. Forking is safe here because the launcher itself never runs a tensor op, never
touches CUDA and starts no threads: each forked worker initialises those for itself. A forked worker calls
setsid, so like any other worker it outlives the UI and the launcher. It forks only for submitters whose
environment is the launcher's own (spawn.environment_differences); anyone else's run gets a fresh process.

    python -m workbench.runs.launcher --parent PID --parent-created T
        (started by the UI; leaves the moment that process ends, whenever that is, or after IDLE_SECONDS idle)
"""

from __future__ import annotations

import os

_STARTED_WITH = dict(os.environ)  # before anything below changes it: what a fresh worker would get
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see workbench/runs/worker.py: must precede torch's import
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from workbench import home  # noqa: E402
from workbench.runs import processes, spawn  # noqa: E402

IDLE_SECONDS = 30 * 60
_POLL_SECONDS = 1.0  # how often the launcher checks that the process that started it is still there
_PR_SET_PDEATHSIG = 1  # prctl(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.runs.launcher", description=__doc__.splitlines()[0])
    parser.add_argument("--parent", type=int, required=True, help="leave when this process ends")
    parser.add_argument("--parent-created", type=float, help="the parent's creation time (tells it from a newcomer)")
    args = parser.parse_args(argv)
    home.private_files()  # the workers it forks inherit this
    parent = (args.parent, args.parent_created)
    # Before the heavy imports: a UI that ended while we started (a port clash, Ctrl-C) must not leave us behind.
    watcher = _leave_with(parent)
    if not processes.alive(*parent) or spawn.running_launcher() is not None:
        return 0  # our UI is gone already, or two starts raced: one launcher per data directory is enough
    spawn.pid_path().write_text(json.dumps({"pid": os.getpid(), "created": processes.created(os.getpid())}))
    _import_training_stack()
    if watcher is not None:  # no thread may run once we fork; from here the accept loop watches the parent
        watcher.set()
    serve(parent)
    return 0


def _leave_with(parent: tuple[int, float | None]) -> threading.Event | None:
    """Make this process end when `parent` does: the kernel's parent-death signal on Linux (checked once more
    after asking, since the parent may have gone just before), else a watching thread, stopped by the event."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) == 0 and os.getppid() == parent[0]:
            return None
    except (OSError, AttributeError):
        pass
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            if not processes.alive(*parent):
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    return done


def _import_training_stack() -> None:
    # Everything a worker imports, imported once here.
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    import workbench.runs.worker  # noqa: F401
    from workbench import data, methods, models  # noqa: F401
    from workbench.training import artifacts, callbacks, hardware, sft, varlen_attention  # noqa: F401


def serve(parent: tuple[int, float | None]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked workers are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the parent-death signal: leave through `finally`
    path = spawn.socket_path()
    staging = path.with_name(f".launcher-{os.getpid()}.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(staging))
    server.listen()
    staging.rename(path)  # appears only once it accepts connections
    ours = path.stat().st_ino
    idle_since = time.monotonic()
    server.settimeout(_POLL_SECONDS)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                # Leave with whoever started us (the UI): workers already forked live on in their own sessions.
                if not processes.alive(*parent) or time.monotonic() - idle_since > IDLE_SECONDS:
                    return
                continue
            idle_since = time.monotonic()
            with conn:
                line = spawn.read_line(conn)
                if not line:
                    continue  # a liveness probe
                request = json.loads(line)
                differences = spawn.environment_differences(request["env"], _STARTED_WITH)
                if differences:  # the caller starts a fresh process, with exactly its environment
                    sys.stderr.write(f"not forking for an environment that differs in {', '.join(differences)}\n")
                pid = None if differences else _fork_worker(request, server)
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
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
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the worker installs its own stop handler
        _no_parent_death_signal()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()  # exactly the submitter's environment, nothing of the launcher's
        os.environ.update(request["env"])
        from workbench.runs import worker

        code = worker.main(request["argv"])
    except BaseException:  # noqa: B036  the child must never return into the launcher's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _no_parent_death_signal() -> None:
    # A forked worker inherits the launcher's parent-death signal; it must outlive the launcher and the UI.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, 0)
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
