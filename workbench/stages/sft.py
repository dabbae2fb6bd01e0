"""Supervised fine-tuning: learn the assistant turns of conversations (TRL's SFTTrainer)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.reference import frozen_copy, reference_for
from workbench.stages.registry import StageSpec, TrainerParts, register


class SftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["sft"] = "sft"
    kl_to_base: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="Keeps the tuned model near the base: this weight times the KL divergence from the base "
        "model's next-token distribution is added at every trained token, so what the data does not teach stays as "
        "the base had it. 0 is off; 1 keeps general answers and still lets the data's tokens win (above 1, they "
        "may not).",
    )


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
        kl_to_base=getattr(params, "kl_to_base", 0.0),  # continued pre-training (pt.py) has no hold on the base
        reference=lambda: _reference(parts),
    )


def _reference(parts: TrainerParts) -> Any:
    """The frozen starting model where switching the adapter off does not give the base: methods without an adapter,
    and LoRA initialised from the base's own weights (PiSSA, OLoRA), whose switched-off model is the residual."""
    if getattr(parts.config.method, "init", "gaussian") != "gaussian":
        return frozen_copy(parts)
    return reference_for(parts)


register(
    StageSpec(
        name="sft",
        title="Supervised fine-tuning",
        description="Learn to answer like the assistant turns of your conversations.",
        params=SftParams,
        data="conversations",
        build_trainer=build_trainer,
        padding_free=True,
        metrics=("kl_to_base", "cross_entropy"),  # logged only where the run keeps near the base
    )
)
