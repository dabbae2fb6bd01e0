"""GGUF export: a tuned run's merged model at f16 and q8_0 loads back and replies as the merged model does; its
LoRA adapter as a GGUF LoRA holds the adapter's tensors; what cannot be made is refused, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PRESETS, REPO
from tests.export.conftest import needs_converter
from tests.test_export import make_run
from workbench.export.gguf import GgufError, export_gguf, export_lora_gguf, model_folder
from workbench.export.llama_cpp import INSTALL_COMMAND, ConverterMissingError


def test_a_missing_converter_is_refused_with_the_command_that_installs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TOOLS", str(tmp_path / "no-tools"))
    with pytest.raises(ConverterMissingError, match=INSTALL_COMMAND.replace(".", r"\.")):
        export_gguf(make_run(tmp_path / "run-1"), ["f16"])


def test_small_quants_need_llama_quantize(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no llama-quantize anywhere
    with pytest.raises(ConverterMissingError, match="q4_k_m: llama.cpp's `llama-quantize` is not on PATH"):
        export_gguf(make_run(tmp_path / "run-1"), ["f16", "q4_k_m"])


def test_unknown_types_are_refused(tmp_path):
    with pytest.raises(GgufError, match="quant: q9 given"):
        export_gguf(make_run(tmp_path / "run-1"), ["q9"])


def test_only_causal_language_models_become_gguf(tmp_path):
    files = make_run(tmp_path / "reward")
    files.adapter.mkdir()
    (files.adapter / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    with pytest.raises(GgufError, match="architectures is LlamaForSequenceClassification"):
        model_folder(files)


def test_a_gguf_lora_needs_a_plain_lora_adapter(tmp_path):
    files = make_run(tmp_path / "ia3")
    files.adapter.mkdir()
    (files.adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(GgufError, match="peft_type IA3; llama.cpp's --lora takes plain LoRA adapters only"):
        export_lora_gguf(files)
    (files.adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True}))
    with pytest.raises(GgufError, match="peft_type DoRA"):
        export_lora_gguf(files)


@pytest.mark.slow
def test_f16_and_q8_0_load_back_and_agree_with_the_merged_model(tuned_run):
    needs_converter()
    result = tuned_run.workbench("export", tuned_run.id, "--format", "gguf", "--quant", "f16", "--quant", "q8_0")
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tuned_run.files.root / "gguf"
    reports = {q: json.loads((folder / f"{tuned_run.id}-{q}.json").read_text()) for q in ("f16", "q8_0")}
    print(json.dumps(reports, indent=1))  # the measured figures, for the README (pytest -s)
    for quant, report in reports.items():
        check = report["check"]
        assert (folder / report["file"]).stat().st_size == report["bytes"] > 50_000_000
        assert check["chat_template_in_file"] and check["stop_token_matches"], quant
        assert check["stop_token_in_file"] == "<|im_end|>"
        assert f"{report['file']}\n  loads back" in result.stdout
    f16, q8 = reports["f16"]["check"], reports["q8_0"]["check"]
    assert f16["identical_replies"] == f16["prompts"] and f16["replies"] == f16["reference_replies"]
    assert f16["reference_tokens_ranked_first"] == 1.0
    # Measured here: q8_0 ranks 100% of the merged model's reply tokens first and 3 of 4 replies are identical
    # (one differs after 20 tokens); 90% leaves room for other machines' arithmetic.
    assert q8["reference_tokens_ranked_first"] >= 0.9
    assert reports["q8_0"]["bytes"] < 0.6 * reports["f16"]["bytes"]
    assert not list(folder.glob(".*.tmp"))  # written, then renamed


@pytest.mark.slow
def test_the_gguf_lora_holds_the_adapters_tensors(tuned_run):
    needs_converter()
    result = tuned_run.workbench("export", tuned_run.id, "--format", "gguf-lora")
    assert result.returncode == 0, result.stdout + result.stderr
    path = tuned_run.files.root / "gguf" / f"{tuned_run.id}-lora-f16.gguf"
    check = json.loads(path.with_suffix(".json").read_text())["check"]
    assert check["unmatched"] == [] and check["general_type"] == "adapter" and check["alpha_matches"]
    assert check["identical"] + check["identical_but_row_order"] == check["adapter_tensors"] == check["file_tensors"]
    assert check["adapter_tensors"] == 30 * 7 * 2  # every linear layer of the 30 blocks, A and B

    # And by name, independently of the report: the value projection's matrices of the first block.
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    tensors = {t.name: np.asarray(t.data) for t in GGUFReader(path).tensors}
    adapter = load_file(tuned_run.files.adapter / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.0.self_attn.v_proj"
    for ours, theirs in (("lora_A", "lora_a"), ("lora_B", "lora_b")):
        expected = adapter[f"{prefix}.{ours}.weight"].astype(np.float16)
        np.testing.assert_array_equal(tensors[f"blk.0.attn_v.weight.{theirs}"], expected)
    assert np.abs(adapter[f"{prefix}.lora_B.weight"]).max() > 0  # trained: B left its zero start


def test_a_failing_converter_is_reported_with_its_message(tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    folder = tools / "llama.cpp-0.3.36"
    folder.mkdir(parents=True)
    (folder / ".complete").touch()
    (folder / "convert_hf_to_gguf.py").write_text("import sys\nsys.exit('unsupported architecture: Frobnicator')\n")
    monkeypatch.setenv("WORKBENCH_TOOLS", str(tools))
    files = make_run(tmp_path / "full")
    files.adapter.mkdir()
    (files.adapter / "config.json").write_text(json.dumps({"architectures": ["FrobnicatorForCausalLM"]}))
    with pytest.raises(GgufError, match="convert_hf_to_gguf.py failed .*\n.*unsupported architecture: Frobnicator"):
        export_gguf(files, ["f16"])
    assert not list((files.root / "gguf").iterdir())  # nothing half-written left behind


def test_the_export_modules_import_no_heavy_library():
    # The web UI will call them: conversion and checks belong in child processes.
    code = (
        "import sys\n"
        "import workbench.export.gguf, workbench.export.ollama, workbench.export.hub, workbench.export.llama_cpp\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_k_quants_go_through_llama_quantize_when_it_is_installed(tuned_run, tmp_path, monkeypatch):
    needs_converter()
    # A stand-in for llama.cpp's program (none is built here): it records its arguments and copies the f16 file.
    fake = tmp_path / "bin" / "llama-quantize"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "args"}\ncp "$1" "$2"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    (exported,) = export_gguf(tuned_run.files, ["q4_k_m"], tmp_path / "out", check=False)
    assert exported.path == tmp_path / "out" / f"{tuned_run.id}-q4_k_m.gguf" and exported.path.stat().st_size > 0
    source, output, kind = (tmp_path / "args").read_text().split()
    assert kind == "Q4_K_M" and Path(source).name.startswith(f".{tuned_run.id}-q4_k_m-f16.gguf.")
    assert not Path(source).exists() and not Path(output).exists()  # the f16 step and staging file are gone
    assert exported.report["quantizer"] == str(fake) and "check" not in exported.report
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [exported.path.name, f"{exported.path.stem}.json"]


def test_a_gguf_lora_needs_its_base_on_disk(tmp_path):
    from workbench.config import load_config, save_config

    files = make_run(tmp_path / "hub-base")
    config = load_config(PRESETS / "sft-lora-identity.yaml", ["model.name_or_path=someone/some-model"])
    save_config(config, files.config)
    files.adapter.mkdir()
    (files.adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(GgufError, match="the base model 'someone/some-model' is not a local folder"):
        export_lora_gguf(files)
