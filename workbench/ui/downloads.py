"""Files the page offers for download, wherever the data home is.

Gradio serves a file an event returns only from its upload cache, the working directory, the temp dir or
`allowed_paths`, and copies it into its cache unless it lies there already. So downloads are written straight into
a private folder of their own inside that cache: served in place, never copied (a merged model is hundreds of
megabytes), and no folder of the data home opened to the web. Old ones are removed here, and Gradio's
`delete_cache` removes what it served.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

from workbench import access

FOLDER = "workbench-downloads"
MAX_AGE_SECONDS = 3600  # long enough to fetch a merged model over a slow link

_made: list[Path] = []  # this process's download folders, removed as it stops
_lock = threading.Lock()


def new_path(name: str) -> Path:
    """A fresh path `<Gradio's cache>/workbench-downloads/<random>/<name>` to write a download to."""
    root = access.uploads_dir() / FOLDER
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale(root)
    # A folder per download: its random name keeps two downloads (two users, two clicks) apart.
    folder = Path(tempfile.mkdtemp(dir=root))
    with _lock:
        _made.append(folder)
    return folder / name


def remove_own() -> None:
    """Remove the downloads this process made (called as the server stops)."""
    with _lock:
        for folder in _made:
            shutil.rmtree(folder, ignore_errors=True)
        _made.clear()


def remove_stale(root: Path | None = None) -> None:
    """Remove downloads older than MAX_AGE_SECONDS (also those a killed server left behind)."""
    root = root or access.uploads_dir() / FOLDER
    if not root.is_dir():
        return
    cutoff = time.time() - MAX_AGE_SECONDS
    for folder in root.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:  # another server sharing the cache removed it first
            continue
