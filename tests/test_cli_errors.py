"""Bad input through `python -m workbench train`: a clear error naming file, row and field, and nothing written."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.test_training import cli

GOOD_ROW = {"instruction": "Say hi", "input": "", "output": "Hi!"}

# (file name, file bytes, words the error must contain)
BAD_FILES = [
    ("empty.json", b"", ["empty.json", "empty"]),
    ("broken.json", b'[\n{"instruction": "a", "output": "b"},\n{"instruction": "c" "output": "d"}\n]', ["line 3"]),
    (
        "broken.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n{"instruction": "e", "output": "f"}\n',
        ["broken.jsonl", "line 2"],
    ),
    ("unknown.json", json.dumps([{"Frage": "q", "Antwort": "a"}]).encode(), ["unknown.json", "Frage"]),
    ("missing.json", json.dumps([GOOD_ROW, {"instruction": "x"}]).encode(), ["row 2", "output"]),
    ("blank.json", json.dumps([GOOD_ROW, {"instruction": "x", "output": ""}]).encode(), ["row 2", "output", "empty"]),
    (
        "number.json",
        json.dumps({"messages": [{"role": "user", "content": 5}]}).encode().join([b"[", b"]"]),
        ["row 1", "content"],
    ),
    ("latin1.json", '[{"instruction": "café", "output": "x"}]'.encode("latin-1"), ["latin1.json", "UTF-8"]),
    ("table.xlsx", b"PK\x03\x04", ["table.xlsx", ".jsonl"]),
    ("deep.json", b"[" * 10_000 + b"]" * 10_000, ["deep.json", "nested too deeply"]),  # was a RecursionError
    ("binary.csv", b"instruction,output\nSay hi,Hi!\nSay bye,By\x00e\n", ["binary.csv", "NUL byte", "line 3"]),
]


def write_config(tmp_path, data_path, **sections):
    config = {"data": {"datasets": [{"path": str(data_path)}]}, **sections}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def assert_nothing_written(home):
    for sub in ("runs", "datasets"):
        folder = home / sub
        assert not folder.exists() or not any(folder.iterdir()), f"{sub} was written to"
    if (home / "jobs.sqlite").exists():
        assert "no runs yet" in cli("jobs", home=home).stdout


@pytest.mark.parametrize(("name", "content", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_data_file_is_refused_with_its_location(tmp_path, home, name, content, words):
    data = tmp_path / name
    data.write_bytes(content)
    result = cli("train", str(write_config(tmp_path, data)), home=home)
    assert result.returncode == 2, result.stdout + result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert_nothing_written(home)


def test_file_over_the_size_limit_is_refused(tmp_path, home, monkeypatch):
    data = tmp_path / "big.json"
    data.write_text(json.dumps([GOOD_ROW] * 20000))
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "0.1")
    result = cli("train", str(write_config(tmp_path, data)), home=home)
    assert result.returncode == 2
    assert "big.json" in result.stderr and "MB" in result.stderr, result.stderr
    assert_nothing_written(home)


@pytest.mark.parametrize(
    ("sections", "words"),
    [
        ({"method": {"name": "telepathy"}}, ["method", "unknown method 'telepathy'", "lora"]),
        ({"train": {"learning_rate": -0.1}}, ["train.learning_rate", "greater than 0", "-0.1"]),
        (
            {"model": {"name_or_path": "/models/nowhere"}},
            ["model.name_or_path", "/models/nowhere", "no model folder at"],
        ),
    ],
)
def test_bad_settings_are_refused_before_any_job_exists(tmp_path, home, sections, words):
    data = tmp_path / "ok.json"
    data.write_text(json.dumps([GOOD_ROW]))
    result = cli("train", str(write_config(tmp_path, data, **sections)), home=home)
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr, result.stderr
    assert_nothing_written(home)
