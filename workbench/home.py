"""The workbench's data directory: one folder for models, datasets, runs and the job database."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The data directory: `$WORKBENCH_HOME`, else `~/.cache/workbench`."""
    root = os.environ.get("WORKBENCH_HOME") or Path.home() / ".cache" / "workbench"
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Converted models; `$WORKBENCH_MODELS` may point elsewhere so several homes share one copy."""
    override = os.environ.get("WORKBENCH_MODELS")
    if override:
        path = Path(override).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return _sub("models")


def datasets_dir() -> Path:
    return _sub("datasets")


def runs_dir() -> Path:
    return _sub("runs")


def jobs_db() -> Path:
    return home() / "jobs.sqlite"


def collected_dir() -> Path:
    """Datasets made in the workbench itself (ratings from the Chat tab)."""
    return _sub("collected")


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
