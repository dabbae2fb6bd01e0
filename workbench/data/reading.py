"""Reading a dataset file into plain records: JSON (an array, or JSON Lines saved as .json), JSONL, CSV, Parquet.

Every problem is a DataError naming the file by its name and, where it is known, the row (records count from 1; a
CSV header is not a row) or the line.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import DataError

MAX_MB_ENV = "WORKBENCH_MAX_DATASET_MB"
DEFAULT_MAX_MB = 512
DEFAULT_MAX_BYTES = DEFAULT_MAX_MB * 1024 * 1024


def max_dataset_bytes() -> int:
    """The size limit for one dataset file: `$WORKBENCH_MAX_DATASET_MB` megabytes, else 512 MB."""
    raw = os.environ.get(MAX_MB_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0 or math.isinf(megabytes):
        raise DataError(f"{MAX_MB_ENV} must be a positive number of megabytes, got {raw!r}")
    return int(megabytes * 1024 * 1024)


def read_records(path: Path, *, max_bytes: int | None = None) -> list[dict[str, Any]]:
    """Read every record of a .json, .jsonl, .csv or .parquet file as a dict; missing values become None.

    `max_bytes` defaults to `max_dataset_bytes()`, read when called so the environment can change it.
    """
    path = Path(path)
    name = path.name
    if not path.exists():
        raise DataError(f"no such file: {path}", file=name)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a data file or a folder holding dataset_info.json", file=name)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        supported = ", ".join(_READERS)
        raise DataError(
            f"unsupported file type {path.suffix or '(no extension)'!r}; use one of: {supported}", file=name
        )
    size = path.stat().st_size
    limit = max_dataset_bytes() if max_bytes is None else max_bytes
    if size > limit:
        raise DataError(
            f"the file is {_megabytes(size)}, over the {_megabytes(limit)} limit; set {MAX_MB_ENV} to allow more",
            file=name,
        )
    if size == 0:
        raise DataError("the file is empty", file=name)
    records = reader(path)
    if not records:
        raise DataError("the file holds no rows", file=name)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"expected an object (a mapping of fields), got {describe_value(record)}", file=name, row=index + 1
            )
    return records


def _read_json(path: Path) -> list[Any]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        # A .json file that holds one object per line parses up to the end of the first line, then stops there.
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            return _parse_json_lines(text, path.name)
        raise DataError(
            f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}", file=path.name
        ) from None
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:8])
        raise DataError(
            f"the top level is an object (keys: {keys}), expected a list of objects: [{{...}}, {{...}}]; "
            "or save one object per line as .jsonl",
            file=path.name,
        )
    if not isinstance(data, list):
        raise DataError(
            f"the top level is {describe_value(data)}, expected a list of objects: [{{...}}, ...]", file=path.name
        )
    return data


def _read_jsonl(path: Path) -> list[Any]:
    return _parse_json_lines(_read_text(path), path.name)


def _parse_json_lines(text: str, name: str) -> list[Any]:
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(
                f"line {line_number} is not valid JSON (column {err.colno}: {err.msg})",
                file=name,
                row=len(records) + 1,
            ) from None
    return records


def _read_csv(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    text = _read_text(path)
    try:
        # Every cell is text (an answer "42" stays "42"); only empty cells are missing, not "NA" or "null".
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"not valid CSV: {err}", file=path.name) from None
    return [{key: _none_if_nan(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow gives plain Python lists and None for nulls, where pandas would give numpy arrays and NaN.
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"not a readable Parquet file: {err}", file=path.name) from None
    return [{key: _none_if_nan(value) for key, value in row.items()} for row in rows]


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at byte offset {err.start} (line {line}); "
            "save the file with UTF-8 encoding",
            file=path.name,
        ) from None
    if not text.strip():
        raise DataError("the file is empty", file=path.name)
    return text


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _megabytes(size: int) -> str:
    if size >= 100 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} kB" if size >= 1024 else f"{size} bytes"


def describe_value(value: Any) -> str:
    """How a JSON value reads to a person: 'a list', 'a number (3)', 'text ("hi")'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text ({json.dumps(shown, ensure_ascii=False)})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_READERS: dict[str, Callable[[Path], list[Any]]] = {
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".csv": _read_csv,
    ".parquet": _read_parquet,
}
