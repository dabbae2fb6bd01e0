"""The best checkpoint and early stopping: which evaluation metric decides, and what the run records of it.

transformers does the work (`load_best_model_at_end`, `EarlyStoppingCallback`); this module only turns our
settings into its arguments and its final state into status.json's fields. The best weights are loaded back
into the model as training ends, so whatever saves the run's result afterwards saves the best checkpoint.
"""

from __future__ import annotations

from typing import Any

from transformers import EarlyStoppingCallback

from workbench.config import TrainConfig


def arguments(train: TrainConfig, has_eval: bool) -> dict[str, Any]:
    """Training arguments for evaluation, saving and the best checkpoint."""
    if not has_eval:
        return {"eval_strategy": "no", "eval_steps": None, "save_steps": train.save_steps}
    eval_steps = train.eval_steps or train.save_steps
    keep = train.keeps_best()
    return {
        "eval_strategy": "steps",
        "eval_steps": eval_steps,
        # The best checkpoint can only be kept if it was saved: save at every evaluation (transformers refuses
        # load_best_model_at_end otherwise, and would otherwise pick among saved steps only).
        "save_steps": eval_steps if keep else train.save_steps,
        "load_best_model_at_end": keep,
        # Early stopping reads the metric too. Whether higher is better transformers infers from the name
        # (anything not ending in "loss").
        "metric_for_best_model": train.best_metric if keep else None,
    }


def callbacks(train: TrainConfig, has_eval: bool) -> list[Any]:
    if not has_eval or train.early_stopping_patience is None:
        return []
    return [EarlyStoppingCallback(train.early_stopping_patience, train.early_stopping_threshold)]


def outcome(train: TrainConfig, state: Any) -> dict[str, Any]:
    """What status.json records once training ends: the best step and its metric, and whether it stopped early."""
    if not train.keeps_best() or state.best_global_step is None:
        return {}
    return {
        "best_step": state.best_global_step,
        "best_metric": {train.best_metric: state.best_metric},
        "stopped_early": train.early_stopping_patience is not None and state.global_step < state.max_steps,
    }
