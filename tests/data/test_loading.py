import json

import pandas as pd
import pytest

from workbench import home
from workbench.config import DataConfig, DatasetSpec
from workbench.data import freeze_spec, load_all, load_conversations
from workbench.data.formats import TOOLS_INTRO
from workbench.errors import DataError

ALPACA = [
    {"instruction": "Say hi", "input": "", "output": "Hi!"},
    {"instruction": "Add", "input": "2 + 2", "output": "4"},
    {"instruction": "Name a colour", "input": "", "output": "Blue."},
]
EXPECTED = [
    [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}],
    [{"role": "user", "content": "Add\n2 + 2"}, {"role": "assistant", "content": "4"}],
    [{"role": "user", "content": "Name a colour"}, {"role": "assistant", "content": "Blue."}],
]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_each_file_type_loads_to_the_same_conversations(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(ALPACA), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ALPACA), encoding="utf-8")
    elif suffix == ".csv":
        pd.DataFrame(ALPACA).to_csv(path, index=False)
    else:
        pd.DataFrame(ALPACA).to_parquet(path)
    loaded = load_conversations(DatasetSpec(path=str(path)))
    assert (loaded.format, loaded.rows, loaded.conversations) == ("alpaca", 3, EXPECTED)
    assert loaded.path == path.resolve()


def test_max_samples_keeps_the_first_rows_and_skips_checking_the_rest(write_json):
    path = write_json([*ALPACA, {"instruction": "broken"}])
    loaded = load_conversations(DatasetSpec(path=str(path), max_samples=2))
    assert loaded.conversations == EXPECTED[:2] and loaded.rows == 4


