"""What the benches share: train a config the way a run from the UI or the CLI does, in a fresh worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from workbench.config import save_config
from workbench.runs.files import RunFiles

REPO = Path(__file__).resolve().parent.parent
# Settings every bench run shares: a fixed number of steps at a constant rate, no checkpoint in the timing.
STEADY_TRAIN = {"lr_scheduler_type": "constant", "save_steps": 10_000, "seed": 42}


def train_in_worker(config: Any, run_dir: Path) -> tuple[RunFiles, str | None]:
    """Freeze `config` into `run_dir` and run `python -m workbench.worker` on it; returns the run's files and
    its error (None when it finished)."""
    save_config(config, run_dir / "config.yaml")
    files = RunFiles(run_dir)
    result = subprocess.run(
        [sys.executable, "-m", "workbench.runs.worker", str(run_dir)], cwd=REPO, capture_output=True, text=True
    )
    status = files.read_status()
    if result.returncode != 0 or status.get("state") != "finished":
        return files, status.get("error") or result.stderr[-2000:]
    return files, None
