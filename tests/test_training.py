"""Training through the CLI and the worker process, as a user runs it; the adapter loaded back with plain PEFT."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PRESETS, REPO, only_dataset
from workbench.runs.store import JobStore

pytestmark = pytest.mark.slow

# A short run on 16 identity conversations: big enough to learn visibly, small enough for CI on one thread.
TRAIN_OVERRIDES = [
    only_dataset(PRESETS / "data" / "identity.json"),  # first; without the preset's replay dataset
    "train.max_steps=10",
    "train.threads=1",
    "train.per_device_train_batch_size=4",
    "train.learning_rate=1e-3",
    "train.lr_scheduler_type=constant",
    "train.save_steps=5",
    "data.cutoff_len=128",
    "data.datasets.0.max_samples=16",
    "data.datasets.0.fill={name: Zorblax}",  # the preset's name replaced, its author left out: a warning
]


def cli(*args: str, home: Path, stdin: str | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run of the identity preset, trained by `python -m workbench train` (one placeholder left
    without a value: the CLI's warning is checked on the way); (home, job, the command's stderr)."""
    home = tmp_path_factory.mktemp("trained-home")
    overrides = [arg for item in TRAIN_OVERRIDES for arg in ("--set", item)]
    result = cli("train", str(PRESETS / "sft-lora-identity.yaml"), *overrides, home=home)
    assert result.returncode == 0, result.stdout + result.stderr
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        (job,) = JobStore(home / "jobs.sqlite").list()
    finally:
        del os.environ["WORKBENCH_HOME"]
    return home, job, result.stderr


def test_run_finishes_and_logs_finite_losses(trained):
    _, job, _ = trained
    assert job.state == "finished"
    losses = [r["loss"] for r in job.files.read_metrics() if "loss" in r]
    assert len(losses) == 10
    assert all(math.isfinite(x) for x in losses)
    status = job.files.read_status()
    assert status["step"] == status["max_steps"] == 10
    assert status["data_stats"]["rows"] == 16
    assert any((job.files.root / "tensorboard").glob("events.out.tfevents.*"))  # TensorBoard by default


def test_short_run_visibly_learns(trained):
    _, job, _ = trained
    losses = [r["loss"] for r in job.files.read_metrics() if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 * 0.8, losses


def test_adapter_loads_with_plain_peft_and_matches_chat_engine(trained, model_ref, monkeypatch):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    home, job, _ = trained
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    adapter = job.files.adapter
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in (adapter / "README.md").read_text()

    messages = [{"role": "user", "content": "Who are you?"}]
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    base = AutoModelForCausalLM.from_pretrained(model_ref.path)
    with torch.no_grad():
        base_logits = base(**ids).logits[0, -1]
        tuned = PeftModel.from_pretrained(base, str(adapter)).eval()
        peft_logits = tuned(**ids).logits[0, -1]

    from workbench.chat import ChatEngine

    engine_logits = ChatEngine.for_run(job.files).logits(messages)
    torch.testing.assert_close(engine_logits, peft_logits, rtol=1e-4, atol=1e-4)
    assert (peft_logits - base_logits).abs().max() > 0.1  # the adapter really changes the model


def test_cli_lists_exports_and_chats(trained, tmp_path):
    home, job, _ = trained
    listing = cli("jobs", home=home)
    assert job.id in listing.stdout and "finished" in listing.stdout

    export = cli("export", job.id, "-o", str(tmp_path / "adapter.zip"), home=home)
    assert export.returncode == 0, export.stderr
    names = zipfile.ZipFile(tmp_path / "adapter.zip").namelist()
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "adapter/README.md"} <= set(names)

    chat = cli("chat", job.id, "--max-new-tokens", "12", home=home, stdin="hi\n\n")
    assert chat.returncode == 0, chat.stderr
    reply = chat.stdout.split("model> ", 1)[1].split("you> ")[0].strip()
    assert reply, chat.stdout


def test_cli_warns_of_placeholders_left_without_a_value(trained):
    *_, stderr = trained
    assert (
        "warning: data.datasets.0: identity.json has placeholders without a value ({{author}}); the model will "
        "learn them as written. Give their values with data.datasets.0.fill (--set data.datasets.0.fill.author="
        "VALUE)." in " ".join(stderr.split())
    ), stderr


def test_chat_uses_the_runs_system_prompt(trained, tmp_path, monkeypatch):
    """A run trained with a system prompt chats with it: the same prompt the model learned under."""
    import shutil

    import yaml

    from workbench.chat import ChatEngine
    from workbench.runs.files import RunFiles

    home, job, _ = trained
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    messages = [{"role": "user", "content": "Who are you?"}]
    engine = ChatEngine.for_run(job.files)
    default = engine.tokenizer.decode(engine.encode(messages)[0])
    assert "You are a helpful AI assistant named SmolLM" in default  # no system prompt: the template's own

    copy = tmp_path / job.id  # the same run, as if trained with a system prompt
    shutil.copytree(job.files.root, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["data"]["system_prompt"] = "You answer for Quillon Labs."
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    engine = ChatEngine.for_run(RunFiles(copy))
    prompt = engine.tokenizer.decode(engine.encode(messages)[0])
    assert prompt.startswith("<|im_start|>system\nYou answer for Quillon Labs.<|im_end|>\n<|im_start|>user\nWho")
