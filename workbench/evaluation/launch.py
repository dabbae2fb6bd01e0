"""An evaluation in a process of its own (`python -m workbench eval RUN_DIR ...`), for callers that must not load
models, such as the web UI. Its output goes to RUN/eval/log.txt (a file, never a pipe: nobody has to drain it), and
RUN/eval/process.json says which process it is, so that any reader (a page reloaded, an app restarted) can tell
whether it is still running, finished or failed from the files alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

from workbench.runs import processes
from workbench.runs.files import RunFiles, write_json_atomic

LOG = "log.txt"
PROCESS = "process.json"
State = Literal["running", "finished", "failed"]


def start(
    files: RunFiles,
    *,
    probe: bool = False,
    data: Path | None = None,
    split: Literal["test", "validation"] = "test",
    limit: int | None = None,
    probe_limit: int | None = None,
    threads: int | None = None,
) -> subprocess.Popen:
    """Start evaluating the finished run in `files`; RUN/eval/report.json appears when it is done (exit code 0)."""
    files.evaluation.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "workbench", "eval", str(files.root), "--split", split]
    command += ["--probe"] if probe else []
    for flag, value in (("--data", data), ("--limit", limit), ("--probe-limit", probe_limit), ("--threads", threads)):
        command += [flag, str(value)] if value is not None else []
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    launched = time.time()
    with (files.evaluation / LOG).open("w", encoding="utf-8") as log:
        # A session of its own: stopping it (SIGTERM to the group) reaches lm-eval's and torch's threads too.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    # The pid with its creation time: a later process that gets the same pid is never taken for this one.
    record = {"pid": process.pid, "created": processes.created(process.pid), "launched": launched}
    write_json_atomic(files.evaluation / PROCESS, record)
    return process


def state(files: RunFiles) -> State | None:
    """Where the run's latest evaluation started from here stands: running; finished (its report is newer than
    its start); failed (its process is gone without writing one: the log says why); None when none was started
    (an evaluation run from the CLI shows only its report)."""
    record = _record(files)
    if record is None:
        return None
    if processes.alive(record.get("pid"), record.get("created")):
        return "running"
    report = files.evaluation / "report.json"
    if report.is_file() and report.stat().st_mtime >= record.get("launched", 0):
        return "finished"
    return "failed"


def started_at(files: RunFiles) -> float | None:
    """When the latest evaluation started from here was launched (seconds since the epoch)."""
    return (_record(files) or {}).get("launched")


def _record(files: RunFiles) -> dict | None:
    try:
        return json.loads((files.evaluation / PROCESS).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
