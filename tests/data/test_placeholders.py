"""Placeholders (`{{name}}` in LLaMA-Factory's identity set) found, filled from the spec everywhere the text goes,
and warned of when left empty; the run's system prompt in every conversation that has none."""

from __future__ import annotations

import pytest

from tests.conftest import PRESETS
from workbench.config import DataConfig, DatasetSpec, load_config
from workbench.data import encode_conversations, freeze_spec, load_all, placeholders
from workbench.data.inspect import count_rows, preview
from workbench.data.loading import load_for
from workbench.errors import ConfigError
from workbench.runs.submission import freeze

IDENTITY = PRESETS / "data" / "identity.json"
FILL = {"name": "Zorblax", "author": "Quillon Labs"}


def test_the_identity_sample_asks_for_name_and_author():
    seen = preview(DatasetSpec(path=str(IDENTITY)))
    assert seen.placeholders == ["name", "author"]
    assert "{{name}}" in seen.rows[0]["assistant"]
    counted = count_rows(DatasetSpec(path=str(IDENTITY)))
    assert (counted.rows, counted.unfilled) == (91, ["name", "author"])


def test_filled_values_reach_the_preview_the_loaded_rows_and_the_frozen_spec():
    spec = DatasetSpec(path=str(IDENTITY), fill=FILL)
    seen = preview(spec)
    assert (
        seen.rows[2]["assistant"]
        == "I am Zorblax, an AI assistant developed by Quillon Labs. How can I assist you today?"
    )
    assert seen.placeholders == ["name", "author"]  # still asked for: the boxes show their values
    loaded = load_for("conversations", spec)
    assert placeholders.found_in(loaded.conversations) == []
    assert count_rows(spec).unfilled == []
    assert freeze_spec(spec).fill == FILL


def test_half_filled_leaves_the_rest_as_written():
    loaded = load_for("conversations", DatasetSpec(path=str(IDENTITY), fill={"name": "Zorblax"}))
    assert placeholders.found_in(loaded.conversations) == ["author"]
    assert loaded.conversations[2][1]["content"].startswith("I am Zorblax, an AI assistant developed by {{author}}")


def test_fill_reaches_every_kind_of_example(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text('[{"prompt": "Who are you, {{name}}?", "chosen": "{{name}}.", "rejected": "Nobody."}]')
    pair = load_for("pairs", DatasetSpec(path=str(path), fill={"name": "Zed"})).examples[0]
    assert (pair.prompt[0]["content"], pair.chosen) == ("Who are you, Zed?", "Zed.")
    kto = load_for("labeled", DatasetSpec(path=str(path), fill={"name": "Zed"})).examples
    assert [e.completion for e in kto] == ["Zed.", "Nobody."]


def test_placeholder_names_are_checked():
    with pytest.raises(ValueError, match="not a placeholder name"):
        DatasetSpec(path="x.json", fill={"first name": "Ada"})


def test_the_encoded_example_holds_the_filled_text_and_the_system_prompt(tokenizer):
    config = DataConfig(datasets=[DatasetSpec(path=str(IDENTITY), fill=FILL)], system_prompt="You are Zorblax.")
    conversations = [c for ds in load_all(config) for c in ds.conversations]
    assert conversations[0][0] == {"role": "system", "content": "You are Zorblax."}
    encoded = encode_conversations(conversations[:3], tokenizer, cutoff_len=256, train_on_prompt=False)
    text = tokenizer.decode(encoded.input_ids[2])
    assert text.startswith("<|im_start|>system\nYou are Zorblax.<|im_end|>\n<|im_start|>user\nWho are you?")
    assert "I am Zorblax, an AI assistant developed by Quillon Labs." in text and "{{" not in text
    trained = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids[2], encoded.labels[2], strict=True) if label != -100]
    )
    assert trained.startswith("I am Zorblax") and "You are Zorblax" not in trained  # the system prompt is masked


def test_a_rows_own_system_prompt_wins_over_the_runs(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text('[{"system": "Own.", "question": "Q?", "answer": "A."}, {"question": "R?", "answer": "B."}]')
    config = DataConfig(datasets=[DatasetSpec(path=str(path))], system_prompt="Run's.")
    first, second = load_all(config)[0].conversations
    assert (first[0]["content"], second[0]["content"]) == ("Own.", "Run's.")
    # Preference stages' prompts get it too.
    pairs = tmp_path / "pairs.json"
    pairs.write_text('[{"prompt": "Hi", "chosen": "Hello.", "rejected": "Go."}]')
    pair = load_for("pairs", DatasetSpec(path=str(pairs)), system_prompt="Run's.").examples[0]
    assert pair.prompt == [{"role": "system", "content": "Run's."}, {"role": "user", "content": "Hi"}]


def test_starting_a_run_warns_of_placeholders_without_a_value():
    warnings: list[str] = []
    config = load_config(PRESETS / "sft-lora-identity.yaml", ["data.datasets.0.fill={name: Zorblax}"])
    frozen = freeze(config, warn=warnings.append)
    (warning,) = warnings
    assert "identity.json has placeholders without a value ({{author}})" in warning
    assert "--set data.datasets.0.fill.author=VALUE" in warning
    assert frozen.data.datasets[0].fill == {"name": "Zorblax"}
    warnings.clear()
    freeze(load_config(PRESETS / "sft-lora-identity.yaml", [f"data.datasets.0.fill={FILL}"]), warn=warnings.append)
    assert warnings == []


def test_a_bad_placeholder_name_from_the_command_line_names_the_field():
    with pytest.raises(ConfigError) as caught:
        load_config(PRESETS / "sft-lora-identity.yaml", ["data.datasets.0.fill.first name=Ada"])
    assert [p.field for p in caught.value.problems] == ["data.datasets.0.fill"]
