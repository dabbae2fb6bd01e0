"""Folders written by `datasets`' `save_to_disk`: a Dataset (state.json and Arrow files) or a DatasetDict
(dataset_dict.json and one such folder per split).

They are read with pyarrow, the way `datasets.load_from_disk` reads them (each Arrow file is an IPC stream; the
state names the files, and save_to_disk has already applied any selection or shuffle to them), so the UI process
previews one without importing `datasets`. A run freezes the chosen split as one Parquet file in the dataset store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.data.head import Head
from workbench.data.reading import check_objects, max_dataset_bytes, megabytes, none_for_nan
from workbench.errors import DataError

STATE = "state.json"
DICT = "dataset_dict.json"
DEFAULT_SPLIT = "train"


def is_saved(path: Path) -> bool:
    """Whether `path` is a folder written by save_to_disk (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / STATE).is_file() or (path / DICT).is_file())


def splits(path: Path) -> list[str]:
    """The splits of a DatasetDict folder; [] for a single Dataset."""
    if not (path / DICT).is_file():
        return []
    names = _read_json(path / DICT, path.name).get("splits")
    if not isinstance(names, list) or not all(isinstance(n, str) and _plain(n) for n in names):
        raise DataError(f"{DICT} lists no splits", file=path.name)
    return names


def split_folder(path: Path, split: str | None) -> Path:
    """The folder of the Dataset to read: `path` itself, or the chosen split of a DatasetDict (by default train,
    or its only split); a DataError names the splits there are."""
    names = splits(path)
    if not names:  # a single Dataset: a split named (the one it was made from, say) has nothing to choose
        return path
    chosen = split or (DEFAULT_SPLIT if DEFAULT_SPLIT in names else names[0] if len(names) == 1 else None)
    if chosen not in names:
        wanted = f"no split {split!r}" if split else "choose a split"
        raise DataError(f"{wanted}; its splits: {', '.join(names)}", file=path.name, field="split")
    folder = path / chosen
    if not (folder / STATE).is_file():
        raise DataError(f"the split {chosen!r} has no {STATE}", file=path.name, field="split")
    return folder


def name_of(folder: Path) -> str:
    """How a split folder is named to people: `my_data` or `my_data/train`."""
    return f"{folder.parent.name}/{folder.name}" if (folder.parent / DICT).is_file() else folder.name


def data_files(folder: Path) -> list[Path]:
    """The Arrow files of a Dataset folder, in order; each must lie in the folder itself."""
    state = _read_json(folder / STATE, name_of(folder))
    entries = state.get("_data_files")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{STATE} names no data files", file=name_of(folder))
    files = []
    for entry in entries:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _plain(name) or not (folder / name).is_file():
            raise DataError(f"{STATE} names a data file that is not in the folder: {name!r}", file=name_of(folder))
        files.append(folder / name)
    return files


def check_size(folder: Path, max_bytes: int | None = None) -> None:
    """Refuse a Dataset whose Arrow files together are over the size limit."""
    size = sum(path.stat().st_size for path in data_files(folder))
    limit = max_dataset_bytes() if max_bytes is None else max_bytes
    if size > limit:
        raise DataError(f"its data is {megabytes(size)}, over the {megabytes(limit)} limit", file=name_of(folder))


def read(folder: Path) -> list[dict[str, Any]]:
    """Every row of a Dataset folder as a dict."""
    check_size(folder)
    rows = _table(folder).to_pylist()
    if not rows:
        raise DataError("the dataset holds no rows", file=name_of(folder))
    check_objects(rows, name_of(folder))
    return none_for_nan(rows)


def head(folder: Path, rows: int) -> Head:
    """The first `rows` rows, reading no further than the Arrow batches that hold them."""
    import pyarrow as pa

    check_size(folder)
    records: list[dict[str, Any]] = []
    try:
        for path in data_files(folder):
            with pa.OSFile(str(path)) as source:
                for batch in pa.ipc.open_stream(source):
                    records += batch.slice(0, rows - len(records)).to_pylist()
                    if len(records) >= rows:
                        return Head(none_for_nan(records), None)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"not a readable save_to_disk folder: {err}", file=name_of(folder)) from None
    if not records:
        raise DataError("the dataset holds no rows", file=name_of(folder))
    return Head(none_for_nan(records), len(records))


def to_parquet(folder: Path, destination: Path) -> None:
    """Write a Dataset folder's rows as one Parquet file."""
    import pyarrow.parquet as pq

    check_size(folder)
    pq.write_table(_table(folder), destination)


def _table(folder: Path):
    import pyarrow as pa

    try:
        tables = []
        for path in data_files(folder):
            with pa.OSFile(str(path)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
        return pa.concat_tables(tables)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"not a readable save_to_disk folder: {err}", file=name_of(folder)) from None


def _read_json(path: Path, name: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise DataError(f"{path.name} is not readable JSON: {err}", file=name) from None
    if not isinstance(value, dict):
        raise DataError(f"{path.name} is not an object", file=name)
    return value


def _plain(name: str) -> bool:
    """A name of a file or folder inside the folder itself: no separators, not '.' or '..'."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name
