"""Getting a run's result out: the adapter zip (with its loss curve), a merged full model, and zips of folders.

Merging loads the full model, so it runs in a child process (`python -m workbench.export merge RUN_DIR [OUT]`):
whoever calls `merge_adapter`, the web UI included, never imports torch. GGUF files (`gguf.py`), Ollama's
Modelfile (`ollama.py`) and pushing to the Hugging Face Hub (`hub.py`) live beside this module.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.evaluation import report
from workbench.export.child import run_child
from workbench.runs.files import RunFiles

# Weights barely compress, and deflating a full model takes longer than sending it: store them as they are.
_STORED_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def zip_adapter(files: RunFiles, output: Path | None = None) -> Path:
    """Write `<run>-adapter.zip` (`<run>-model.zip` for methods that leave a whole model), or `output`,
    atomically and return its path.

    Holds adapter/ (weights, config, tokenizer files, model card), loss.png when losses were logged, and eval/
    (report, examples, chart) when the run was evaluated.
    """
    _require_adapter(files)
    output = Path(output) if output else files.root / adapter_zip_name(files)
    with _writing_zip(output) as zf:
        for path in sorted(files.adapter.rglob("*")):
            if path.is_file():
                method = zipfile.ZIP_STORED if path.suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                zf.write(path, Path("adapter") / path.relative_to(files.adapter), compress_type=method)
        chart = loss_chart_png(files.read_metrics(), title=files.root.name)
        if chart is not None:
            zf.writestr("loss.png", chart)
        for name in (report.REPORT, report.EXAMPLES, report.CHART):
            if (files.evaluation / name).is_file():
                zf.write(files.evaluation / name, Path("eval") / name)
    return output


def adapter_zip_name(files: RunFiles) -> str:
    """`<run>-adapter.zip`, or `<run>-model.zip` for methods that leave a whole model."""
    kind = "model" if files.artifact_kind() == "model" else "adapter"
    return f"{files.root.name}-{kind}.zip"


def loss_chart_png(records: list[dict[str, Any]], title: str = "") -> bytes | None:
    """The training loss (and eval loss, if logged) by step as a PNG; None when no loss was logged."""
    train = [r for r in records if r.get("loss") is not None and "step" in r]
    evals = [r for r in records if r.get("eval_loss") is not None and "step" in r]
    if not train and not evals:
        return None
    # The object API with an explicit Agg canvas: no pyplot global state, safe in a threaded server.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if train:
        axes.plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss", color="tab:blue")
    if evals:
        steps, losses = [r["step"] for r in evals], [r["eval_loss"] for r in evals]
        axes.plot(steps, losses, label="eval loss", color="tab:orange", marker="o")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def merge_adapter(files: RunFiles, output_dir: Path | None = None) -> Path:
    """Fold the run's adapter into its full-precision base and save a plain model folder with the tokenizer.

    Written to `output_dir` (default `<run>/merged/`) atomically, replacing an older merge. Runs in a child
    process; raises WorkbenchError if the run has no adapter or its method cannot be merged.
    """
    _require_adapter(files)
    config = files.read_config()
    from workbench import methods, models

    spec = methods.get(config.method.name)
    if not spec.mergeable:
        raise WorkbenchError(f"run {files.root.name} used {spec.title}, which cannot be merged: {spec.merge_refusal}")
    output_dir = Path(output_dir) if output_dir else files.root / "merged"
    # A local base is read from disk: the child needs no hub.
    run_child(
        ["merge", str(files.root), str(output_dir)], "merging", offline=models.is_local(config.model.name_or_path)
    )
    return output_dir


def zip_folder(path: Path, output: Path | None = None) -> Path:
    """Zip a folder (e.g. a merged model) as `<folder>.zip` beside it, or `output`, atomically; returns the zip.

    Entries sit under the folder's name; weight files are stored uncompressed.
    """
    path = Path(path)
    if not path.is_dir():
        raise WorkbenchError(f"{path} is not a folder")
    output = Path(output) if output else path.with_name(f"{path.name}.zip")
    with _writing_zip(output) as zf:
        for item in sorted(path.rglob("*")):
            if item.is_file():
                method = zipfile.ZIP_STORED if item.suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                zf.write(item, Path(path.name) / item.relative_to(path), compress_type=method)
    return output


@contextmanager
def _writing_zip(output: Path) -> Iterator[zipfile.ZipFile]:
    # Written beside `output` under a name of its own (two clicks on one download must not share a file) and
    # renamed into place when complete: a reader never sees half a zip. It keeps mkstemp's mode, 0600: trained
    # weights are the user's alone.
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            yield zf
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)


def _require_adapter(files: RunFiles) -> None:
    if files.artifact_kind() is None:
        raise WorkbenchError(f"run {files.root.name} has no adapter yet: it has not finished")


# -- the child process --------------------------------------------------------------------------------------


def _merge(files: RunFiles, output_dir: Path) -> None:
    import torch
    from peft import PeftModel

    from workbench import models, stages
    from workbench.runs import chaining

    _require_adapter(files)
    config = files.read_config()
    ref = chaining.base_ref(config)
    # The trained template travels with the adapter; fall back to the base's for adapters saved without one.
    has_tokenizer = (files.adapter / "tokenizer_config.json").is_file()
    tokenizer_ref = models.ModelRef(path=str(files.adapter), base_name=ref.base_name) if has_tokenizer else ref
    tokenizer = models.load_tokenizer(tokenizer_ref, config.model.chat_template)
    # Always the full-precision base, even for QLoRA: merging into 4-bit weights re-quantizes and drifts.
    # A reward model merges into the base with its score head (a sequence classifier).
    head = stages.get(config.stage.name).head
    base = models.load_model(ref, head=head, pad_token_id=tokenizer.pad_token_id, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(files.adapter)).merge_and_unload()

    from filelock import FileLock

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp's mode, 0700, is kept: the merged weights are the user's alone.
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        # Two merges of one run may finish together: swap the folders one at a time.
        with FileLock(str(output_dir.parent / f".{output_dir.name}.lock")):
            if output_dir.exists():
                shutil.rmtree(output_dir)
            staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
