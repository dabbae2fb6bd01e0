"""DPO through the CLI and the worker: preference pairs in, DPO's metrics logged, the margin rising, the adapter
loaded back with plain PEFT; data of the wrong shape refused before anything is written."""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import PRESETS, only_dataset
from tests.test_training import cli
from workbench.runs.queue import RunQueue

pytestmark = pytest.mark.slow

DPO = [
    "stage.name=dpo",
    "stage.beta=0.1",
    "train.max_steps=6",
    "train.learning_rate=5e-3",
    "train.lr_scheduler_type=constant",
    "train.per_device_train_batch_size=4",
    "train.threads=1",
    "train.save_steps=100",
    "data.cutoff_len=64",
]


def pairs_file(tmp_path):
    """Pairs whose chosen and rejected replies differ clearly and consistently."""
    rows = [
        {
            "prompt": f"Question {i}: what colour is a clear daytime sky?",
            "chosen": "Blue.",
            "rejected": "I will not tell you, stop asking me questions.",
        }
        for i in range(16)
    ]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def overrides(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def test_dpo_logs_its_metrics_and_the_margin_rises(tmp_path, home, tiny_model):
    data = pairs_file(tmp_path)
    result = cli(
        "train", str(PRESETS / "sft-lora-identity.yaml"),
        *overrides(*DPO, only_dataset(data), f"model.name_or_path={tiny_model}"),
        home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (job,) = RunQueue().list()
    assert job.state == "finished"
    records = [r for r in job.files.read_metrics() if "loss" in r]
    assert len(records) == 6
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert all(math.isfinite(r[key]) for r in records), key
    margins = [r["rewards/margins"] for r in records]
    assert margins[-1] > margins[0] and margins[-1] > 0, margins
    # The Runs tab charts them beside the loss.
    from workbench.ui.runs_tab import _charts

    stage_metrics = _charts(job)[2]
    assert set(stage_metrics["series"]) == {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
    }

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(job.files.adapter))
    assert tuned.peft_config["default"].peft_type == "LORA"
    assert "dpo" in (job.files.adapter / "README.md").read_text()


def test_conversations_are_refused_for_dpo_and_pairs_for_sft_before_anything_is_written(tmp_path, home):
    # The preset's replay as the data's replies: replay as the base's distributions is refused for DPO first.
    conversations = overrides("data.datasets.1.answers=data", *DPO)
    result = cli("train", str(PRESETS / "sft-lora-identity.yaml"), "--detach", *conversations, home=home)
    assert result.returncode == 2
    assert "prompt, chosen and rejected" in result.stderr and "stage dpo" in result.stderr

    pairs = pairs_file(tmp_path)
    result = cli(
        "train", str(PRESETS / "sft-lora-identity.yaml"), "--detach",
        *overrides(only_dataset(pairs)), home=home,
    )  # fmt: skip
    assert result.returncode == 2
    assert "preference stage (stage.name: dpo)" in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
    assert not (home / "datasets").exists() or not any(p.is_file() for p in (home / "datasets").rglob("*"))


def test_dpo_for_a_method_without_peft_loads_its_reference_from_the_local_base(tmp_path, home, model_ref):
    # The bundled model records its hub id; the reference copy must come from the local folder (offline).
    data = pairs_file(tmp_path)
    settings = [*DPO, only_dataset(data), "method.name=bottleneck", "method.size=8", "train.max_steps=1"]
    # With the chat template's system prompt, these prompts fill 32 tokens: no room for a reply, said plainly.
    result = cli("train", str(PRESETS / "sft-lora-identity.yaml"), *overrides(*settings, "data.cutoff_len=32"),
                 home=home)  # fmt: skip
    assert result.returncode != 0 and "raise data.cutoff_len" in result.stdout + result.stderr
    result = cli("train", str(PRESETS / "sft-lora-identity.yaml"), *overrides(*settings, "data.cutoff_len=96"),
                 home=home)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    job = next(job for job in RunQueue().list() if job.state == "finished")
    (record,) = [r for r in job.files.read_metrics() if "loss" in r]
    # Step 1: the adapters start as the identity, so the policy is the reference and the rewards are zero.
    assert record["rewards/chosen"] == pytest.approx(0, abs=1e-4) and record["loss"] == pytest.approx(0.6931, abs=1e-3)
