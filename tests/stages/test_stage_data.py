"""Every stage refuses data of the wrong shape before Start, naming the fields it needs, and writes nothing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PRESETS, only_dataset
from workbench import home, stages
from workbench.config import load_config
from workbench.errors import ConfigError
from workbench.runs.submission import freeze

IDENTITY = PRESETS / "data" / "identity.json"  # conversations (alpaca): instruction, input, output


def write(tmp_path, rows, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def pairs(tmp_path):
    return write(tmp_path, [{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}], "pairs.json")


# {stage: (what to feed it, words the refusal must contain)}
WRONG = {
    "sft": (pairs, ["preference data", "stage.name: dpo"]),
    "dpo": (lambda _: IDENTITY, ["chosen", "rejected", "row 1 has: instruction"]),
    "orpo": (lambda _: IDENTITY, ["chosen", "rejected"]),
    "simpo": (lambda _: IDENTITY, ["chosen", "rejected"]),
    "reward": (lambda _: IDENTITY, ["chosen", "rejected"]),
    "kto": (lambda _: IDENTITY, ["field 'label'", "true: a desirable reply", "or preference pairs"]),
    "grpo": (lambda tmp: write(tmp, [{"question": "2+2?"}]), ["field 'prompt'", "row 1 has: question"]),
    "rloo": (pairs, ["preference data", "RL stages need prompts"]),
    "online_dpo": (lambda tmp: write(tmp, [{"prompt": ["not", "messages"]}]), ["field 'prompt[0]'"]),
    "pt": (lambda _: IDENTITY, ["identity.json, row 1, field 'text': is missing", "raw text needs a text column"]),
}


def test_every_stage_has_a_wrong_data_case():
    assert set(WRONG) == set(stages.names())


@pytest.mark.parametrize("stage", WRONG)
def test_wrong_shaped_data_is_refused_before_start_naming_what_is_missing(stage, tmp_path):
    make, words = WRONG[stage]
    config = load_config(PRESETS / "sft-lora-identity.yaml", [f"stage.name={stage}", only_dataset(make(tmp_path))])
    with pytest.raises(ConfigError) as raised:
        freeze(config)
    (problem,) = raised.value.problems
    assert problem.field == "data.datasets.0"
    for word in words:
        assert word in problem.message, problem.message
    assert f"(stage {stage})" in problem.message
    assert not any(home.datasets_dir().iterdir()), "nothing is stored for a refused run"


def test_answer_rewards_need_a_reference_answer_on_every_row(tmp_path):
    data = write(tmp_path, [{"prompt": "2+2?", "answer": "4"}, {"prompt": "3+3?"}])
    config = load_config(
        PRESETS / "sft-lora-identity.yaml",
        ["stage.name=grpo", "stage.rewards=[exact_match]", only_dataset(data)],
    )
    with pytest.raises(ConfigError) as raised:
        freeze(config)
    assert "data.json, row 2, field 'answer': is missing" in str(raised.value)
    # A reward that needs no answer takes the same prompts.
    freeze(config.model_copy(update={"stage": config.stage.model_copy(update={"rewards": ["length"]})}))


def test_kto_reads_llamafactory_kto_tag_rows(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": reply}], "label": good}
        for reply, good in (("Hello!", True), ("Whatever.", False))
    ]
    data = write(tmp_path, rows)
    info = {"kto": {"file_name": data.name, "formatting": "sharegpt", "columns": {"messages": "messages",
            "kto_tag": "label"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
            "assistant_tag": "assistant"}}}  # fmt: skip
    (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    config = load_config(
        PRESETS / "sft-lora-identity.yaml",
        ["stage.name=kto", only_dataset(tmp_path), "data.datasets.0.name=kto"],
    )
    frozen = freeze(config)
    assert frozen.data.datasets[0].columns["kto_tag"] == "label"
