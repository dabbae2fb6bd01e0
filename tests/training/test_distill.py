"""Supervised fine-tuning held near the base model (workbench/training/distill.py), through the worker as the UI
runs it, on a tiny Llama trained whole (an adapter on its random weights barely moves it): a KL weight keeps the
tuned model's distributions near the base's where the same run without it moves far, and rows with `answers:
base_distribution` learn the base's distributions, not their replies.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from tests.conftest import PRESETS, kill_workers, wait_for_jobs
from workbench.config import load_config
from workbench.data import encode_conversations, load_conversations
from workbench.data.hf_dataset import DISTILL_COLUMN
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze
from workbench.training.distill import DistillCollator, _kl

pytestmark = pytest.mark.slow

STEPS = 8


def test_the_collator_lays_the_marks_as_the_ids():
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], DISTILL_COLUMN: [1, 1, 1]},
            {"input_ids": [8, 9], "labels": [-100, 9], DISTILL_COLUMN: [0, 0]}]  # fmt: skip
    flat = DistillCollator(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True))(rows)
    assert flat["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert flat[DISTILL_COLUMN].tolist() == [[True, True, True, False, False]]
    padded = DistillCollator(DataCollatorForLanguageModeling(pad_token_id=0))(rows)
    assert padded["input_ids"].tolist() == [[5, 6, 7], [8, 9, 0]]
    assert padded[DISTILL_COLUMN].tolist() == [[True, True, True], [False, False, False]]
    # A validation set has no marks: the batch is TRL's own.
    plain = DistillCollator(DataCollatorForLanguageModeling(pad_token_id=0))([{"input_ids": [1], "labels": [1]}])
    assert DISTILL_COLUMN not in plain


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (["data.datasets.0.share=null", "data.datasets.1.use=validation", "data.datasets.1.share=null",
          "data.datasets.1.answers=base_distribution"],
         "answers: base_distribution is for a training dataset"),
        (["stage.name=dpo", "data.datasets.1.answers=base_distribution"],
         "answers: base_distribution replaces the replies of conversations; stage 'dpo'"),
        (["stage.kl_to_base=-1"], "stage.kl_to_base"),
    ],
)  # fmt: skip
def test_settings_that_cannot_hold_are_refused(settings, problem):
    with pytest.raises(Exception, match=problem.replace("(", r"\(")):
        load_config(PRESETS / "sft-lora-identity.yaml", settings)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model):
    """{case: finished job}: the identity preset on the tiny model, with its general replay (alpaca's first 8 rows,
    in every epoch) as the data's replies (free, held by a KL weight) or as the base's distributions (distilled)."""
    home = tmp_path_factory.mktemp("distill-home")
    os.environ["WORKBENCH_HOME"] = str(home)
    cases = {  # the preset holds its runs near the base: these take that apart
        "free": ["stage.kl_to_base=0", "data.datasets.1.answers=data"],
        "held": ["stage.kl_to_base=5", "data.datasets.1.answers=data"],
        "distilled": ["stage.kl_to_base=0"],
    }
    try:
        spawn.ensure_launcher()
        store = RunQueue()
        common = [f"model.name_or_path={tiny_model}", "method.name=full", f"train.max_steps={STEPS}",
                  "train.threads=1", "train.learning_rate=3e-2", "train.lr_scheduler_type=constant",
                  "data.cutoff_len=64", "data.datasets.1.max_samples=8", "train.report_to=none"]  # fmt: skip
        jobs = {
            case: store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", [*common, *settings])))
            for case, settings in cases.items()
        }
        done = wait_for_jobs(store, jobs)
        for case, job in done.items():
            assert job.state == "finished", f"{case}: {job.files.read_status().get('error')}\n{job.files.log_tail()}"
        yield done
    finally:
        kill_workers(home)
        del os.environ["WORKBENCH_HOME"]


def distance(job, tiny_model, rows) -> float:
    """The mean KL(base ‖ tuned) over the reply tokens of `rows`: how far the run moved the model there."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tuned = AutoModelForCausalLM.from_pretrained(job.files.adapter).eval()
    encoded = encode_conversations(rows, tokenizer, cutoff_len=64, train_on_prompt=False)
    total = count = 0.0
    with torch.no_grad():
        for ids, labels in zip(encoded.input_ids, encoded.labels, strict=True):
            trained = torch.tensor(labels[1:]) != -100
            x = torch.tensor([ids])
            log_p = torch.log_softmax(base(x).logits[0, :-1][trained], -1)
            log_q = torch.log_softmax(tuned(x).logits[0, :-1][trained], -1)
            total += _kl(log_p, log_q).sum().item()
            count += trained.sum().item()
    return total / count


def test_the_kl_and_the_cross_entropy_are_logged_from_zero(runs):
    for case in ("held", "distilled"):
        records = [r for r in runs[case].files.read_metrics() if "loss" in r]
        assert len(records) == STEPS
        assert all(math.isfinite(r["kl_to_base"]) for r in records), records
        assert records[0]["kl_to_base"] == pytest.approx(0.0, abs=1e-6)  # the first step starts at the base
    assert "kl_to_base" not in runs["free"].files.read_metrics()[0]  # plain SFT, TRL's own trainer


def test_a_kl_weight_keeps_the_model_near_its_base(runs, tiny_model):
    config = runs["free"].files.read_config()
    rows = load_conversations(config.data.datasets[0], first=8).conversations
    free, held = distance(runs["free"], tiny_model, rows), distance(runs["held"], tiny_model, rows)
    assert held < free / 3, (held, free)  # measured: 5 to 7 times nearer


def test_replay_rows_learn_the_base_distributions_not_their_replies(runs, tiny_model):
    config = runs["free"].files.read_config()
    rows = load_conversations(config.data.datasets[1], first=8).conversations  # the replay's rows
    free, distilled = distance(runs["free"], tiny_model, rows), distance(runs["distilled"], tiny_model, rows)
    assert distilled < free / 3, (distilled, free)  # measured: 4 times nearer (1.2 vs 4.9)
