"""The first rows of a dataset file, read without reading the rest: what the UI process previews.

A file of any size costs the reader at most `HEAD_BYTES` of it (plus what those bytes decode into), so the UI
process's memory stays bounded; the whole file is read and validated elsewhere (the helper process, the worker).
The first rows give the same errors as `read_records` gives for them: same checks, same messages, same row and
line numbers. A row that does not fit in `HEAD_BYTES` on its own is refused, since it cannot be previewed.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from workbench.data.reading import (
    TOO_DEEP,
    check_file,
    check_objects,
    decode_utf8,
    json_error,
    megabytes,
    none_for_nan,
    parse_csv,
    parse_json_lines,
    top_level_error,
)
from workbench.errors import DataError

# A preview row is a few kB; 16 MB leaves room for long documents while keeping the reader's peak small.
HEAD_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024
_SPACE = re.compile(r"[ \t\n\r]*")
_FIRST_KEY = re.compile(r'\{[ \t\n\r]*("(?:[^"\\]|\\.){0,200}")')
# How far from the end of the text read so far a JSON syntax error can be caused by the cut rather than by the
# file: the longest token the decoder backs up over ("\uXXXX" in a string, "false").
_CUT_MARGIN = 8


@dataclass(frozen=True)
class Head:
    """The first records of a file, and how many the whole file holds when that is known without reading it all
    (the file ended within the rows read, or a Parquet footer said so); otherwise `total` is None."""

    records: list[dict[str, Any]]
    total: int | None


def read_head(path: Path, rows: int, *, max_bytes: int | None = None, budget: int = HEAD_BYTES) -> Head:
    """Read the first `rows` records of a .json, .jsonl, .csv, .parquet or .txt file, reading at most `budget` bytes.

    File checks (type, size limit `max_bytes`, emptiness) come first, as in `read_records`; fewer than `rows`
    records come back when the next one does not fit in `budget`.
    """
    path = Path(path)
    check_file(path, max_bytes=max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        head = _parquet_head(path, rows)
    else:
        with path.open("rb") as file:
            prefix = _Prefix(file, path.name, budget)
            if suffix == ".txt":
                head = _txt_head(prefix, rows)
            else:
                head = _csv_head(prefix, rows) if suffix == ".csv" else _json_head(prefix, rows, suffix == ".jsonl")
    if not head.records:
        raise DataError("the file holds no rows", file=path.name)
    check_objects(head.records, path.name)
    return head


class _Prefix:
    """The start of a text file, decoded as UTF-8: `text` grows by reading about as much again as has been read,
    up to `budget` bytes in all, so re-reading a long row after each step costs little in total."""

    def __init__(self, file: BinaryIO, name: str, budget: int):
        self.file, self.name, self.budget = file, name, budget
        self.text, self.eof, self._read, self._rest = "", False, 0, b""

    def more(self) -> bool:
        """Read on; False when the file has ended or the budget is spent."""
        if self.eof or self._read >= self.budget:
            return False
        size = min(max(_CHUNK, self._read), self.budget - self._read)
        chunk = self.file.read(size)
        self.eof = len(chunk) < size or not self.file.peek(1)
        data, offset = self._rest + chunk, self._read - len(self._rest)
        start = len(codecs.BOM_UTF8) if offset == 0 and data.startswith(codecs.BOM_UTF8) else 0
        self._read += len(chunk)
        line = self.text.count("\n") + 1
        text, self._rest = decode_utf8(data, self.name, start=start, offset=offset, line=line, final=self.eof)
        self.text += text
        if self.eof and not self.text.strip():
            raise DataError("the file is empty", file=self.name)
        return True

    @property
    def over_budget(self) -> bool:
        return not self.eof and self._read >= self.budget

    def skip_space(self, index: int) -> int:
        """The index of the next non-space character from `index`, reading on as needed (len(text) if none)."""
        while True:
            index = _SPACE.match(self.text, index).end()
            if index < len(self.text) or not self.more():
                return index

    def too_long(self, row: int) -> DataError:
        return DataError(
            f"this row alone is over {megabytes(self.budget)}, more than the preview reads (and far beyond any "
            "cutoff length); split it into shorter rows",
            file=self.name,
            row=row,
        )


def _json_head(prefix: _Prefix, rows: int, lines: bool) -> Head:
    prefix.more()
    if lines:
        return _lines_head(prefix, rows)
    start = prefix.skip_space(0)
    first = prefix.text[start : start + 1]
    if first == "[":
        return _array_head(prefix, start + 1, rows)
    value = _decode(prefix, start, row=None)
    if value is None and first == "{":  # one long JSON Lines row, or (more often) a list wrapped in an object
        key = _FIRST_KEY.match(prefix.text, start)
        raise DataError(
            f"the file starts with an object over {megabytes(prefix.budget)}"
            + (f" (its first key: {json.loads(key.group(1))})" if key else "")
            + "; expected a list of objects, [{...}, ...], or one object per line, each shorter than that",
            file=prefix.name,
        )
    if value is None:  # a top-level value too long to read whole: its first character tells what it is
        kinds = {'"': "text", "t": "a boolean", "f": "a boolean", "n": "null"}
        raise DataError(
            f"the top level is {kinds.get(first, 'a number')}, expected a list of objects: [{{...}}, ...]",
            file=prefix.name,
        )
    # A .json file that holds one object per line: the first object is followed by more text.
    if isinstance(value[0], dict) and prefix.skip_space(value[1]) < len(prefix.text):
        return _lines_head(prefix, rows)
    raise top_level_error(value[0], prefix.name)


def _array_head(prefix: _Prefix, index: int, rows: int) -> Head:
    records: list[Any] = []
    index = prefix.skip_space(index)
    if prefix.text[index : index + 1] == "]":
        return _closed(prefix, records, index + 1)
    while len(records) < rows:
        decoded = _decode(prefix, index, row=len(records) + 1)
        if decoded is None:
            return Head(records, None)
        record, index = decoded
        records.append(record)
        index = prefix.skip_space(index)
        after = prefix.text[index : index + 1]
        if after == "]":
            return _closed(prefix, records, index + 1)
        if after != ",":
            if not after and prefix.over_budget:
                return Head(records, None)
            _decode_error(prefix, index, "Expecting ',' delimiter")
        index = prefix.skip_space(index + 1)
    return Head(records, None)


def _closed(prefix: _Prefix, records: list[Any], index: int) -> Head:
    """The array has ended at `index`: only space may follow it."""
    index = prefix.skip_space(index)
    if index < len(prefix.text):
        _decode_error(prefix, index, "Extra data")
    return Head(records, None if prefix.over_budget else len(records))


def _decode(prefix: _Prefix, index: int, row: int | None) -> tuple[Any, int] | None:
    """The JSON value at `index` and where it ends, reading on while it is cut off; None if over the budget."""
    decoder = json.JSONDecoder()
    while True:
        try:
            value, end = decoder.raw_decode(prefix.text, index)
        except json.JSONDecodeError as err:
            cut = err.pos >= len(prefix.text) - _CUT_MARGIN or err.msg.startswith("Unterminated string")
            if cut and prefix.more():
                continue
            if cut and prefix.over_budget:
                if row == 1:
                    raise prefix.too_long(row) from None
                return None
            raise json_error(err, prefix.name) from None
        except RecursionError:
            raise DataError(TOO_DEEP, file=prefix.name, row=row) from None
        # A number that ends where the text read so far ends may go on in the file.
        if end < len(prefix.text) or not prefix.more():
            return value, end


def _decode_error(prefix: _Prefix, index: int, message: str) -> None:
    raise json_error(json.JSONDecodeError(message, prefix.text, index), prefix.name)


def _lines_head(prefix: _Prefix, rows: int) -> Head:
    """JSON Lines: whole lines only; the last line read so far may be cut, unless the file has ended."""
    while True:
        text = _whole_lines(prefix)
        records = parse_json_lines(text, prefix.name, limit=rows + 1)
        if len(records) > rows:
            return Head(records[:rows], None)
        if prefix.eof:
            return Head(records, len(records))
        if not prefix.more():
            if not records:
                raise prefix.too_long(1)
            return Head(records, None)


def _csv_head(prefix: _Prefix, rows: int) -> Head:
    """CSV: parse whole lines read so far; a quoted cell may hold line breaks, so a cut one means reading on."""
    prefix.more()
    while True:
        text = _whole_lines(prefix)
        try:
            # One row more than asked for tells whether the file goes on after them.
            records = parse_csv(text, prefix.name, nrows=rows + 1) if text else []
        except DataError as err:
            # Only a quoted cell cut by the end of what was read is the cut's fault; other errors are the file's.
            if prefix.eof or "EOF inside string" not in str(err):
                raise
            records = None
        if records is not None and (len(records) > rows or prefix.eof):
            return Head(records[:rows], None if len(records) > rows else len(records))
        if not prefix.more():
            if not records:
                raise prefix.too_long(1)
            return Head(records, None)


def _txt_head(prefix: _Prefix, rows: int) -> Head:
    """Plain text: whole documents only (the last one read so far may go on), unless the first alone is over the
    budget: then its start, which is all a preview shows of it (training reads it whole)."""
    from workbench.data.text import TEXT_COLUMN, split_documents

    prefix.more()
    while True:
        documents = split_documents(prefix.text)
        whole = documents if prefix.eof else documents[:-1]
        if len(whole) > rows or prefix.eof:
            records = [{TEXT_COLUMN: document} for document in whole[:rows]]
            return Head(records, None if len(whole) > rows else len(whole))
        if not prefix.more():
            return Head([{TEXT_COLUMN: document} for document in (whole or documents[:1])], None)


def _whole_lines(prefix: _Prefix) -> str:
    """The text read so far up to its last line break (all of it once the file has ended)."""
    if prefix.eof:
        return prefix.text
    return prefix.text[: max(prefix.text.rfind("\n"), prefix.text.rfind("\r")) + 1]


def _parquet_head(path: Path, rows: int) -> Head:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # Its footer tells the row count; unbuffered, the first batch reads only the first pages (pyarrow's default
        # pre-buffering reads the whole first row group: +307 MB peak for a 290 MB file of one group, not +17 MB).
        parquet = pq.ParquetFile(path, buffer_size=_CHUNK, pre_buffer=False)
        batch = next(parquet.iter_batches(batch_size=rows), None)
        total = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"not a readable Parquet file: {err}", file=path.name) from None
    return Head(none_for_nan(batch.to_pylist() if batch is not None else []), total)
