"""A stand-in worker for tests of the queue's races: a real process that keeps the worker's side of the claim
protocol (records itself under its claim, leaves if the claim is gone) and then idles instead of training, so
that hundreds of starts take seconds. Everything else (the store, the queue, signals) is the real thing."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import psutil

_SCRIPT = """
import os, sys, time
from pathlib import Path
from workbench.runs.store import JobStore
from workbench.runs import processes
run_dir, db, claim = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if not JobStore(db).record_worker(run_dir.name, claim, os.getpid(), processes.created(os.getpid())):
    sys.exit(0)
time.sleep(float(sys.argv[4]))
"""


def standin_spawner(seconds: float = 30.0):
    """A spawner for RunQueue that starts a stand-in worker which idles `seconds` once it holds its claim."""

    def spawn(run_dir: Path, db: Path, claim: str, env: Mapping[str, str]) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(run_dir), str(db), claim, str(seconds)],
            env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            start_new_session=True,
        )
        threading.Thread(target=proc.wait, daemon=True).start()
        return proc.pid

    return spawn


def standins_of(run_dir: Path) -> list[psutil.Process]:
    """Live stand-in workers holding (or trying to hold) the run in `run_dir`."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if str(run_dir) in cmdline and "-c" in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found
