"""Reference-free preference optimisation with TRL's CPO trainer: SimPO (Meng et al., 2024; length-normalised
reward with a target margin) and CPO (Xu et al., 2024; preference loss plus an SFT term on the chosen reply).
Wraps `trl.experimental.cpo`, so a later move of the trainer in TRL touches this module only."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.prompt_fit import drop_prompts_that_fill
from workbench.stages.registry import NO_VIRTUAL_TOKENS, StageSpec, TrainerParts, refusing, register


class SimpoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["simpo"] = "simpo"
    loss_type: Literal["simpo", "sigmoid", "hinge", "ipo"] = Field(
        "simpo", description="simpo: SimPO's length-normalised loss; sigmoid / hinge / ipo: CPO with that loss."
    )
    beta: float = Field(2.0, gt=0.0, le=20.0, description="Reward scale (SimPO's paper uses 2 to 2.5).")
    simpo_gamma: float = Field(
        0.5, ge=0.0, le=10.0, description="SimPO's target reward margin between chosen and rejected."
    )
    cpo_alpha: float = Field(
        0.0, ge=0.0, le=10.0, description="Weight of an SFT loss on the chosen reply: 0 is pure SimPO, 1 is CPO."
    )


def build_trainer(params: SimpoParams, parts: TrainerParts) -> Any:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # the experimental status is stated here, once
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    parts = drop_prompts_that_fill(parts)  # this trainer keeps a prompt whole, however long
    args = CPOConfig(
        **parts.arguments(
            loss_type=params.loss_type,
            beta=params.beta,
            simpo_gamma=params.simpo_gamma,
            cpo_alpha=params.cpo_alpha,
            max_length=parts.config.data.cutoff_len,
        )
    )
    return CPOTrainer(args=args, **parts.trainer_inputs())


register(
    StageSpec(
        name="simpo",
        title="SimPO / CPO",
        description="Reference-free preference optimisation from preference pairs: SimPO's length-normalised "
        "margin, or CPO with an SFT term; lighter than DPO (no reference pass).",
        params=SimpoParams,
        data="pairs",
        build_trainer=build_trainer,
        metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"),
        sequences=2,
        check=refusing(NO_VIRTUAL_TOKENS),
    )
)
