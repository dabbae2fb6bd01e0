"""Direct preference optimisation (Rafailov et al., 2023) and its loss variants, with TRL's DPOTrainer.

The reference model is the frozen base with the adapter switched off (PEFT methods), so no second copy is
loaded; other methods get a frozen copy (reference.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.prompt_fit import check_prompts_fit
from workbench.stages.reference import reference_for
from workbench.stages.registry import StageSpec, TrainerParts, register


class DpoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["dpo"] = "dpo"
    beta: float = Field(
        0.1, gt=0.0, le=10.0, description="How far the model may move from the reference: lower moves further."
    )
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust", "apo_zero"] = Field(
        "sigmoid",
        description="sigmoid: DPO; ipo: IPO (regularised, resists overfitting); hinge: SLiC; robust: for noisy "
        "labels; apo_zero: anchored, for chosen replies better than the model's own.",
    )
    label_smoothing: float = Field(
        0.0, ge=0.0, lt=0.5, description="Assumed share of flipped labels (robust and conservative DPO)."
    )


def build_trainer(params: DpoParams, parts: TrainerParts) -> Any:
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        **parts.arguments(
            beta=params.beta,
            loss_type=[params.loss_type],
            label_smoothing=params.label_smoothing,
            max_length=parts.config.data.cutoff_len,
        )
    )
    trainer = DPOTrainer(ref_model=reference_for(parts), args=args, **parts.trainer_inputs())
    check_prompts_fit(len(parts.train_set), len(trainer.train_dataset), parts.config.data.cutoff_len)
    return trainer


register(
    StageSpec(
        name="dpo",
        title="DPO",
        description="Prefer the chosen reply over the rejected one, directly from preference pairs; no reward "
        "model. Loss variants: DPO, IPO, hinge (SLiC), robust, APO.",
        params=DpoParams,
        data="pairs",
        build_trainer=build_trainer,
        metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
        sequences=2,
        reference_forwards=1,
    )
)
