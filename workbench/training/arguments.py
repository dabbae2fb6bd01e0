"""The training arguments every stage shares, from our config and the chosen hardware settings.

Each stage's TRL config (SFTConfig, DPOConfig, ...) is built from these plus its own fields, so precision,
checkpointing, logging and saving behave the same in every stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.config import RunConfig
from workbench.training import best
from workbench.training.hardware import Hardware


def common_arguments(
    config: RunConfig, hw: Hardware, output_dir: Path, has_eval: bool, tracking: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`tracking`: the run's name and project in the experiment trackers (workbench/runs/tracking.py)."""
    t = config.train
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps or -1,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_steps": t.warmup_ratio,  # transformers 5 reads a value below 1 as a share of all steps
        "per_device_train_batch_size": t.per_device_train_batch_size,
        "per_device_eval_batch_size": t.per_device_train_batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": t.optim,
        "seed": t.seed,
        "data_seed": t.seed,
        "bf16": hw.precision == "bf16",
        "fp16": hw.precision == "fp16",
        "use_cpu": hw.device == "cpu",
        "gradient_checkpointing": hw.gradient_checkpointing,
        "logging_steps": t.logging_steps,
        "save_strategy": "steps",
        "save_total_limit": t.save_total_limit,
        **best.arguments(t, has_eval),  # evaluation, saving, the best checkpoint
        "report_to": list(t.report_to) or "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **(tracking or {}),
    }
