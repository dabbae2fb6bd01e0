"""The workbench's data directory: one folder for models, datasets, runs and the job database.

It holds the user's data and trained weights, so only the user may enter it: the folder is made (and, where an
older one is looser, set) 0700; the entry points set umask 077 (`private_files`), so what is written inside is 0600.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077

log = logging.getLogger(__name__)


def home() -> Path:
    """The data directory: `$WORKBENCH_HOME`, else `~/.cache/workbench`; made private to the user."""
    root = os.environ.get("WORKBENCH_HOME") or Path.home() / ".cache" / "workbench"
    path = Path(root).expanduser().resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _make_private(path)
    return path


def private_files() -> None:
    """Make everything this process (and its children) creates readable by the user only (umask 077)."""
    os.umask(PRIVATE_UMASK)


@functools.cache
def _make_private(path: Path) -> None:
    # Once per folder and process: home() is called for every path the workbench builds.
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(mode & 0o700)
        except PermissionError:  # not ours (WORKBENCH_HOME=/tmp): say so rather than fail every call
            log.warning("the data directory %s is open to other users (mode %o) and cannot be changed", path, mode)


def models_dir() -> Path:
    """Converted models; `$WORKBENCH_MODELS` may point elsewhere so several homes share one copy."""
    override = os.environ.get("WORKBENCH_MODELS")
    if override:
        path = Path(override).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return _sub("models")


def tools_dir() -> Path:
    """Helper programs fetched once (llama.cpp's GGUF converter); `$WORKBENCH_TOOLS` may point elsewhere so
    several homes share one copy."""
    override = os.environ.get("WORKBENCH_TOOLS")
    if override:
        path = Path(override).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return _sub("tools")


def datasets_dir() -> Path:
    return _sub("datasets")


def runs_dir() -> Path:
    return _sub("runs")


def jobs_db() -> Path:
    return home() / "jobs.sqlite"


def evaluations_dir() -> Path:
    """Evaluations of base models on their own (`eval MODEL --base`); a run's go into its own folder."""
    return _sub("evaluations")


def collected_dir() -> Path:
    """Datasets made in the workbench itself (ratings from the Chat tab)."""
    return _sub("collected")


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(mode=0o700, exist_ok=True)
    return path
