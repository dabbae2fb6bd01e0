"""Export steps that load models run in a child process, `python -m workbench.export COMMAND ...`: whoever asks
for them (the web UI included) never imports torch. The child's last stdout line says why it failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from workbench.errors import ModelLoadError, OutOfMemoryError, WorkbenchError, describe

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def run_child(args: list[str], what: str, *, offline: bool) -> None:
    """Run `python -m workbench.export *args`; raise a WorkbenchError ("<what> failed: ...") if it fails.

    `offline`: everything the child reads is on disk, so it makes no hub look-ups that could stall.
    """
    env = {**os.environ}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "workbench.export", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise child_error(result, what)


def child_error(result: subprocess.CompletedProcess, what: str) -> WorkbenchError:
    """The error a failed child reported, as the WorkbenchError subclass of its category."""
    try:
        failure = json.loads(result.stdout.strip().splitlines()[-1])
        category, message = failure["category"], failure["message"]
    except (IndexError, ValueError, KeyError, TypeError):
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        return WorkbenchError(f"{what} failed (exit code {result.returncode}):\n{tail}")
    if category == "model":
        return ModelLoadError(message)
    if category == "oom":
        return OutOfMemoryError(message)
    error = WorkbenchError(f"{what} failed: {message}")
    error.category = category
    return error


def report_failures(work: Callable[[], None]) -> int:
    """The child's side: run `work`; on failure print the traceback (stderr) and the reason (last stdout line)."""
    try:
        work()
    except Exception as err:
        traceback.print_exc()
        category, message = describe(err)
        sys.stdout.write(json.dumps({"category": category, "message": message}) + "\n")
        return 1
    return 0
