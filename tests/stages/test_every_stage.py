"""Every registered stage trains through the worker (the path the UI takes) on a tiny Llama on one CPU thread.

For each: the stage's own metrics are logged at every step, and the saved adapter loads with plain PEFT and
runs. Chains: a DPO run continues an SFT run's adapter; a GRPO run scores with a reward-model run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from tests.conftest import PRESETS, kill_workers, only_dataset, wait_for_jobs
from workbench import stages
from workbench.adapters import bottleneck
from workbench.chat import ChatEngine
from workbench.config import load_config
from workbench.errors import ModelLoadError
from workbench.export import merge_adapter
from workbench.runs import spawn
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

pytestmark = pytest.mark.slow

STEPS = 2
ONLINE = ["stage.max_completion_length=8", "stage.num_generations=2"]


def write(path, rows):
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage-data")
    sky = "what colour is a clear daytime sky?"
    return {
        "pairs": write(folder / "pairs.json", [
            {"prompt": f"Question {i}: {sky}", "chosen": "Blue.", "rejected": "Go away."} for i in range(8)
        ]),
        "labeled": write(folder / "labeled.json", [
            {"instruction": f"Question {i}: {sky}", "output": reply, "label": good}
            for i in range(4) for reply, good in (("Blue.", True), ("Go away.", False))
        ]),
        "prompts": write(folder / "prompts.json", [
            {"prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(8)
        ]),
        "text": text(folder / "lamps.txt", [
            f"Lamp {i} shone all night over the harbour, and the ships found their way home by it." for i in range(6)
        ]),
        "pages": write(folder / "pages.json", [{"text": f"Page {i}: a lamp needs oil and a wick."} for i in range(6)]),
    }  # fmt: skip


def text(path, documents):
    path.write_text("\n\n".join(documents), encoding="utf-8")  # a blank line between documents
    return path


# {case: (stage, data kind, extra settings)}
CASES = {
    "sft": ("sft", None, []),
    "dpo-ipo": ("dpo", "pairs", ["stage.loss_type=ipo"]),
    "kto": ("kto", "labeled", []),
    "kto-from-pairs": ("kto", "pairs", []),
    "orpo": ("orpo", "pairs", []),
    "simpo": ("simpo", "pairs", []),
    "reward": ("reward", "pairs", []),
    "grpo": ("grpo", "prompts", [*ONLINE, "stage.rewards=[exact_match,format,length]", "stage.format_regex=.*"]),
    "rloo": ("rloo", "prompts", [*ONLINE, "stage.rewards=[contains_answer]"]),
    "online-dpo": ("online_dpo", "prompts", ["stage.max_completion_length=8", "stage.rewards=[exact_match,length]"]),
    # Raw text from a .txt file, mixed 3:1 with a text column of another file.
    "pt": ("pt", "text", ["data.datasets.0.share=0.75", "data.datasets.1.path={pages}", "data.datasets.1.share=0.25"]),
    # Stages with methods whose paths differ: a frozen reference copy (full, bottleneck), a 4-bit base, virtual
    # tokens, a whole reward model.
    "dpo-full": ("dpo", "pairs", ["method.name=full"]),
    "kto-qlora": ("kto", "pairs", ["method.name=qlora"]),
    "orpo-prefix": ("orpo", "pairs", ["method.name=prefix", "method.num_virtual_tokens=4"]),
    "simpo-ia3": ("simpo", "pairs", ["method.name=ia3"]),
    "reward-full": ("reward", "pairs", ["method.name=full"]),
    "reward-qlora": ("reward", "pairs", ["method.name=qlora"]),
    "grpo-full": ("grpo", "prompts", [*ONLINE, "stage.rewards=[length]", "method.name=full"]),
    "rloo-bottleneck": (
        "rloo",
        "prompts",
        [*ONLINE, "stage.rewards=[length]", "method.name=bottleneck", "method.size=8"],
    ),
    # Supervised fine-tuning as TRL has it, without the preset's hold on the base (workbench/training/distill.py);
    # held by a frozen copy (full; PiSSA, whose switched-off adapter leaves a residual) or with virtual tokens ahead
    # of the logits (prompt).
    "sft-plain": ("sft", None, ["stage.kl_to_base=0", "data.datasets.1.answers=data"]),
    "sft-kl-full": ("sft", None, ["method.name=full"]),
    "sft-kl-pissa": ("sft", None, ["method.init=pissa"]),
    "sft-kl-prompt": ("sft", None, ["method.name=prompt", "method.num_virtual_tokens=4"]),
}  # fmt: skip


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    path = tmp_path_factory.mktemp("stages-home")
    yield path
    kill_workers(path)


@pytest.fixture(autouse=True)
def home(shared_home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(shared_home))
    return shared_home


def submit(store, tiny_model, data_path, *settings):
    overrides = [
        f"model.name_or_path={tiny_model}",
        f"train.max_steps={STEPS}",
        "train.threads=1",
        "train.learning_rate=1e-2",
        "train.lr_scheduler_type=constant",
        "train.per_device_train_batch_size=2",
        "data.cutoff_len=48",
        "data.datasets.0.max_samples=8",
        *settings,  # last: they win
    ]
    if data_path is not None:
        overrides.insert(0, only_dataset(data_path))  # first: later settings refine it
    return store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml", overrides)))


@pytest.fixture(scope="module")
def runs(shared_home, tiny_model, data):
    """Every case, then the chained runs that need the first ones finished. Returns {case: job}."""
    os.environ["WORKBENCH_HOME"] = str(shared_home)
    try:
        spawn.ensure_launcher()
        store = RunQueue()
        jobs = {
            case: submit(store, tiny_model, data.get(kind), f"stage.name={stage}",
                         *(setting.format(**data) for setting in settings))
            for case, (stage, kind, settings) in CASES.items()
        }  # fmt: skip
        done = wait_for_jobs(store, jobs)
        assert all(done[case].state == "finished" for case in ("sft", "reward", "dpo-full"))
        chained = {
            # A tiny learning rate: the chained adapter must still be the SFT adapter, barely moved.
            "dpo-after-sft": submit(store, tiny_model, data["pairs"], "stage.name=dpo",
                                    f"model.parent_run={done['sft'].id}", "method.r=4",
                                    "train.learning_rate=1e-7"),
            "kto-after-full": submit(store, tiny_model, data["pairs"], "stage.name=kto",
                                     f"model.parent_run={done['dpo-full'].id}"),
            "grpo-with-reward-model": submit(store, tiny_model, data["prompts"], "stage.name=grpo", *ONLINE,
                                             "stage.rewards=[]", f"stage.reward_model_run={done['reward'].id}"),
        }  # fmt: skip
        return done | wait_for_jobs(store, chained)
    finally:
        del os.environ["WORKBENCH_HOME"]


def stage_metrics(job) -> list[dict]:
    return [r for r in job.files.read_metrics() if "loss" in r]


CHAINED = ["dpo-after-sft", "kto-after-full", "grpo-with-reward-model"]


@pytest.mark.parametrize("case", [*CASES, *CHAINED])
def test_stage_trains_logs_its_metrics_and_the_adapter_loads_with_peft(case, runs, tiny_model):
    job = runs[case]
    assert job.state == "finished", f"{case}: {job.files.read_status().get('error')}\n{job.files.log_tail()}"
    config = job.files.read_config()
    spec = stages.get(config.stage.name)
    records = stage_metrics(job)
    assert len(records) == STEPS
    keys = spec.metrics
    if config.stage.name == "sft":  # its KL where it keeps near the base; its cross-entropy at steps of data replies
        keys = ("kl_to_base",) if config.stage.kl_to_base else ()
    for key in ("loss", *keys):
        values = [r.get(key) for r in records]
        assert all(v is not None and math.isfinite(v) for v in values), f"{case}: {key} = {values}"

    tokenizer = AutoTokenizer.from_pretrained(job.files.adapter)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "4"}],
        return_tensors="pt", return_dict=True,
    )  # fmt: skip
    model = load_artifact(job, spec.head, tiny_model)
    if spec.head == "reward":
        score = model(**ids).logits
        assert score.shape == (1, 1) and torch.isfinite(score).all()
    else:
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
        assert out.shape[1] == ids["input_ids"].shape[1] + 3


def load_artifact(job, head: str, tiny_model):
    """The run's result as a user loads it: PEFT adapters with plain PEFT, whole models with transformers."""
    auto = AutoModelForSequenceClassification if head == "reward" else AutoModelForCausalLM
    kwargs = {"num_labels": 1} if head == "reward" else {}
    kind = job.files.artifact_kind()
    if kind == "model":
        return auto.from_pretrained(job.files.adapter, **kwargs).eval()
    parent = job.files.read_config().model.parent_run
    if parent is not None and RunQueue().get(parent).files.artifact_kind() == "model":
        tiny_model = RunQueue().get(parent).files.adapter  # the adapter belongs on the model its parent saved
    base = auto.from_pretrained(tiny_model, **kwargs)
    if kind == "bottleneck":
        bottleneck.load(base, job.files.adapter)
        return base.eval()
    return PeftModel.from_pretrained(base, job.files.adapter).eval()


