"""What the Data tab shows: the first rows read without the rest of the file, every row checked by `count_rows`,
and a clear error for each bad upload, within a bounded amount of memory."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from tests.data.bad_uploads import BAD_UPLOADS, GOOD
from workbench.config import DatasetSpec
from workbench.data import inspect
from workbench.data.inspect import PREVIEW_CHARS, PREVIEW_ROWS, count_rows, preview
from workbench.data.loading import load_for
from workbench.errors import DataError

# What the preview may allocate, whatever the file: the 16 MB it reads at most, decoded, and the rows made of it.
PREVIEW_BOUND_MB = 64


def _spec(path) -> DatasetSpec:
    return DatasetSpec(path=str(path))


def test_preview_shows_the_first_rows_and_the_count_only_when_it_read_them_all(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([GOOD] * 3))
    seen = preview(_spec(path))
    assert (seen.kind, seen.loaded.format, seen.loaded.rows, len(seen.rows)) == ("conversations", "alpaca", 3, 3)
    assert seen.rows[0] == {"user": GOOD["instruction"], "assistant": GOOD["output"]}

    path.write_text(json.dumps([GOOD] * 50))
    seen = preview(_spec(path))
    assert (seen.loaded.rows, len(seen.rows)) == (None, PREVIEW_ROWS)
    assert count_rows(_spec(path)).rows == 50


def test_preview_cuts_long_cells(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"prompt": "Why?", "chosen": "y" * 10_000, "rejected": "No."}))
    seen = preview(_spec(path))
    chosen = seen.rows[0]["chosen"]
    assert seen.kind == "pairs" and len(chosen) == PREVIEW_CHARS and chosen.endswith("…")


def test_an_error_past_the_first_rows_is_found_by_the_whole_read(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([GOOD] * 30 + [{"instruction": "Say hi", "output": ""}]))
    assert len(preview(_spec(path)).rows) == PREVIEW_ROWS
    with pytest.raises(DataError, match=r"^data\.json, row 31, field 'output': is empty"):
        count_rows(_spec(path))


@pytest.fixture
def upload(tmp_path):
    """Write a BadUpload into tmp_path; the big ones are deleted again after the test."""
    written = []

    def write(bad):
        written.append(bad.write(tmp_path))
        return written[-1]

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("bad", BAD_UPLOADS, ids=[b.name for b in BAD_UPLOADS])
def test_each_bad_upload_previews_in_bounded_memory_with_a_clear_error(upload, bad):
    path = upload(bad)
    tracemalloc.start()
    try:
        if bad.found_by == "preview":
            # A file that cannot be read at all raises; rows read wrongly come back with the error.
            try:
                error = preview(_spec(path)).error
            except DataError as err:
                error = err
            assert error is not None
        else:  # the first rows are fine: they show while the helper process reads the rest
            seen = preview(_spec(path))
            assert (len(seen.rows), seen.loaded.rows) == (PREVIEW_ROWS, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PREVIEW_BOUND_MB * 1024 * 1024, f"the preview allocated {peak / 2**20:.0f} MB"
    if bad.found_by == "preview":
        _assert_clear(error, bad)


@pytest.mark.parametrize("bad", [b for b in BAD_UPLOADS if b.found_by == "whole" and not b.big], ids=lambda b: b.name)
def test_a_bad_row_deep_in_a_million_is_named_by_the_whole_read(upload, bad):
    # What the helper process runs; the 2M-object file takes it ~15 s and is driven through the app instead
    # (tests/ui/test_data_upload.py).
    with pytest.raises(DataError) as caught:
        count_rows(_spec(upload(bad)))
    _assert_clear(caught.value, bad)


def _assert_clear(err: DataError, bad) -> None:
    message = str(err)
    assert message.startswith(bad.name) and err.row == bad.row, message
    for word in bad.words:
        assert word in message, message


def test_a_file_is_read_whole_once_per_version(tmp_path, monkeypatch):
    reads = []
    monkeypatch.setattr(inspect, "load_for", lambda kind, spec: reads.append(spec) or load_for(kind, spec))
    path = tmp_path / "data.json"
    path.write_text(json.dumps([GOOD] * 20 + [{"instruction": "x"}]))
    for _ in range(2):  # an error is remembered as well as a count
        with pytest.raises(DataError, match="row 21"):
            count_rows(_spec(path))
    assert len(reads) == 1
    path.write_text(json.dumps([GOOD] * 12))
    assert count_rows(_spec(path)).rows == 12 and count_rows(_spec(path)).rows == 12
    assert len(reads) == 2
