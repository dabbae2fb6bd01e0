"""Every registered method trains through the worker (the path the UI takes), on a tiny Llama on one CPU thread.

For each: finite losses were logged; the worker's count of trainable parameters equals the count shown before
Start; between the first and the last checkpoint exactly the trainable parameters changed (frozen ones did
not, and a partly frozen whole model still equals the base there); the artifact loads back and chats;
merging is offered or refused with a reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import PRESETS, kill_workers, wait_for_jobs
from workbench import methods
from workbench.chat import ChatEngine
from workbench.config import load_config
from workbench.errors import WorkbenchError
from workbench.export import _merge, merge_adapter
from workbench.methods.counting import count_for_method
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow

STEPS = 3
# Each registered method once, plus variants whose code paths differ: {case: (method, settings)}. Settings make
# a method fit the tiny model (2 layers, hidden size 64) where a default would not, or turn options on.
METHOD_SETTINGS = {
    "freeze": ["method.trainable_layers=1", "method.trainable_modules=mlp", "method.extra_modules=[norm]"],
    "llama_adapter": ["method.adapter_layers=1", "method.adapter_len=4"],
    "prefix": ["method.num_virtual_tokens=4"],
    "prompt": ["method.num_virtual_tokens=4"],
    "ptuning": ["method.num_virtual_tokens=4", "method.encoder_hidden_size=32"],
    "vera": ["method.r=32"],
    "oft": ["method.block_size=16"],
    "adalora": ["method.init_r=4", "method.target_r=2"],
    # The LoRA options, spread over the LoRA family.
    "lora": ["method.init=pissa", "method.use_rslora=true"],
    "dora": ["method.loraplus_lr_ratio=4"],
    "qlora": ["train.optim=paged_adamw_8bit"],
    "qlora-8bit": ["method.bits=8"],
}
CASES = {name: (name, METHOD_SETTINGS.get(name, [])) for name in methods.names()}
CASES["qlora-8bit"] = ("qlora", METHOD_SETTINGS["qlora-8bit"])
BASE_WEIGHTS = {"qlora": "4-bit nf4", "qlora-8bit": "8-bit"}
# P-tuning saves the prompt its encoder produces, not the encoder: every saved tensor changes.
SAVES_OTHER_THAN_TRAINED = {"ptuning"}


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods-home")
    yield path
    kill_workers(path)


@pytest.fixture(autouse=True)
def home(shared_home, monkeypatch):
    # One home for the module: the warm launcher forks every method's worker, as in the UI.
    monkeypatch.setenv("WORKBENCH_HOME", str(shared_home))
    return shared_home


@pytest.fixture(scope="module")
def runs(shared_home, tiny_model):
    """All cases queued at once; the queue runs them one after another. Returns {case: job}."""
    os.environ["WORKBENCH_HOME"] = str(shared_home)
    try:
        spawn.ensure_launcher()
        store = RunQueue()
        jobs = {}
        for case, (name, settings) in CASES.items():
            overrides = [
                f"model.name_or_path={tiny_model}",
                f"method.name={name}",
                *settings,
                f"train.max_steps={STEPS}",
                "train.save_steps=1",
                f"train.save_total_limit={STEPS}",
                "train.threads=1",
                "train.learning_rate=1e-2",
                "train.lr_scheduler_type=constant",
                "train.per_device_train_batch_size=2",
                "data.cutoff_len=48",
                "data.datasets.0.max_samples=8",
            ]
            config = freeze(load_config(PRESETS / "sft-lora-identity.yaml", overrides))
            jobs[case] = store.submit(config)
        return wait_for_jobs(store, jobs)
    finally:
        del os.environ["WORKBENCH_HOME"]


@pytest.mark.parametrize("case", CASES)
def test_method_trains_changes_only_trainable_weights_reloads_and_chats(case, runs, tiny_model):
    job, name = runs[case], CASES[case][0]
    status = job.files.read_status()
    assert job.state == "finished", f"{case}: {status.get('error')}\n{job.files.log_tail()}"
    assert status["base_weights"] == BASE_WEIGHTS.get(case, "fp32")

    losses = [r["loss"] for r in job.files.read_metrics() if "loss" in r]
    assert len(losses) == STEPS and all(loss is not None and math.isfinite(loss) for loss in losses)

    # The count shown before Start (meta device, no weights) is the worker's count.
    config = job.files.read_config()
    assert (status["trainable_params"], status["total_params"]) == count_for_method(config.method, tiny_model)

    first, last = (_weights(job.files.checkpoints / f"checkpoint-{step}") for step in (1, STEPS))
    changed = {key for key in first if not torch.equal(first[key], last[key])}
    if name in SAVES_OTHER_THAN_TRAINED:
        assert changed == set(first)
    else:
        assert sum(first[key].numel() for key in changed) == status["trainable_params"]
    if methods.get(name).artifact != "peft":  # a whole model is saved: what did not train equals the base
        base = load_file(str(tiny_model / "model.safetensors"))
        assert all(torch.equal(last[key], base[key]) for key in set(last) - changed if key in base)

    engine = ChatEngine.for_run(job.files)
    question = [{"role": "user", "content": "Who are you?"}]
    assert isinstance(engine.reply(question, max_new_tokens=3), str)
    assert isinstance(engine.reply(question, max_new_tokens=3, adapter=False), str)


@pytest.mark.parametrize("case", CASES)
def test_merge_is_exact_where_offered_and_refused_with_a_reason_elsewhere(case, runs, tmp_path):
    job, name = runs[case], CASES[case][0]
    spec = methods.get(name)
    if not spec.mergeable:
        with pytest.raises(WorkbenchError, match="cannot be merged: " + spec.merge_refusal[:20]):
            merge_adapter(job.files)
        return
    _merge(job.files, tmp_path / "merged")  # what the merge child process runs
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    engine = ChatEngine.for_run(job.files)
    ids = engine.encode([{"role": "user", "content": "Who are you?"}])
    with torch.no_grad():
        expected = engine.model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    # QLoRA too: chat and merge both put its adapter on the full-precision base.
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    files = sorted(checkpoint.glob("*.safetensors"))
    assert files, f"no weights in {checkpoint}"
    weights = {}
    for path in files:
        weights.update(load_file(str(path)))
    return weights
