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
from workbench.training.hardware import Hardware


def sft_args(
    config: RunConfig, hw: Hardware, output_dir: Path, has_eval: bool, padding_free: bool = True
) -> SFTConfig:
    """A pure mapping from our config and the chosen hardware settings to TRL's SFTConfig."""
    t, d = config.train, config.data
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # transformers 5 reads a value below 1 as a share of all steps
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        seed=t.seed,
        data_seed=t.seed,
        bf16=hw.precision == "bf16",
        fp16=hw.precision == "fp16",
        use_cpu=hw.device == "cpu",
        gradient_checkpointing=hw.gradient_checkpointing,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=(t.eval_steps or t.save_steps) if has_eval else None,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
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
) -> SFTTrainer:
    return SFTTrainer(
        model=model,
        args=sft_args(config, hw, output_dir, has_eval=eval_dataset is not None, padding_free=padding_free),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
