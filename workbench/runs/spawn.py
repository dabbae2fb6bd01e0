"""Starting a worker process for a claimed run: forked by the warm launcher when one runs with the same
environment, else a fresh `python -m workbench.runs.worker`. Either way the worker runs in a session of its own
(it outlives whoever started it) with the environment of whoever submitted the run, and writes to its log file,
never a pipe.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from workbench import home
from workbench.runs import processes

_CONNECT_TIMEOUT = 2.0
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent

# Variables that differ between shells (and one that Gradio sets) without changing what a worker does: a launcher
# forks workers for submitters whose environments differ only in these. Any other difference means a fresh
# process, since the launcher's imports have read its own environment (HF_HUB_OFFLINE, CUDA_VISIBLE_DEVICES, ...).
_IRRELEVANT = {"_", "PWD", "OLDPWD", "SHLVL", "TERM", "COLUMNS", "LINES", "PS1", "PS2", "LS_COLORS", "HISTFILE"}
# Gradio sets this in the UI process; read at import, it changes only whether the hub is pinged, never training.
_IRRELEVANT.add("HF_HUB_DISABLE_TELEMETRY")
_NOISE_PREFIXES = ("GRADIO_", "SSH_", "TERM_", "XDG_SESSION", "PYTEST_")


def socket_path() -> Path:
    return home.home() / "launcher.sock"


def pid_path() -> Path:
    return home.home() / "launcher.pid"


def worker_env(env: Mapping[str, str]) -> dict[str, str]:
    """A submitter's environment as its worker gets it: the data directory and the package made explicit."""
    env = dict(env)
    env["WORKBENCH_HOME"] = str(home.home())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see workbench/runs/worker.py
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    return env


def environment_differences(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    """The variables that keep a worker forked from a process with environment `a` from behaving as one started
    fresh with `b` (names only: values may be secrets); empty when it may be forked."""

    def relevant(env: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in env.items() if k not in _IRRELEVANT and not k.startswith(_NOISE_PREFIXES)}

    ra, rb = relevant(a), relevant(b)
    return sorted(k for k in ra.keys() | rb.keys() if ra.get(k) != rb.get(k))


def start_worker(run_dir: Path, db: Path, claim: str, env: Mapping[str, str]) -> int:
    """Start the worker of a claimed run, forked by the launcher where it can; its pid. Raises OSError when no
    process could be started."""
    pid = _ask_launcher(_worker_args(run_dir, db, claim), run_dir / "log.txt", worker_env(env))
    return pid if pid is not None else start_fresh(run_dir, db, claim, env)


def start_fresh(run_dir: Path, db: Path, claim: str, env: Mapping[str, str]) -> int:
    """Start the worker of a claimed run as a new Python process; its pid."""
    with (run_dir / "log.txt").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.runs.worker", *_worker_args(run_dir, db, claim)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(env),
            start_new_session=True,  # its own process group: a stop reaches the worker and its children
        )
    # Reap it when it exits so a long-lived parent (the UI server) collects no zombies.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def _worker_args(run_dir: Path, db: Path, claim: str) -> list[str]:
    return [str(run_dir), "--db", str(db), "--claim", claim]


def _ask_launcher(argv: list[str], log: Path, env: dict[str, str]) -> int | None:
    """The pid of a worker forked by this data directory's launcher; None when none runs or it cannot fork for
    this environment (the caller starts a fresh process)."""
    path = socket_path()
    if not path.exists():
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_CONNECT_TIMEOUT)
            conn.connect(str(path))
            conn.sendall(json.dumps({"argv": argv, "log": str(log), "env": env}).encode() + b"\n")
            reply = json.loads(read_line(conn))
    except (OSError, ValueError):
        return None  # a stale socket from a launcher that is gone
    return reply.get("pid")


def ensure_launcher() -> None:
    """Start a launcher for this data directory unless one is running or starting (returns at once).

    The launcher gets this process's pid and creation time, and leaves as soon as this process ends.
    """
    path = socket_path()
    if path.exists():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(_CONNECT_TIMEOUT)
                conn.connect(str(path))
                return
        except OSError:
            path.unlink(missing_ok=True)
    if running_launcher() is not None:  # still importing: it listens in a few seconds
        return
    parent = os.getpid()
    log = os.open(home.home() / "launcher.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "workbench.runs.launcher", "--parent", str(parent), "--parent-created",
             repr(processes.created(parent))],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(os.environ),  # a UI's runs are forked: their environment is the launcher's
            start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(log)


def running_launcher() -> int | None:
    """The pid of a live launcher of this data directory (another process than this one), if any."""
    try:
        record = json.loads(pid_path().read_text())
        pid, created = int(record["pid"]), float(record["created"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid != os.getpid() and processes.alive(pid, created) else None


def read_line(conn: socket.socket) -> str:
    chunks = b""
    while not chunks.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks += chunk
    return chunks.decode()
