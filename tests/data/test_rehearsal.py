"""Replay with the base model's own answers (`answers: base`, workbench/data/rehearsal.py): the rows of that
dataset, and only those, end in the model's greedy reply to their prompt; replies already written are reused and a
line cut short is written again; the config says where the setting does not apply."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PRESETS, only_dataset
from workbench.config import load_config
from workbench.data import mixing, rehearsal
from workbench.errors import ConfigError
from workbench.evaluation.generate import replies

MAX_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)


def mix(*overrides: str):
    """The identity rows mixed with alpaca's, the second with answers: base."""
    config = load_config(
        PRESETS / "sft-lora-identity.yaml",
        [
            only_dataset(PRESETS / "data" / "identity.json"),
            "data.datasets.0.max_samples=6",
            "data.datasets.0.share=0.5",
            f"data.datasets.1.path={PRESETS / 'data' / 'alpaca_en_demo.json'}",
            "data.datasets.1.max_samples=3",
            "data.datasets.1.answers=base",
            *overrides,
        ],
    )
    return mixing.load_mixed(config.data, "conversations", seed=config.train.seed)


class Counting:
    """The real replier, counting the prompts it was asked."""

    def __init__(self, model_and_tokenizer):
        model, tokenizer = model_and_tokenizer
        self.replier = rehearsal.BaseReplier(lambda: model, tokenizer, MAX_NEW_TOKENS)
        self.asked = 0

    def __call__(self, prompts):
        self.asked += len(prompts)
        return self.replier(prompts)


def test_rows_of_the_dataset_end_in_the_base_models_own_reply_and_the_rest_are_kept(tmp_path, model_and_tokenizer):
    mixed = mix("data.mix_strategy=every_row")  # alpaca's 3 rows repeat to keep their half of the mix
    identity, alpaca = (ds.conversations for ds in mixed.loaded)
    replier = Counting(model_and_tokenizer)
    rows = rehearsal.answer_with_base(mixed.rows, alpaca, replier, tmp_path / "rehearsal.jsonl")

    assert replier.asked == 3  # each prompt once, however often the mix repeats it
    assert len(rows) == len(mixed.rows) == 12
    model, tokenizer = model_and_tokenizer
    prompts = [rehearsal.prompt_of(c) for c in alpaca]
    answers = replies(model, tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS)
    expected = {json.dumps(prompt): answer for prompt, answer in zip(prompts, answers, strict=True)}
    for before, after in zip(mixed.rows, rows, strict=True):
        if any(before is row for row in identity):
            assert after is before
        else:
            assert after[:-1] == before[:-1] and after[-1]["role"] == "assistant"
            assert after[-1]["content"] == expected[json.dumps(before[:-1])] != before[-1]["content"]
    saved = [json.loads(line) for line in (tmp_path / "rehearsal.jsonl").read_text().splitlines()]
    assert sorted(json.dumps(r["prompt"]) for r in saved) == sorted(expected)


def test_replies_written_are_reused_and_a_line_cut_short_is_written_again(tmp_path, model_and_tokenizer):
    mixed = mix("data.datasets.1.max_samples=20", "data.datasets.0.max_samples=20")
    alpaca = mixed.loaded[1].conversations
    saved = tmp_path / "rehearsal.jsonl"
    replier = Counting(model_and_tokenizer)
    # Stopped after the first batch, as a stop during the writing does.
    assert rehearsal.answer_with_base(mixed.rows, alpaca, replier, saved, lambda done, total: done == 0) is None
    assert replier.asked == rehearsal.BATCH and len(saved.read_text().splitlines()) == rehearsal.BATCH
    with saved.open("a") as out:  # a worker killed while writing a line
        out.write('{"prompt": [{"role": "user", "content": "cut sh')

    told = []
    rows = rehearsal.answer_with_base(mixed.rows, alpaca, replier, saved, lambda *p: told.append(p) or True)
    assert replier.asked == 20 and told[0] == (rehearsal.BATCH, 20) and told[-1] == (20, 20)
    lines = saved.read_text().splitlines()
    assert sum(1 for line in lines if line.endswith("cut sh")) == 1  # the torn line stays alone on its own line
    assert len(rehearsal.read(saved)) == 20
    answered = [row for row in rows if not any(row is r for r in mixed.loaded[0].conversations)]
    assert {row[-1]["content"] for row in answered} <= set(rehearsal.read(saved).values())


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            ["data.datasets.1.use=validation", "data.datasets.0.share=null", "data.datasets.1.share=null"],
            "answers: base is for a training dataset",
        ),
        (["stage.name=dpo"], "stage 'dpo' trains on other data"),
    ],
)
def test_answers_from_the_base_are_refused_where_there_are_no_replies_to_train(overrides, problem):
    with pytest.raises(ConfigError) as err:
        load_config(PRESETS / "sft-lora-identity.yaml", [*overrides, "data.datasets.1.answers=base"])
    assert problem in str(err.value)
