"""Which files a server may read for its user: the one rule every event (and any later API) that takes a path obeys.

A user of a served workbench may read datasets the workbench owns, and nothing else: files uploaded through the
page (Gradio's upload cache), the samples shipped in presets/data, the datasets made here (`home.collected_dir()`)
and the dataset store (`home.datasets_dir()`: stored files, hub datasets fetched there, and dataset folders that
came as a zip and were unpacked there). A refusal says the same for a path that is missing, a folder,
unreadable or outside those folders, so it tells nothing about the server's files.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench import home
from workbench.errors import WorkbenchError
from workbench.models import PRESETS

SAMPLES = PRESETS / "data"
DATASET_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".txt")
# A dataset folder (save_to_disk's, or LLaMA-Factory's with dataset_info.json) comes through the page as a zip.
ARCHIVE_SUFFIX = ".zip"
# A LLaMA-Factory dataset_info.json names other files, anywhere: the page never needs one, so none is read for it.
_NAMES_OTHER_FILES = "dataset_info.json"
REFUSED = "Cannot use this file: upload a dataset here, or pick a sample or one of yours."


class AccessError(WorkbenchError):
    """A path the server will not read for its user; the message is always `REFUSED`."""

    category = "data"

    def __init__(self) -> None:
        super().__init__(REFUSED)


def uploads_dir() -> Path:
    """Where the page's uploads land: Gradio's upload cache (`$GRADIO_TEMP_DIR`, else `<temp dir>/gradio`)."""
    # Gradio's own function, so the rule follows wherever Gradio puts uploads; imported here, not at the top,
    # because the data layer and the CLI use this module without a web server.
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def dataset_roots() -> list[Path]:
    """The folders whose dataset files a user of the server may read, symlinks resolved."""
    roots = [uploads_dir(), SAMPLES, home.collected_dir(), home.datasets_dir()]
    return [root.resolve() for root in roots]


def readable_dataset(path: str | os.PathLike[str]) -> Path:
    """`path` resolved, if it is a dataset the server may read for its user: a dataset file in one of its folders,
    or a dataset folder unpacked into the store from an uploaded zip; AccessError otherwise."""
    try:
        resolved = Path(path).expanduser().resolve(strict=True)
        if resolved.is_dir():
            allowed = _stored_folder(resolved)
        else:
            allowed = (
                resolved.suffix.lower() in DATASET_SUFFIXES
                and resolved.name != _NAMES_OTHER_FILES
                and any(resolved.is_relative_to(root) for root in dataset_roots())
                and resolved.is_file()
                and os.access(resolved, os.R_OK)
            )
    except (OSError, ValueError, TypeError, RuntimeError):  # missing, unreadable, a NUL byte, a symlink loop
        allowed = False
    if not allowed:
        raise AccessError()
    return resolved


def _stored_folder(resolved: Path) -> bool:
    # Only the store's folders: their files were unpacked there (no links, nothing outside), and what they name is
    # read from within them (save_to_disk's data files, dataset_info.json's file_name: data/saved.py, dataset_info.py).
    from workbench.data.archive import is_dataset_folder

    store = home.datasets_dir().resolve()
    return resolved.is_relative_to(store) and resolved != store and is_dataset_folder(resolved)


def uploaded_archive(path: str | os.PathLike[str]) -> Path:
    """`path` resolved, if it is a zip uploaded through the page; AccessError otherwise."""
    try:
        resolved = Path(path).expanduser().resolve(strict=True)
        allowed = (
            resolved.suffix.lower() == ARCHIVE_SUFFIX
            and resolved.is_relative_to(uploads_dir().resolve())
            and resolved.is_file()
        )
    except (OSError, ValueError, TypeError, RuntimeError):
        allowed = False
    if not allowed:
        raise AccessError()
    return resolved
