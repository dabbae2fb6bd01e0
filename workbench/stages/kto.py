"""Kahneman-Tversky optimisation (Ethayarajh et al., 2024) with TRL's KTOTrainer: learns from single replies
marked desirable or not, so thumbs up / down feedback is enough; preference pairs are split into one of each."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.prompt_fit import check_prompts_fit
from workbench.stages.reference import reference_for
from workbench.stages.registry import StageSpec, TrainerParts, register


class KtoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["kto"] = "kto"
    beta: float = Field(
        0.1, gt=0.0, le=10.0, description="How far the model may move from the reference: lower moves further."
    )
    loss_type: Literal["kto", "apo_zero_unpaired"] = Field(
        "kto", description="kto: the KTO loss; apo_zero_unpaired: anchored, for desirable replies better than the "
        "model's own."
    )  # fmt: skip
    desirable_weight: float = Field(
        1.0, gt=0.0, le=100.0, description="Weight of desirable replies; raise it when they are the fewer."
    )
    undesirable_weight: float = Field(
        1.0, gt=0.0, le=100.0, description="Weight of undesirable replies; raise it when they are the fewer."
    )


def build_trainer(params: KtoParams, parts: TrainerParts) -> Any:
    from trl import KTOConfig, KTOTrainer

    args = KTOConfig(
        **parts.arguments(
            beta=params.beta,
            loss_type=params.loss_type,
            desirable_weight=params.desirable_weight,
            undesirable_weight=params.undesirable_weight,
            max_length=parts.config.data.cutoff_len,
        )
    )
    trainer = KTOTrainer(ref_model=reference_for(parts), args=args, **parts.trainer_inputs())
    check_prompts_fit(len(parts.train_set), len(trainer.train_dataset), parts.config.data.cutoff_len)
    return trainer


register(
    StageSpec(
        name="kto",
        title="KTO",
        description="Learn from single replies marked desirable or undesirable (thumbs up / down); preference "
        "pairs work too, split into one of each.",
        params=KtoParams,
        data="labeled",
        build_trainer=build_trainer,
        metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "kl"),
        # The reference reads the reply and a mismatched one (the KL estimate), which the policy also reads.
        reference_forwards=3,
    )
)
