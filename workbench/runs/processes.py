"""Which process is a run's worker: its pid together with its creation time, so that a later process that happens
to get the same pid is never taken for it, and never signalled in its place; and, inside the worker, the stop it
was asked for."""

from __future__ import annotations

import contextlib
import math
import os
import signal
from typing import Any

import psutil


def created(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None when there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether `pid` is still the process that started at `started`: not gone, not a zombie, not a newcomer."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or math.isclose(process.create_time(), started, rel_tol=0, abs_tol=1e-3)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: ours never is
        return False


def signal_group(pid: int | None, started: float | None, sig: signal.Signals) -> bool:
    """Send `sig` to the process group a worker leads, only if `pid` is still that worker; whether it was sent."""
    if started is None or not alive(pid, started):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
        return True
    return False


class StopRequest:
    """Set by SIGTERM/SIGINT; the callback then saves a checkpoint and ends training after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
