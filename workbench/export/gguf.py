"""A run's model as GGUF for llama.cpp and Ollama, written by llama.cpp's own converter.

The merged model (or the whole model a full run saved) becomes `<run>-f16.gguf` or `<run>-q8_0.gguf`; smaller
quantisations (q4_k_m, ...) are made from the f16 file by llama.cpp's `llama-quantize` where it is installed. A
PEFT LoRA adapter becomes `<run>-lora-f16.gguf` for llama.cpp's `--lora`. The chat template and the stop token
travel inside the file. Every file is checked after writing and its report, a JSON file beside it, says how: a
model loads back and its greedy replies are compared with the merged model's, a LoRA's tensors with the adapter's.
The converter and the checks run in child processes; this module imports no torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from workbench.errors import WorkbenchError
from workbench.export import merge_adapter
from workbench.export.child import run_child
from workbench.export.llama_cpp import (
    LLAMA_CPP_PYTHON,
    ConverterMissingError,
    converter_command,
    quantizer,
    require_converter,
)
from workbench.runs.files import RunFiles, write_json_atomic

# Written by the converter itself.
ConverterType = Literal["f32", "f16", "bf16", "q8_0"]
# Made from the f16 file by llama-quantize (its names, lower case).
QuantizerType = Literal[
    "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_0", "q4_1", "q4_k_s", "q4_k_m",
    "q5_0", "q5_1", "q5_k_s", "q5_k_m", "q6_k",
]  # fmt: skip
QUANTS: tuple[str, ...] = get_args(ConverterType) + get_args(QuantizerType)


class GgufError(WorkbenchError):
    """A GGUF export that cannot be made: the message names the run, file or setting."""

    category = "config"


@dataclass(frozen=True)
class GgufExport:
    """A written GGUF file and its report (also saved beside it as `<file stem>.json`)."""

    path: Path
    report: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.path.with_suffix(".json")


def gguf_dir(files: RunFiles) -> Path:
    """Where a run's GGUF files go by default: `<run>/gguf/`."""
    return files.root / "gguf"


def export_gguf(
    files: RunFiles, quants: Sequence[str] = ("f16",), output_dir: Path | None = None, check: bool = True
) -> list[GgufExport]:
    """Write the run's model as `<run>-<quant>.gguf` for each of `quants` in `output_dir` (default
    `<run>/gguf/`), merging first if needed, and (with `check`) load each back and compare its greedy replies
    with the merged model's (one child process for all, so the merged model's replies are computed once)."""
    quants = list(dict.fromkeys(quants))
    unknown = [q for q in quants if q not in QUANTS]
    if unknown or not quants:
        raise GgufError(f"quant: {', '.join(unknown) or 'none'} given; choose from {', '.join(QUANTS)}")
    needs_quantizer = [q for q in quants if q in get_args(QuantizerType)]
    if needs_quantizer and quantizer() is None:
        raise ConverterMissingError(
            f"quant {', '.join(needs_quantizer)}: llama.cpp's `llama-quantize` is not on PATH. f16 and q8_0 need "
            "only the converter; for smaller types install llama.cpp (its release binaries, or `brew install "
            "llama.cpp`) so that `llama-quantize` is on PATH"
        )
    require_converter()  # before a merge that would be wasted
    model = model_folder(files)
    output_dir = Path(output_dir) if output_dir else gguf_dir(files)
    output_dir.mkdir(parents=True, exist_ok=True)
    reports: dict[Path, dict[str, Any]] = {}
    for quant in quants:
        target = output_dir / f"{files.root.name}-{quant}.gguf"
        started = time.monotonic()
        with _staging(target) as staging:
            if quant in get_args(ConverterType):
                _convert(model, staging, quant)
            else:
                with _staging(target.with_name(f"{target.stem}-f16.gguf")) as f16:
                    _convert(model, f16, "f16")
                    _quantize(f16, staging, quant)
            staging.replace(target)
        reports[target] = {
            "file": target.name,
            "kind": "model",
            "type": quant,
            "source": str(model),
            "bytes": target.stat().st_size,
            "convert_seconds": round(time.monotonic() - started, 1),
            "converter": f"llama.cpp from llama-cpp-python {LLAMA_CPP_PYTHON}",
            "quantizer": quantizer() if quant in get_args(QuantizerType) else None,
        }
        # Written now and again after the check: a check that fails leaves no older file's report beside it.
        write_json_atomic(target.with_suffix(".json"), reports[target])
    if check:
        started = time.monotonic()
        found = _child_report(["gguf-check", str(model)], list(reports))
        for target, report in reports.items():
            report["check"] = found[target.name]
            report["check_seconds_all_files"] = round(time.monotonic() - started, 1)
            write_json_atomic(target.with_suffix(".json"), report)
    return [GgufExport(target, report) for target, report in reports.items()]


