"""The dataset store: user files copied into the data directory under their content hash, so a run can be re-read.

Layout: `datasets_dir()/<sha256>/<original file name>`; a save_to_disk split is stored as one Parquet file, and a
folder brought as a zip (`workbench/data/archive.py`) as `<sha256 of the zip>/<its name>/`. A file appears there
whole or not at all: it is written to a temporary file beside its final place and renamed over it, which is atomic.
Two processes storing the same file at once both write the same bytes and the last rename wins; no reader sees half
a file. Store only files that `load_conversations` accepted (`freeze_spec` does both), so nothing unusable lands in
the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from workbench import home
from workbench.config import DataFormat, DatasetSpec
from workbench.data import saved
from workbench.data.loading import LoadedDataset, LoadedExamples, load_conversations
from workbench.errors import DataError

_CHUNK = 1024 * 1024
_TEMP_PREFIX = ".incoming-"


@dataclass(frozen=True)
class StoredDataset:
    """A file in the store: its path there and the SHA-256 of its bytes."""

    path: Path
    sha256: str


def store_dataset(path: Path) -> StoredDataset:
    """Copy a file into the store (once per content hash and name) and return where it lies."""
    path = Path(path)
    root = home.datasets_dir()
    fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=root)
    temp, placed = Path(temp_name), False
    try:
        # Hash what is copied, not the source read a second time: a file changing meanwhile cannot be stored
        # under a hash that is not its content's.
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                source = path.open("rb")
            except FileNotFoundError:
                raise DataError(f"no such file: {path}", file=path.name) from None
            with source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        final = root / sha / path.name
        if not final.is_file():
            final.parent.mkdir(exist_ok=True)
            temp.chmod(0o600)  # the user's data: theirs alone, whatever the umask
            os.replace(temp, final)
            placed = True
        return StoredDataset(final, sha)
    finally:
        if not placed:
            temp.unlink(missing_ok=True)


def freeze_spec(spec: DatasetSpec, loaded: LoadedDataset | LoadedExamples | None = None) -> DatasetSpec:
    """Validate a dataset, store its data file and return a spec that needs nothing else to be read again.

    A dataset_info.json entry becomes its resolved data file with an explicit format, columns and tags. Pass
    `loaded` when the spec was just loaded, to skip reading it twice.
    """
    loaded = loaded or load_conversations(spec)
    stored = store_folder(loaded.path) if loaded.path.is_dir() else store_dataset(loaded.path)
    # Where the rows came from is resolved to the stored file; what the run does with them (share, fill, ...) is kept.
    return spec.model_copy(
        update={
            "path": str(stored.path),
            # Supervised formats are kept; other layouts (pairs, prompts) are told apart from the file itself again.
            "format": loaded.format if loaded.format in get_args(DataFormat) else "auto",
            "columns": loaded.columns,
            "tags": loaded.tags,
            "name": None,
            "subset": None,
            "split": None,
        }
    )


def store_folder(folder: Path) -> StoredDataset:
    """Store a save_to_disk Dataset folder (one split) as one Parquet file, `<folder>[-<split>].parquet`."""
    scratch = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=home.datasets_dir()))
    try:
        parquet = scratch / f"{saved.name_of(folder).replace('/', '-')}.parquet"
        saved.to_parquet(folder, parquet)
        return store_dataset(parquet)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
