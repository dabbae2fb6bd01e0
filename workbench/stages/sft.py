"""Supervised fine-tuning: learn the assistant turns of conversations (TRL's SFTTrainer)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from workbench.stages.registry import StageSpec, TrainerParts, register


class SftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["sft"] = "sft"


def build_trainer(params: SftParams, parts: TrainerParts) -> Any:
    from workbench.training.sft import build_trainer as build

    return build(
        parts.config,
        parts.hardware,
        parts.model,
        parts.tokenizer,
        parts.train_set,
        parts.eval_set,
        parts.peft_config,
        parts.output_dir,
        callbacks=parts.callbacks,
        padding_free=parts.padding_free,
        tracking=parts.tracking,
    )


register(
    StageSpec(
        name="sft",
        title="Supervised fine-tuning",
        description="Learn to answer like the assistant turns of your conversations.",
        params=SftParams,
        data="conversations",
        build_trainer=build_trainer,
        padding_free=True,
    )
)
