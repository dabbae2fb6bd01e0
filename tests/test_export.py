"""Exports: the adapter zip with its loss chart, the merged model checked against base + adapter, folder zips."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PRESETS
from workbench.config import load_config, save_config
from workbench.errors import WorkbenchError
from workbench.export import loss_chart_png, merge_adapter, zip_adapter, zip_folder
from workbench.runs.files import RunFiles

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MESSAGES = [{"role": "user", "content": "Who are you?"}]


def make_run(root: Path) -> RunFiles:
    """A run folder as the worker leaves it, minus the adapter: frozen config and logged metrics."""
    files = RunFiles(root)
    root.mkdir(parents=True)
    save_config(load_config(PRESETS / "sft-lora-identity.yaml"), files.config)
    for step in range(1, 7):
        files.append_metrics({"step": step, "loss": 3.0 / step, "learning_rate": 1e-3})
        if step % 3 == 0:
            files.append_metrics({"step": step, "eval_loss": 3.2 / step})
    return files


@pytest.fixture(scope="module")
def run(tmp_path_factory, model_ref) -> RunFiles:
    """A finished run whose LoRA adapter has random (not zero) weights, so merging visibly changes the model.

    Merging does not care how the weights were learned; a real training run is covered in test_training.py.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files = make_run(tmp_path_factory.mktemp("export") / "run-1")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_ref.path)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base, lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.1)  # random but moderate: the merged model still produces finite, sensible logits
    model.save_pretrained(files.adapter)
    AutoTokenizer.from_pretrained(model_ref.path).save_pretrained(files.adapter)
    (files.adapter / "README.md").write_text("# model card\n")
    return files


def test_adapter_zip_holds_adapter_tokenizer_card_and_loss_chart(run, tmp_path):
    path = zip_adapter(run, tmp_path / "out.zip")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        chart = zf.read("loss.png")
    assert {
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "adapter/tokenizer_config.json",
        "adapter/README.md",
        "loss.png",
    } <= names
    assert chart.startswith(PNG_SIGNATURE) and len(chart) > 5000
    assert zip_adapter(run) == run.root / "run-1-adapter.zip"
    assert not list(run.root.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))  # written, then renamed


def test_loss_chart_needs_logged_losses():
    assert loss_chart_png([]) is None
    assert loss_chart_png([{"step": 1, "learning_rate": 1e-3}]) is None
    assert loss_chart_png([{"step": 1, "eval_loss": 2.0}]).startswith(PNG_SIGNATURE)


def test_runs_without_adapter_are_refused(tmp_path):
    files = make_run(tmp_path / "unfinished")
    with pytest.raises(WorkbenchError, match="unfinished has no adapter yet"):
        zip_adapter(files)
    with pytest.raises(WorkbenchError, match="unfinished has no adapter yet"):
        merge_adapter(files)
    assert not (files.root / "merged").exists()


@pytest.mark.slow
def test_merged_model_loads_plainly_and_matches_base_plus_adapter(run, model_ref):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged_dir = merge_adapter(run)
    assert merged_dir == run.root / "merged"
    assert not list(run.root.glob(".merged-*"))  # the staging folder was renamed, not left behind
    assert not (merged_dir / "adapter_config.json").exists()

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    base = AutoModelForCausalLM.from_pretrained(model_ref.path).eval()
    with torch.no_grad():
        merged_logits = merged(**ids).logits[0, -1]
        base_logits = base(**ids).logits[0, -1]
        tuned_logits = PeftModel.from_pretrained(base, str(run.adapter)).eval()(**ids).logits[0, -1]
    torch.testing.assert_close(merged_logits, tuned_logits, rtol=1e-4, atol=1e-3)
    assert (tuned_logits - base_logits).abs().max() > 0.1  # the comparison means something: the adapter matters

    archive = zip_folder(merged_dir)
    assert archive == run.root / "merged.zip"
    with zipfile.ZipFile(archive) as zf:
        assert {"merged/config.json", "merged/model.safetensors", "merged/tokenizer_config.json"} <= set(zf.namelist())
        assert zf.getinfo("merged/model.safetensors").compress_type == zipfile.ZIP_STORED


@pytest.mark.slow
def test_merge_failures_in_the_child_come_back_as_errors(tmp_path):
    files = make_run(tmp_path / "corrupt")
    files.adapter.mkdir()
    (files.adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": "not a number"}))
    with pytest.raises(WorkbenchError, match="merging failed"):
        merge_adapter(files)
    assert not (files.root / "merged").exists()


def test_zip_folder_refuses_a_missing_folder(tmp_path):
    with pytest.raises(WorkbenchError, match="is not a folder"):
        zip_folder(tmp_path / "nothing")