def test_explicit_format_and_columns(write_json):
    path = write_json([{"q": "Why?", "a": "Because."}])
    loaded = load_conversations(DatasetSpec(path=str(path), format="alpaca", columns={"prompt": "q", "response": "a"}))
    assert loaded.conversations == [
        [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."}]
    ]


def test_load_all_keeps_the_order_of_the_config(write_json, demo_dir):
    first = write_json(ALPACA)
    config = DataConfig(datasets=[{"path": str(first)}, {"path": str(demo_dir), "name": "identity"}])
    loaded = load_all(config)
    assert [d.path.name for d in loaded] == ["data.json", "identity.json"]
    assert len(loaded[1].conversations) == 91


def test_real_alpaca_demo(demo_dir):
    loaded = load_conversations(DatasetSpec(path=str(demo_dir / "alpaca_en_demo.json")))
    assert (loaded.format, loaded.rows, len(loaded.conversations)) == ("alpaca", 999, 999)
    raw = json.loads((demo_dir / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    for record, conversation in zip(raw, loaded.conversations, strict=True):
        prompt = record["instruction"] + ("\n" + record["input"] if record["input"] else "")
        assert conversation == [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": record["output"]},
        ]


@pytest.mark.parametrize("via", ["folder", "info-file", "data-file"])
def test_real_glaive_toolcall_demo(demo_dir, via):
    spec = {
        "folder": DatasetSpec(path=str(demo_dir), name="glaive_toolcall_en_demo"),
        "info-file": DatasetSpec(path=str(demo_dir / "dataset_info.json"), name="glaive_toolcall_en_demo"),
        "data-file": DatasetSpec(path=str(demo_dir / "glaive_toolcall_en_demo.json")),
    }[via]
    loaded = load_conversations(spec)
    assert (loaded.format, loaded.rows, len(loaded.conversations)) == ("sharegpt", 300, 300)
    first = loaded.conversations[0]
    assert [m["role"] for m in first] == ["system", "user", "assistant", "user", "assistant", "tool", "assistant"] + [
        "user",
        "assistant",
    ]
    assert first[0]["content"].startswith(TOOLS_INTRO) and '"name": "search_recipes"' in first[0]["content"]
    assert first[4]["content"].startswith('{"name": "search_recipes", "arguments"')  # the function call
    assert first[5]["content"].startswith('{"recipes": [')  # the observation
    roles = {m["role"] for c in loaded.conversations for m in c}
    assert roles == {"system", "user", "assistant", "tool"}


def test_real_kto_demo_through_dataset_info_tags(demo_dir):
    loaded = load_conversations(DatasetSpec(path=str(demo_dir), name="kto_en_demo"))
    assert loaded.format == "sharegpt" and loaded.tags["role_tag"] == "role"
    assert len(loaded.conversations) == 300
    assert all(c[-1]["role"] == "assistant" for c in loaded.conversations)
    # Read directly, the same file is detected as openai messages and gives the same conversations.
    direct = load_conversations(DatasetSpec(path=str(demo_dir / "kto_en_demo.json")))
    assert direct.format == "openai" and direct.conversations == loaded.conversations


@pytest.fixture
def info_dir(tmp_path):
    """A small LLaMA-Factory folder: an openorca-style file mapped with columns, plus entries that cannot load."""
    folder = tmp_path / "lf"
    folder.mkdir()
    rows = [
        {"id": "1", "system_prompt": "Be terse.", "question": "Capital of France?", "response": "Paris."},
        {"id": "2", "system_prompt": "", "question": "2 + 2?", "response": "4"},
    ]
    (folder / "orca.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (folder / "pairs.json").write_text("[]", encoding="utf-8")
    info = {
        "orca_local": {
            "file_name": "orca.jsonl",
            "columns": {"prompt": "question", "response": "response", "system": "system_prompt"},
        },
        "openorca": {"hf_hub_url": "Open-Orca/OpenOrca", "columns": {"prompt": "question"}},
        "pairs": {"file_name": "pairs.json", "ranking": True, "formatting": "sharegpt"},
        "gone": {"file_name": "missing.json"},
        "odd": {"file_name": "orca.jsonl", "formatting": "pretrain"},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def test_dataset_info_column_mapping(info_dir):
    loaded = load_conversations(DatasetSpec(path=str(info_dir), name="orca_local"))
    assert loaded.format == "alpaca"
    assert loaded.conversations == [
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ],
        [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}],
    ]


@pytest.mark.parametrize(
    "name, fragments",
    [
        (None, ["choose a dataset name", "local datasets here: orca_local"]),
        ("nope", ["no dataset named 'nope'", "local datasets here: orca_local"]),
        # Tests run offline (HF_HUB_OFFLINE): a hub entry is refused at once, naming it and its hub id.
        ("openorca", ["'openorca': cannot fetch hf://Open-Orca/OpenOrca", "offline", "HF_HUB_OFFLINE is set"]),
        ("pairs", ["preference data (ranking: true)", "preference stage (stage.name: dpo)"]),
        ("gone", ["'missing.json'", "not in"]),
        ("odd", ["formatting 'pretrain'", "alpaca, sharegpt, openai"]),
    ],
)
def test_dataset_info_entries_that_cannot_load(info_dir, name, fragments):
    with pytest.raises(DataError) as caught:
        load_conversations(DatasetSpec(path=str(info_dir), name=name))
    assert caught.value.file == "dataset_info.json"
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_real_dataset_info_hub_and_preference_entries(demo_dir):
    with pytest.raises(DataError, match="'alpaca_en': cannot fetch hf://llamafactory/alpaca_en"):
        load_conversations(DatasetSpec(path=str(demo_dir), name="alpaca_en"))
    with pytest.raises(DataError, match="'dpo_en_demo' is preference data"):
        load_conversations(DatasetSpec(path=str(demo_dir), name="dpo_en_demo"))
    with pytest.raises(DataError) as caught:
        load_conversations(DatasetSpec(path=str(demo_dir), name="no_such"))
    local = str(caught.value).split("local datasets here: ")[1].split(", ")
    assert sorted(local) == sorted(
        ["identity", "alpaca_en_demo", "alpaca_zh_demo", "glaive_toolcall_en_demo", "kto_en_demo"]
    )


def test_a_folder_without_dataset_info(tmp_path):
    with pytest.raises(DataError, match="has no dataset_info.json"):
        load_conversations(DatasetSpec(path=str(tmp_path), name="x"))


GOOD = {"instruction": "a", "input": "", "output": "b"}

# Every bad input a user can bring, through the path the UI takes before a run: validate, then store.
BAD_INPUTS = [
    pytest.param("data.json", b"", None, None, "empty", id="empty-file"),
    pytest.param("data.json", b'[{"instruction": "a",\n "output": }]', None, None, "line 2", id="invalid-json"),
    pytest.param(
        "data.jsonl", json.dumps(GOOD).encode() + b"\n{oops\n", 2, None, "line 2 is not valid JSON", id="jsonl-line"
    ),
    pytest.param("data.json", b'{"rows": []}', None, None, "top level is an object", id="not-a-list"),
    pytest.param("data.json", b'[{"instruction": "a", "output": "b"}, 3]', 2, None, "expected an object", id="row"),
    pytest.param("data.json", '[{"instruction": "\xe9"}]'.encode("latin-1"), None, None, "not UTF-8", id="latin-1"),
    pytest.param("data.xml", b"hello", None, None, "unsupported file type", id="extension"),
    pytest.param("data.json", json.dumps([GOOD, {"instruction": "a"}]).encode(), 2, "output", "missing", id="missing"),
    pytest.param(
        "data.json", json.dumps([GOOD, GOOD, {**GOOD, "output": ""}]).encode(), 3, "output", "is empty", id="empty"
    ),
    pytest.param("data.json", json.dumps([{**GOOD, "output": 42}]).encode(), 1, "output", "a number", id="number"),
    pytest.param(
        "chat.json",
        json.dumps([{"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "yo"}]}]).encode(),
        1,
        "conversations[1].from",
        "unknown role 'robot'",
        id="unknown-role",
    ),
    pytest.param(
        "chat.json",
        json.dumps([{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}]).encode(),
        1,
        "messages",
        "no assistant turn",
        id="no-assistant",
    ),
    pytest.param(
        "chat.jsonl",
        json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}).encode()
        + b"\n"
        + json.dumps({"messages": [{"role": "assistant", "content": "b"}, {"role": "user", "content": "a"}]}).encode(),
        2,
        "messages[1].content",
        "must end with an assistant turn",
        id="ends-with-user",
    ),
    pytest.param(
        "data.json",
        json.dumps([{"Frage": "q", "Antwort": "a"}]).encode(),
        1,
        None,
        "cannot tell which field is which",
        id="fmt",
    ),
]


@pytest.mark.parametrize("name, content, row, field, fragment", BAD_INPUTS)
def test_bad_inputs_are_reported_and_nothing_is_stored(tmp_path, name, content, row, field, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        freeze_spec(DatasetSpec(path=str(path)))
    error = caught.value
    assert (error.file, error.row, error.field) == (name, row, field)
    assert str(error).startswith(name) and fragment in str(error)
    if row is not None:
        assert f"row {row}" in str(error)
    if field is not None:
        assert f"field '{field}'" in str(error)
    assert list(home.datasets_dir().iterdir()) == []


def test_missing_file_is_reported_and_nothing_is_stored(tmp_path):
    with pytest.raises(DataError, match=r"^gone\.csv: no such file"):
        freeze_spec(DatasetSpec(path=str(tmp_path / "gone.csv")))
    assert list(home.datasets_dir().iterdir()) == []


def test_oversized_file_is_reported_and_nothing_is_stored(write_json, monkeypatch):
    path = write_json([GOOD] * 3000)
    monkeypatch.setenv("WORKBENCH_MAX_DATASET_MB", "0.05")
    with pytest.raises(DataError, match=r"^data\.json: the file is .* over the 51\.2 kB limit"):
        freeze_spec(DatasetSpec(path=str(path)))
    assert list(home.datasets_dir().iterdir()) == []
