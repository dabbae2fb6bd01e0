"""Preference pairs in every layout we read, and every bad row refused naming the row and field."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import PRESETS
from workbench.config import DatasetSpec
from workbench.data.loading import load_pairs
from workbench.data.preference import PreferencePair, convert_pairs, detect_pair_format
from workbench.errors import DataError

HI = [{"role": "user", "content": "Hi"}]
GOOD = [{"role": "assistant", "content": "Hello! How can I help?"}]
BAD_REPLY = [{"role": "assistant", "content": "What."}]
EXPECTED = PreferencePair(prompt=HI, chosen="Hello! How can I help?", rejected="What.")

LAYOUTS = {
    "plain columns": ("columns", {"prompt": "Hi", "chosen": "Hello! How can I help?", "rejected": "What."}),
    "alpaca ranking": ("columns", {"instruction": "Hi", "input": "", "chosen": "Hello! How can I help?",
                                   "rejected": "What."}),
    "openai prompt + replies": ("openai", {"prompt": HI, "chosen": GOOD, "rejected": BAD_REPLY}),
    "openai whole conversations": ("openai", {"chosen": [*HI, *GOOD], "rejected": [*HI, *BAD_REPLY]}),
    "sharegpt ranking": ("sharegpt", {"conversations": [{"from": "human", "value": "Hi"}],
                                      "chosen": {"from": "gpt", "value": "Hello! How can I help?"},
                                      "rejected": {"from": "gpt", "value": "What."}}),
}  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_is_detected_and_read(layout):
    expected_format, record = LAYOUTS[layout]
    assert detect_pair_format([record], "pairs.json") == expected_format
    (pair,) = convert_pairs([record], expected_format, file="pairs.json")
    assert pair == EXPECTED
    assert pair.as_trl() == {
        "prompt": HI,
        "chosen": [{"role": "assistant", "content": "Hello! How can I help?"}],
        "rejected": [{"role": "assistant", "content": "What."}],
    }


def test_a_system_column_and_multi_turn_prompts_are_kept():
    record = {
        "system": "Be kind.",
        "prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey."},
                   {"role": "user", "content": "Help?"}],
        "chosen": [{"role": "assistant", "content": "Sure."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    }  # fmt: skip
    (pair,) = convert_pairs([record], "openai", file="pairs.json")
    assert [m["role"] for m in pair.prompt] == ["system", "user", "assistant", "user"]


@pytest.fixture
def llamafactory_folder(tmp_path):
    """LLaMA-Factory's demo preference data (a copy ships in presets/data) with its dataset_info.json entries."""
    for name in ("dpo_en_demo.json", "identity.json"):
        shutil.copy(PRESETS / "data" / name, tmp_path / name)
    info = {
        "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": True, "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
        "identity": {"file_name": "identity.json"},
    }  # fmt: skip
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return tmp_path


def test_llamafactory_dpo_demo_loads_through_its_dataset_info(llamafactory_folder):
    loaded = load_pairs(DatasetSpec(path=str(llamafactory_folder / "dataset_info.json"), name="dpo_en_demo"))
    assert (loaded.format, loaded.rows, len(loaded.pairs)) == ("sharegpt", 300, 300)
    assert all(p.prompt[-1]["role"] == "user" and p.chosen != p.rejected for p in loaded.pairs)


def test_a_plain_file_is_detected(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(LAYOUTS["plain columns"][1]) for _ in range(3)), encoding="utf-8")
    loaded = load_pairs(DatasetSpec(path=str(path), max_samples=2))
    assert (loaded.format, loaded.rows, loaded.pairs) == ("columns", 3, [EXPECTED, EXPECTED])


def test_sft_entry_is_not_preference_data(llamafactory_folder):
    with pytest.raises(DataError, match="no `ranking: true`"):
        load_pairs(DatasetSpec(path=str(llamafactory_folder), name="identity"))


BAD = [
    ("columns", {"prompt": "Hi", "chosen": "A"}, "rejected", "is missing"),
    ("columns", {"chosen": "A", "rejected": "B"}, "prompt", "is missing"),
    ("columns", {"prompt": "", "chosen": "A", "rejected": "B"}, "prompt", "is empty"),
    ("columns", {"prompt": "Hi", "chosen": "Same", "rejected": " Same "}, "rejected", "two different replies"),
    ("columns", {"prompt": "Hi", "chosen": "A", "rejected": 3}, "rejected", "expected text, got a number"),
    ("openai", {"prompt": [{"role": "user"}], "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}]}, "prompt[0].content", "is missing"),
    ("openai", {"prompt": HI, "chosen": [{"role": "assistant", "content": ""}],
                "rejected": [{"role": "assistant", "content": "b"}]}, "chosen[0].content", "empty assistant turn"),
    ("openai", {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "a"}],
                "rejected": [{"role": "user", "content": "Yo"}, {"role": "assistant", "content": "b"}]},
     "rejected", "must answer the same prompt"),
    ("openai", {"prompt": HI, "chosen": "a", "rejected": [{"role": "assistant", "content": "b"}]}, "chosen",
     "expected a list of messages"),
    ("openai", {"chosen": GOOD, "rejected": BAD_REPLY}, "chosen[0].content", "starts with an assistant turn"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "a"},
                  "rejected": {"from": "robot", "value": "b"}}, "rejected.from", "unknown role 'robot'"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "Hi"}], "chosen": [{"from": "gpt", "value": "a"}],
                  "rejected": {"from": "gpt", "value": "b"}}, "chosen", "expected one {from, value} message"),
]  # fmt: skip


@pytest.mark.parametrize(("layout", "record", "field", "message"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_rows_name_the_row_and_field(layout, record, field, message):
    good = LAYOUTS["plain columns"][1] if layout == "columns" else None
    records = [good, record] if good else [record]
    with pytest.raises(DataError) as caught:
        convert_pairs(records, layout, file="pairs.json")
    err = caught.value
    assert (err.file, err.row, err.field) == ("pairs.json", len(records), field)
    assert message in str(err)


def test_rows_without_pairs_say_what_is_needed():
    with pytest.raises(DataError, match=r"prompt, chosen and rejected \(row 1 has: instruction, output\)"):
        detect_pair_format([{"instruction": "Hi", "output": "Hello"}], "sft.json")
