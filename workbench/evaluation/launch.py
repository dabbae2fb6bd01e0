"""An evaluation in a process of its own (`python -m workbench eval RUN_DIR ...`), for callers that must not load
models, such as the web UI. Its output goes to RUN/eval/log.txt (a file, never a pipe: nobody has to drain it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.runs.files import RunFiles

LOG = "log.txt"


def start(
    files: RunFiles,
    *,
    probe: bool = False,
    data: Path | None = None,
    limit: int | None = None,
    probe_limit: int | None = None,
    threads: int | None = None,
) -> subprocess.Popen:
    """Start evaluating the finished run in `files`; RUN/eval/report.json appears when it is done (exit code 0)."""
    files.evaluation.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "workbench", "eval", str(files.root)]
    command += ["--probe"] if probe else []
    for flag, value in (("--data", data), ("--limit", limit), ("--probe-limit", probe_limit), ("--threads", threads)):
        command += [flag, str(value)] if value is not None else []
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    with (files.evaluation / LOG).open("w", encoding="utf-8") as log:
        # A session of its own: stopping it (SIGTERM to the group) reaches lm-eval's and torch's threads too.
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
