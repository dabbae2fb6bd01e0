"""Reading a dataset file into plain records: JSON (an array, or JSON Lines saved as .json), JSONL, CSV, Parquet,
and plain text (.txt: one record `{"text": ...}` per document, see `workbench.data.text`).

Every problem is a DataError naming the file by its name and, where it is known, the row (records count from 1; a
CSV header is not a row) or the line.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import os
import re
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
    """Read every record of a .json, .jsonl, .csv, .parquet or .txt file as a dict; missing values become None.

    `max_bytes` defaults to `max_dataset_bytes()`, read when called so the environment can change it. The whole
    file is read into memory: the UI process reads only the first rows (`head.read_head`).
    """
    path = Path(path)
    check_file(path, max_bytes=max_bytes)
    records = _READERS[path.suffix.lower()](path)
    if not records:
        raise DataError("the file holds no rows", file=path.name)
    check_objects(records, path.name)
    return records


def check_file(path: Path, *, max_bytes: int | None = None) -> None:
    """Refuse, before reading a byte of it, a file that is missing, a folder, of an unknown type, empty or too big."""
    name = path.name
    if not path.exists():
        raise DataError(f"no such file: {path}", file=name)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a data file or a folder holding dataset_info.json", file=name)
    if path.suffix.lower() not in _READERS:
        supported = ", ".join(_READERS)
        raise DataError(
            f"unsupported file type {path.suffix or '(no extension)'!r}; use one of: {supported}", file=name
        )
    size = path.stat().st_size
    limit = max_dataset_bytes() if max_bytes is None else max_bytes
    if size > limit:
        raise DataError(
            f"the file is {megabytes(size)}, over the {megabytes(limit)} limit; set {MAX_MB_ENV} to allow more",
            file=name,
        )
    if size == 0:
        raise DataError("the file is empty", file=name)


def check_objects(records: list[Any], file: str, *, first_row: int = 1) -> None:
    """Refuse a record that is not an object, naming its row (`first_row` is the number of records[0])."""
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"expected an object (a mapping of fields), got {describe_value(record)}",
                file=file,
                row=index + first_row,
            )


def _read_json(path: Path) -> list[Any]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        # A .json file that holds one object per line parses up to the end of the first line, then stops there.
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            return parse_json_lines(text, path.name)
        raise json_error(err, path.name) from None
    except RecursionError:
        raise DataError(TOO_DEEP, file=path.name) from None
    if not isinstance(data, list):
        raise top_level_error(data, path.name)
    return data


def _read_jsonl(path: Path) -> list[Any]:
    return parse_json_lines(_read_text(path), path.name)


# JSON text holds no raw line breaks, so these split lines only; str.splitlines would also split at U+2028 and
# other separators that JSON strings may hold as they are.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
TOO_DEEP = "lists and objects are nested too deeply (beyond about a thousand levels, which no dataset needs)"


def parse_json_lines(text: str, file: str, *, limit: int | None = None) -> list[Any]:
    """The records of JSON Lines text, one object per line (blank lines skipped); stops after `limit` records."""
    records: list[Any] = []
    for line_number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if limit is not None and len(records) >= limit:
            break
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(
                f"line {line_number} is not valid JSON (column {err.colno}: {err.msg})",
                file=file,
                row=len(records) + 1,
            ) from None
        except RecursionError:
            raise DataError(f"line {line_number}: {TOO_DEEP}", file=file, row=len(records) + 1) from None
    return records


def json_error(err: json.JSONDecodeError, file: str) -> DataError:
    """A JSON syntax error as a person reads it, with its line and column."""
    return DataError(f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}", file=file)


def top_level_error(data: Any, file: str) -> DataError:
    """The error for a JSON file whose top level is not a list (`data` is that top-level value)."""
    if isinstance(data, dict):
        keys = ", ".join(list(data)[:8])
        return DataError(
            f"the top level is an object (keys: {keys}), expected a list of objects: [{{...}}, {{...}}]; "
            "or save one object per line as .jsonl",
            file=file,
        )
    return DataError(f"the top level is {describe_value(data)}, expected a list of objects: [{{...}}, ...]", file=file)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    return parse_csv(_read_text(path), path.name)


def parse_csv(text: str, file: str, *, nrows: int | None = None) -> list[dict[str, Any]]:
    """The rows of CSV text as records (every cell text, empty cells None); only the first `nrows` if given."""
    import pandas as pd

    try:
        # Every cell is text (an answer "42" stays "42"); only empty cells are missing, not "NA" or "null".
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], nrows=nrows)
    except (pd.errors.ParserError, ValueError) as err:
        raise DataError(f"not valid CSV: {err}", file=file) from None
    return [{key: _none_if_nan(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _read_txt(path: Path) -> list[dict[str, Any]]:
    from workbench.data.text import TEXT_COLUMN, split_documents

    return [{TEXT_COLUMN: document} for document in split_documents(_read_text(path))]


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pyarrow gives plain Python lists and None for nulls, where pandas would give numpy arrays and NaN.
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"not a readable Parquet file: {err}", file=path.name) from None
    return none_for_nan(rows)


def none_for_nan(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with NaN values (a missing number in a table) as None."""
    return [{key: _none_if_nan(value) for key, value in row.items()} for row in rows]


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    text, _ = decode_utf8(data, path.name, start=bom)
    if not text.strip():
        raise DataError("the file is empty", file=path.name)
    return text


def decode_utf8(
    data: bytes, file: str, *, start: int = 0, offset: int = 0, line: int = 1, final: bool = True
) -> tuple[str, bytes]:
    """Decode `data[start:]` as UTF-8; returns the text and, unless `final`, the bytes of a character cut at the end.

    Invalid UTF-8 and NUL bytes (never in a text file, but in binary ones) raise a DataError naming the first
    one's byte offset and line in the file; `offset` and `line` are where `data` begins in it.
    """
    nul = data.find(b"\x00", start)
    end = len(data) if nul < 0 else nul
    view = memoryview(data)
    try:
        text, rest = str(view[start:end], "utf-8"), b""
    except UnicodeDecodeError as err:
        cut = start + err.start
        if final or nul >= 0 or err.reason != "unexpected end of data":
            line += data.count(b"\n", 0, cut)
            raise DataError(
                f"not UTF-8 text: byte 0x{data[cut]:02x} at byte offset {offset + cut} (line {line}); "
                "save the file with UTF-8 encoding",
                file=file,
            ) from None
        text, rest = str(view[start:cut], "utf-8"), data[cut:]
    if nul >= 0:
        line += data.count(b"\n", 0, nul)
        raise DataError(
            f"a NUL byte (0x00) at byte offset {offset + nul} (line {line}): this looks "
            "like a binary file, not text; save the data as UTF-8 text",
            file=file,
        )
    return text, rest


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def megabytes(size: int) -> str:
    """A file size as a person reads it: '512.0 MB', '1.5 kB', '100 bytes'."""
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
    ".txt": _read_txt,
}
