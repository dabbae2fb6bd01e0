"""Files a person might upload that the Data tab must refuse clearly, without taking the UI process down.

Each `BadUpload` writes its file and says what the error holds and which pass finds it: the preview of the first
rows (in the UI process) or the whole read (in the helper process). The data-layer tests, the app-process test
and `bench/faults.py` share them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MB = 1024 * 1024
GOOD = {"instruction": "Name a primary colour, and why.", "input": "", "output": "Blue, like a clear sky."}
TINY = {"instruction": "a", "output": "b"}


@dataclass(frozen=True)
class BadUpload:
    """A file to upload: `write(folder)` makes it; its error names the file and holds `words` (and `row`)."""

    name: str
    write: Callable[[Path], Path]
    words: tuple[str, ...]
    row: int | None
    found_by: Literal["preview", "whole"]  # the first rows, or only the whole file read by the helper
    big: bool = False  # hundreds of MB on disk
    # What the page says instead, where the browser refuses the file before the data layer sees it.
    page_words: tuple[str, ...] | None = None


def _file(name: str, fill: Callable[[object], None]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        with path.open("wb") as out:
            fill(out)
        return path

    return write


def _random_bytes(out) -> None:
    out.write(random.Random(0).randbytes(MB))


def _huge_string(out) -> None:
    # One row holding 200 MB of text, on one line.
    out.write(b'[{"instruction": "')
    for _ in range(200):
        out.write(b"x" * MB)
    out.write(b'", "output": "y"}]')


def _many_objects(rows: int, last: dict) -> Callable[[object], None]:
    # An array of small objects on one line; the last one breaks a rule only the whole read finds.
    def fill(out) -> None:
        chunk = ",".join([json.dumps(GOOD)] * 10_000).encode()
        out.write(b"[")
        for _ in range((rows - 1) // 10_000):
            out.write(chunk + b",")
        out.write(",".join([json.dumps(GOOD)] * ((rows - 1) % 10_000) + [json.dumps(last)]).encode() + b"]")

    return fill


def _deep(opening: bytes, middle: bytes, closing: bytes) -> Callable[[object], None]:
    return lambda out: out.write(opening * 10_000 + middle + closing * 10_000)


def _repeat(out, line: bytes, count: int) -> None:
    for start in range(0, count, 10_000):
        out.write(line * min(10_000, count - start))


def _tiny_lines(out) -> None:
    _repeat(out, json.dumps(TINY).encode() + b"\n", 999_999)
    out.write(b'{"instruction": "a", "output": \n')  # line 1,000,000 is cut short


def _tiny_csv(out) -> None:
    out.write(b"instruction,output\n")
    _repeat(out, b"a,b\n", 999_999)
    out.write(b"a,\n")  # row 1,000,000 has no output


def _nul_csv(out) -> None:
    out.write(b"instruction,output\nSay hi,Hi!\nSay bye,By\x00e\n")


def _too_big(out) -> None:
    out.truncate(600 * MB)  # sparse: refused by its size, so nothing is ever read


BAD_UPLOADS = [
    BadUpload("random-bytes.json", _file("random-bytes.json", _random_bytes), ("byte offset", "line 1"), None,
              "preview"),
    BadUpload("one-huge-string.json", _file("one-huge-string.json", _huge_string), ("over 16.0 MB",), 1, "preview",
              big=True),
    BadUpload("two-million-objects.json",
              _file("two-million-objects.json", _many_objects(2_000_000, {"instruction": "No reply"})),
              ("field 'output'", "is missing"), 2_000_000, "whole", big=True),
    BadUpload("deep-lists.json", _file("deep-lists.json", _deep(b"[", b"", b"]")), ("nested too deeply",), 1,
              "preview"),
    BadUpload("deep-objects.json", _file("deep-objects.json", _deep(b'{"a":', b"1", b"}")), ("nested too deeply",),
              None, "preview"),
    BadUpload("million-rows.jsonl", _file("million-rows.jsonl", _tiny_lines),
              ("line 1000000 is not valid JSON",), 1_000_000, "whole"),
    BadUpload("million-rows.csv", _file("million-rows.csv", _tiny_csv), ("field 'output'", "is empty"), 1_000_000,
              "whole"),
    BadUpload("nul-bytes.csv", _file("nul-bytes.csv", _nul_csv), ("NUL byte", "line 3"), None, "preview"),
    BadUpload("too-big.json", _file("too-big.json", _too_big), ("600.0 MB", "over the 512.0 MB limit"), None,
              "preview", page_words=("exceed the maximum allowed size of 512.0 Mb",)),
]  # fmt: skip