def export_lora_gguf(files: RunFiles, output_dir: Path | None = None, check: bool = True) -> GgufExport:
    """Write the run's LoRA adapter as `<run>-lora-f16.gguf` for llama.cpp's `--lora` (on the base model's GGUF),
    and (with `check`) compare its tensors with the adapter's."""
    from workbench.runs import chaining

    adapter = _lora_adapter(files)
    require_converter()
    ref = chaining.base_ref(files.read_config())
    base = Path(ref.path)
    if not (base / "config.json").is_file():
        raise GgufError(
            f"the base model {ref.base_name!r} is not a local folder: llama.cpp's LoRA converter reads the base's "
            "config from disk (download it, or set model.name_or_path to its folder)"
        )
    output_dir = Path(output_dir) if output_dir else gguf_dir(files)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"{files.root.name}-lora-f16.gguf"
    started = time.monotonic()
    with _staging(target) as staging:
        _run_converter("convert_lora_to_gguf.py", "--base", str(base), "--outtype", "f16", "--outfile", str(staging),
                       str(adapter), what=str(adapter))  # fmt: skip
        staging.replace(target)
    report: dict[str, Any] = {
        "file": target.name,
        "kind": "lora",
        "type": "f16",
        "source": str(adapter),
        "base": str(base),
        "bytes": target.stat().st_size,
        "convert_seconds": round(time.monotonic() - started, 1),
        "converter": f"llama.cpp from llama-cpp-python {LLAMA_CPP_PYTHON}",
    }
    write_json_atomic(target.with_suffix(".json"), report)
    if check:
        report["check"] = _child_report(["gguf-lora-check", str(adapter)], [target])[target.name]
        write_json_atomic(target.with_suffix(".json"), report)
    return GgufExport(target, report)


def model_folder(files: RunFiles) -> Path:
    """A plain model folder of the run: the whole model a full run saved, else the merge (made when missing or
    older than the adapter). Refused for models that are not causal language models."""
    if files.artifact_kind() is None:
        raise GgufError(f"run {files.root.name} has no adapter yet: it has not finished")
    if files.artifact_kind() == "model":
        folder = files.adapter
    else:
        folder = files.root / "merged"
        fresh = (folder / "config.json").is_file() and folder.stat().st_mtime >= files.adapter.stat().st_mtime
        folder = folder if fresh else merge_adapter(files, folder)
    architectures = json.loads((folder / "config.json").read_text()).get("architectures") or ["?"]
    if not architectures[0].endswith("ForCausalLM"):
        raise GgufError(
            f"{folder / 'config.json'}: architectures is {architectures[0]}; GGUF export takes a causal language "
            "model (a reward model's score head has no place in llama.cpp)"
        )
    return folder


def _lora_adapter(files: RunFiles) -> Path:
    config_file = files.adapter / "adapter_config.json"
    if not config_file.is_file():
        raise GgufError(
            f"run {files.root.name} has no PEFT adapter ({config_file} is missing): a GGUF LoRA needs one; "
            "export the whole model as GGUF instead"
        )
    config = json.loads(config_file.read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        kind = "DoRA" if config.get("use_dora") else config.get("peft_type")
        raise GgufError(
            f"{config_file}: peft_type {kind}; llama.cpp's --lora takes plain LoRA adapters only. "
            "Export the merged model as GGUF instead"
        )
    return files.adapter


def _convert(model: Path, output: Path, outtype: str) -> None:
    _run_converter("convert_hf_to_gguf.py", str(model), "--outtype", outtype, "--outfile", str(output),
                   what=str(model))  # fmt: skip


def _run_converter(script: str, *args: str, what: str) -> None:
    command, env = converter_command(script, *args)
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise GgufError(f"llama.cpp's {script} failed on {what} (exit code {result.returncode}):\n{tail}")


def _quantize(source: Path, output: Path, quant: str) -> None:
    command = [quantizer() or "llama-quantize", str(source), str(output), quant.upper()]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
        raise GgufError(f"llama-quantize failed making {quant} (exit code {result.returncode}):\n{tail}")


def _child_report(args: list[str], ggufs: list[Path]) -> dict[str, Any]:
    """Run a check in the export child; its findings by file name."""
    first = ggufs[0]
    with _staging(first.with_name(f"{first.stem}-check.json")) as report:
        names = ", ".join(path.name for path in ggufs)
        run_child([*args, str(report), *map(str, ggufs)], f"checking {names}", offline=True)
        return json.loads(report.read_text())


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    # A unique temporary path beside `target`, removed on leaving unless it was renamed: a reader never sees
    # half a file, and two exports of one run do not share one.
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
