"""Supervised fine-tuning: the run config becomes TRL's SFTConfig and an SFTTrainer on pre-encoded data.

The data layer has already rendered every example with the chat template, masked the prompt and cut it to
`cutoff_len`, so TRL receives `input_ids` + `labels` and does no tokenization of its own. Without packing,
batches are padding-free: the examples of a batch are laid end to end in one row, with position ids that
restart at each example, so no compute is spent on padding and the loss equals that of a padded batch.
Methods that prepend virtual tokens to each example (the prompt family) train on padded batches instead.
With a KL term to the base model, or rows that learn the base model's distributions, the trainer is
DistillingSftTrainer (distill.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trl import SFTConfig, SFTTrainer

from workbench.config import RunConfig
from workbench.data.hf_dataset import DISTILL_COLUMN
from workbench.training.arguments import common_arguments
from workbench.training.hardware import Hardware


def sft_args(
    config: RunConfig,
    hw: Hardware,
    output_dir: Path,
    has_eval: bool,
    padding_free: bool = True,
    tracking: dict[str, Any] | None = None,
) -> SFTConfig:
    """A pure mapping from our config and the chosen hardware settings to TRL's SFTConfig."""
    d = config.data
    return SFTConfig(
        **common_arguments(config, hw, output_dir, has_eval, tracking),
        # Examples arrive encoded and truncated (max_length=None), so TRL only batches them.
        max_length=d.cutoff_len if d.packing else None,
        packing=d.packing,
        padding_free=padding_free and not d.packing,
    )


def build_trainer(
    config: RunConfig,
    hw: Hardware,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    peft_config: Any,
    output_dir: Path,
    callbacks: list[Any],
    padding_free: bool = True,
    tracking: dict[str, Any] | None = None,
    kl_to_base: float = 0.0,
    reference: Callable[[], Any] = lambda: None,
) -> SFTTrainer:
    """SFTTrainer, or DistillingSftTrainer where the run keeps near the base model; `reference` gives the frozen
    starting model that trainer compares with where the adapter cannot be switched off (None where it can)."""
    has_eval = eval_dataset is not None
    parts = {
        "model": model,
        "args": sft_args(config, hw, output_dir, has_eval, padding_free=padding_free, tracking=tracking),
        "train_dataset": train_dataset,
        "eval_dataset": eval_dataset,
        "processing_class": tokenizer,
        "peft_config": peft_config,
        "callbacks": callbacks,
    }
    if kl_to_base <= 0 and DISTILL_COLUMN not in train_dataset.column_names:
        return SFTTrainer(**parts)
    from workbench.training.distill import DistillingSftTrainer

    return DistillingSftTrainer(**parts, kl_to_base=kl_to_base, reference=reference())
