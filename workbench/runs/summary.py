"""A run's key figures, read from its folder: what the runs-compare view and bench/methods.py show side by side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.runs.files import RunFiles

WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class RunSummary:
    method: str
    state: str
    steps: int
    trainable_params: int | None
    total_params: int | None
    peak_memory_mb: float | None
    seconds_per_step: float | None  # over logged steps 2..N: the first includes warm-up
    first_loss: float | None
    final_loss: float | None
    eval_loss: float | None
    weights_bytes: int | None  # the saved adapter's (or whole model's) weight files
    best_step: int | None = None  # the step whose checkpoint is the result (train.keep_best, early stopping)
    evaluation: dict[str, float] = field(default_factory=dict)  # headline figures of RUN/eval (evaluation/report)
    warnings: list[str] = field(default_factory=list)  # what the evaluation warns of (forgetting)

    @property
    def share(self) -> float | None:
        if not self.trainable_params or not self.total_params:
            return None
        return self.trainable_params / self.total_params


def summarize(files: RunFiles, state: str) -> RunSummary:
    """The figures of the run in `files`, whose job-store state is `state`."""
    from workbench.evaluation import report

    status = files.read_status()
    evaluated: dict[str, Any] = report.read(files.evaluation) or {}
    records = files.read_metrics()
    losses = [r for r in records if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in records if r.get("eval_loss") is not None]
    seconds = None
    if len(losses) >= 2 and losses[-1]["step"] > losses[0]["step"] and "time" in losses[0]:
        seconds = (losses[-1]["time"] - losses[0]["time"]) / (losses[-1]["step"] - losses[0]["step"])
    weights = None
    if files.artifact_kind() is not None:
        weights = sum(p.stat().st_size for p in files.adapter.rglob("*") if p.suffix in WEIGHT_SUFFIXES)
    try:
        method = files.read_config().method.name
    except Exception:  # noqa: BLE001  a run folder without a readable config still shows its numbers
        method = "?"
    return RunSummary(
        method=method,
        state=state,
        steps=status.get("step", 0),
        trainable_params=status.get("trainable_params"),
        total_params=status.get("total_params"),
        peak_memory_mb=status.get("peak_memory_mb"),
        seconds_per_step=seconds,
        first_loss=losses[0]["loss"] if losses else None,
        final_loss=losses[-1]["loss"] if losses else None,
        eval_loss=evals[-1] if evals else None,
        weights_bytes=weights,
        best_step=status.get("best_step"),
        evaluation=report.headline(evaluated),
        warnings=report.warnings(evaluated),
    )