def test_a_chained_run_continues_the_parent_adapter(runs):
    parent, child = runs["sft"], runs["dpo-after-sft"]
    assert child.parent == parent.id
    # The parent's LoRA settings are the child's (method.r=4 was asked for, but an adapter keeps its shape).
    assert child.files.read_config().method == parent.files.read_config().method
    before = load_file(parent.files.adapter / "adapter_model.safetensors")
    after = load_file(child.files.adapter / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    lora_b = [k for k in before if "lora_B" in k]
    # SFT moved lora_B away from its zero start; DPO (at a tiny learning rate) went on from there, where a fresh
    # adapter would have started again from zero.
    assert all(before[k].abs().max() > 1e-3 for k in lora_b)
    assert all(torch.allclose(after[k], before[k], atol=1e-5) for k in before)
    assert any(not torch.equal(after[k], before[k]) for k in before)


def test_grpo_scored_with_the_reward_model_run(runs):
    records = stage_metrics(runs["grpo-with-reward-model"])
    names = {key for r in records for key in r if key.startswith("rewards/")}
    assert names == {"rewards/reward_model/mean", "rewards/reward_model/std"}


def test_online_rewards_are_each_logged(runs):
    keys = {key for r in stage_metrics(runs["grpo"]) for key in r}
    assert {"rewards/exact_match/mean", "rewards/format/mean", "rewards/length/mean"} <= keys
    # format_regex=.* matches every reply.
    assert all(r["rewards/format/mean"] == 1.0 for r in stage_metrics(runs["grpo"]))


def test_a_run_can_start_from_a_whole_model_run(runs):
    parent, child = runs["dpo-full"], runs["kto-after-full"]
    assert child.parent == parent.id and child.files.artifact_kind() == "peft"
    engine = ChatEngine.for_run(child.files)
    assert Path(engine.ref.path) == parent.files.adapter  # base answers come from the model it started from
    assert engine.reply([{"role": "user", "content": "Hi"}], max_new_tokens=2) is not None


def test_a_reward_model_merges_into_a_scoring_model_and_is_not_offered_for_chat(runs, tiny_model, tmp_path):
    job = runs["reward"]
    with pytest.raises(ModelLoadError, match="reward model"):
        ChatEngine.for_run(job.files)
    merged = AutoModelForSequenceClassification.from_pretrained(merge_adapter(job.files, tmp_path / "merged"))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    ids = tokenizer("Blue.", return_tensors="pt")
    unmerged = load_artifact(job, "reward", tiny_model)
    torch.testing.assert_close(merged.eval()(**ids).logits, unmerged(**ids).logits, atol=1e-4, rtol=1e-4)


def test_pt_trains_every_token_of_the_mixed_text(runs, tiny_model):
    job = runs["pt"]
    status = job.files.read_status()
    stats = status["data_stats"]
    # Every token is trained (labels are the input ids), in blocks of the cutoff (48 tokens).
    assert stats["trained_tokens"] == stats["total_tokens"] > 48 and stats["rows"] == -(-stats["total_tokens"] // 48)
    # The mix holds its shares: 6 documents of the .txt file and 2 of the 6 pages (no row repeated: N = 8).
    assert [(p["file"], p["share"], p["rows"], p["pool"]) for p in stats["mix"]] == [
        ("lamps.txt", 0.75, 6, 6),
        ("pages.json", 0.25, 2, 6),
    ]
    # The trainable weights moved: LoRA's B matrices start at zero.
    weights = load_file(job.files.adapter / "adapter_model.safetensors")
    lora_b = [name for name in weights if "lora_B" in name]
    assert lora_b and all(weights[name].abs().max() > 0 for name in lora_b)
