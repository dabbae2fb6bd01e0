"""Supervised fine-tuning: the run config becomes TRL's SFTConfig and an SFTTrainer on pre-encoded data.

The data layer has already rendered every example with the chat template, masked the prompt and cut it to
`cutoff_len`, so TRL receives `input_ids` + `labels` and does no tokenization of its own. Without packing,
batches are padding-free: the examples of a batch are laid end to end in one row, with position ids that
restart at each example, so no compute is spent on padding and the loss equals that of a padded batch.
Methods that prepend virtual tokens to each example (the prompt family) train on padded batches instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trl import SFTConfig, SFTTrainer

from workbench.config import RunConfig
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
) -> SFTTrainer:
    has_eval = eval_dataset is not None
    return SFTTrainer(
        model=model,
        args=sft_args(config, hw, output_dir, has_eval, padding_free=padding_free, tracking=tracking),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
