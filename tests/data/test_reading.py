import json

import pandas as pd
import pytest

from workbench.data.reading import read_records
from workbench.errors import DataError

ROWS = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Add", "input": "2 + 2", "output": "4"},
]


def _json(path, rows):
    path.write_text(json.dumps(rows), encoding="utf-8")


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")


def _csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)


def _parquet(path, rows):
    pd.DataFrame(rows).to_parquet(path)


@pytest.mark.parametrize(
    "name, write",
    [
        ("data.json", _json),
        ("data.jsonl", _jsonl),
        ("lines.json", _jsonl),  # JSON Lines saved with a .json name
        ("data.csv", _csv),
        ("data.parquet", _parquet),
        ("DATA.JSON", _json),
    ],
)
def test_every_file_type_reads_the_same_records(tmp_path, name, write):
    path = tmp_path / name
    write(path, ROWS)
    # A CSV cell cannot tell empty text from a missing value: empty cells read as missing.
    expected = [{**r, "input": r["input"] or None} for r in ROWS] if name.endswith(".csv") else ROWS
    assert read_records(path) == expected


def test_csv_keeps_text_as_text_and_empty_cells_become_none(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('instruction,input,output\nHow many?,,42\n"Say ""NA""",NA,null\n', encoding="utf-8")
    assert read_records(path) == [
        {"instruction": "How many?", "input": None, "output": "42"},
        {"instruction": 'Say "NA"', "input": "NA", "output": "null"},
    ]


def test_parquet_nulls_and_nan_become_none_and_lists_stay_lists(tmp_path):
    path = tmp_path / "data.parquet"
    frame = pd.DataFrame(
        {
            "messages": [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "yo"}]],
            "score": [1.5, float("nan")],
            "system": ["be brief", None],
        }
    )
    frame.to_parquet(path)
    records = read_records(path)
    assert records[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert records[1]["score"] is None and records[1]["system"] is None


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS).encode())
    assert read_records(path) == ROWS


# (file name, its bytes, the row the error names, words the error holds); test_head.py reads them too.
BAD_FILES = [
    ("empty.json", b"", None, ["empty"]),
    ("blank.jsonl", b"\n  \n", None, ["empty"]),
    ("bad.json", b'[\n  {"a": 1},\n  {"a": 2,,}\n]', None, ["not valid JSON", "line 3"]),
    ("bad.jsonl", b'{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n', 3, ["line 3", "not valid JSON"]),
    ("lines.json", b'{"a": 1}\n{"a" 2}\n', 2, ["line 2"]),
    ("object.json", b'{"data": [{"a": 1}]}', None, ["top level is an object", "data", "list of objects"]),
    ("number.json", b"42", None, ["top level is a number"]),
    ("nested.json", b'[{"a": 1}, [1, 2]]', 2, ["expected an object", "a list"]),
    ("scalar.jsonl", b'{"a": 1}\n"just text"\n', 2, ["expected an object", "text"]),
    ("none.json", b"[]", None, ["no rows"]),
    ("latin1.json", '[{"a": "caf\u00e9"}]'.encode("latin-1"), None, ["not UTF-8", "byte offset 11", "line 1"]),
    ("latin1.csv", "a,b\nx,y\ncaf\u00e9,z\n".encode("latin-1"), None, ["not UTF-8", "line 3"]),
    ("data.xml", b"hello", None, ["unsupported file type '.xml'", ".json, .jsonl, .csv, .parquet, .txt"]),
    ("data", b"hello", None, ["unsupported file type", "no extension"]),
    ("bad.parquet", b"PAR1 this is not parquet", None, ["not a readable Parquet file"]),
    ("ragged.csv", b'a,b\n1,2\n3,4,5,6\n"x,y\n', None, ["not valid CSV"]),
    ("deep.json", b"[" * 10_000 + b"]" * 10_000, None, ["nested too deeply"]),
    ("deep-object.json", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, None, ["nested too deeply"]),
    ("deep.jsonl", b'{"a": 1}\n' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 2, ["line 2", "nested too deeply"]),
    ("nul.csv", b"a,b\nx,y\nx\x00y,z\n", None, ["NUL byte", "byte offset 9", "line 3", "binary"]),
    ("nul.json", b'[{"a": 1},\n\x00]', None, ["NUL byte", "line 2"]),
]


@pytest.mark.parametrize("name, content, row, fragments", BAD_FILES)
def test_bad_files_name_the_file_and_the_place(tmp_path, name, content, row, fragments):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        read_records(path)
    message = str(caught.value)
    assert caught.value.file == name and message.startswith(name)
    assert caught.value.row == row
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"^gone\.json: no such file: .*gone\.json"):
        read_records(tmp_path / "gone.json")


def test_size_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    _json(path, ROWS * 2000)  # about 150 kB
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "0.1")
    with pytest.raises(DataError) as caught:
        read_records(path)
    assert caught.value.file == "big.json"
    assert "over the 0.1 MB limit" in str(caught.value) and "WORKBENCH_MAX_DATASET_MB" in str(caught.value)
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "1")
    assert len(read_records(path)) == 4000
    with pytest.raises(DataError, match=r"the file is 0\.2 MB, over the 1000 bytes limit"):
        read_records(path, max_bytes=1000)


def test_a_bad_size_limit_setting_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "data.json"
    _json(path, ROWS)
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "lots")
    with pytest.raises(DataError, match="WORKBENCH_MAX_DATASET_MB must be a positive number"):
        read_records(path)


def test_json_lines_split_at_line_breaks_only(tmp_path):
    # JSON text may hold U+2028 and U+2029 unescaped (json.dumps does with ensure_ascii=False); they are not lines.
    rows = [{"a": "one\u2028two\u2029three\x85"}, {"a": "four"}]
    path = tmp_path / "data.jsonl"
    path.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert read_records(path) == rows
