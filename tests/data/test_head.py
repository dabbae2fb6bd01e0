"""The first rows of a file: the same records and errors as reading it whole, without reading the rest."""

import json
import random

import pandas as pd
import pytest

from tests.data.test_reading import BAD_FILES
from workbench.data.head import read_head
from workbench.data.reading import read_records
from workbench.errors import DataError

# Where the head is more precise than read_records: which row holds the too-deep list.
HEAD_ROWS = {"deep.json": 1}


def _rows(count, seed=0):
    rng = random.Random(seed)
    return [
        {
            "instruction": "x" * rng.randint(0, 300) + "é\u2028" * rng.randint(0, 2),
            "output": str(rng.random()),
            "n": rng.randint(-(10**12), 10**12),
            "flag": rng.choice([True, None, 1.5e300]),
        }
        for _ in range(count)
    ]


def _write(path, rows, seed):
    rng = random.Random(seed)
    if path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    elif path.name.startswith("array"):
        path.write_text(json.dumps(rows, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5))
    else:  # JSON Lines, as .jsonl or .json
        newline = rng.choice(["\n", "\r\n"])
        path.write_text(newline.join(json.dumps(r, ensure_ascii=False) for r in rows) + newline)


@pytest.mark.parametrize("name", ["array.json", "lines.jsonl", "lines.json", "table.csv", "table.parquet"])
@pytest.mark.parametrize("count", [2, 8, 9, 40])
def test_first_rows_are_the_records_read_whole(tmp_path, name, count):
    path = tmp_path / name
    _write(path, _rows(count, seed=count), seed=count)
    whole = read_records(path)
    head = read_head(path, 8)
    assert head.records == whole[:8]
    # The count is known when the file ends within the rows read (a Parquet footer always tells it).
    assert head.total == (count if count <= 8 or name.endswith(".parquet") else None)


@pytest.mark.parametrize("name", ["array.json", "lines.jsonl", "lines.json", "table.csv"])
@pytest.mark.parametrize("budget", [1, 50, 333, 1000, 4096])
def test_a_small_budget_gives_fewer_rows_never_wrong_ones(tmp_path, name, budget):
    # The text read grows chunk by chunk up to the budget: rows cut anywhere are read on or left out, not garbled.
    path = tmp_path / name
    _write(path, _rows(12, seed=budget), seed=budget)
    whole = read_records(path)
    try:
        head = read_head(path, 8, budget=budget)
    except DataError as err:
        # JSON Lines saved as .json: an object too long to read may as well be a list wrapped in an object.
        assert ("this row alone is over" in str(err) and err.row == 1) or "starts with an object over" in str(err)
        return
    assert head.records == whole[: len(head.records)] and head.records


@pytest.mark.parametrize("name, content, row, fragments", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_the_errors_reading_them_whole_gives(tmp_path, name, content, row, fragments):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_head(path, 8)
    assert caught.value.file == name and str(caught.value).startswith(name)
    assert caught.value.row == HEAD_ROWS.get(name, row)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        # An error past the first rows is not the preview's to find: the whole read reports it.
        ("later.json", json.dumps([{"a": i} for i in range(20)])[:-1] + ",,]", None),
        ("later.jsonl", "\n".join(json.dumps({"a": i}) for i in range(20)) + "\n{oops\n", None),
        # Within the first rows, or the one after them (read to tell whether the file goes on), it is.
        ("early.json", '[{"a": 1}, {"a": 2} {"a": 3}]', ["line 1, column 21", "Expecting ',' delimiter"]),
        ("early.jsonl", '{"a": 1}\n{"a": 2\n', ["row 2", "line 2 is not valid JSON"]),
        ("early.csv", "a,b\n1,2\n3,4,5\n", ["not valid CSV", "line 3"]),
        ("cut.json", '[{"a": 1}', ["Expecting ',' delimiter"]),
        ("trailing.json", '[{"a": 1}] [', ["Extra data"]),
    ],
)
def test_errors_in_the_first_rows_only(tmp_path, name, content, fragments):
    path = tmp_path / name
    path.write_text(content)
    if fragments is None:
        assert len(read_head(path, 8).records) == 8
        with pytest.raises(DataError):
            read_records(path)
        return
    with pytest.raises(DataError) as caught:
        read_head(path, 8)
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize("name", ["array.json", "lines.jsonl", "table.csv"])
def test_a_row_longer_than_the_budget(tmp_path, name):
    path = tmp_path / name
    short, long = {"instruction": "hi", "output": "y"}, {"instruction": "hi", "output": "x" * 5000}
    _write(path, [long, short], seed=1)
    with pytest.raises(DataError) as caught:
        read_head(path, 8, budget=1000)
    assert caught.value.row == 1 and "this row alone is over 1000 bytes" in str(caught.value)
    # A later row that does not fit in what is left of the budget leaves the rows before it.
    _write(path, [short, long], seed=1)
    assert read_head(path, 8, budget=1000).records == [short]


def test_a_long_object_at_the_top_is_named_by_its_first_key(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"instruction": "hi", "output": "y" * 100}] * 50}))
    with pytest.raises(DataError) as caught:
        read_head(path, 8, budget=1000)
    assert "starts with an object over 1000 bytes (its first key: data)" in str(caught.value)
    assert "top level is an object (keys: data)" in str(read_records_error(path))


def read_records_error(path) -> DataError:
    with pytest.raises(DataError) as caught:
        read_records(path)
    return caught.value
