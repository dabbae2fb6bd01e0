"""Odds-ratio preference optimisation (Hong et al., 2024): SFT on the chosen reply plus an odds-ratio penalty on
the rejected one, in one stage and without a reference model. Wraps `trl.experimental.orpo`, so a later move of
the trainer in TRL touches this module only."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.stages.prompt_fit import drop_prompts_that_fill
from workbench.stages.registry import NO_VIRTUAL_TOKENS, StageSpec, TrainerParts, refusing, register


class OrpoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["orpo"] = "orpo"
    beta: float = Field(
        0.1, gt=0.0, le=10.0, description="Weight of the odds-ratio term against the SFT loss (λ in the paper)."
    )


def build_trainer(params: OrpoParams, parts: TrainerParts) -> Any:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # the experimental status is stated here, once
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    parts = drop_prompts_that_fill(parts)  # this trainer keeps a prompt whole, however long
    args = ORPOConfig(**parts.arguments(beta=params.beta, max_length=parts.config.data.cutoff_len))
    return ORPOTrainer(args=args, **parts.trainer_inputs())


register(
    StageSpec(
        name="orpo",
        title="ORPO",
        description="Supervised fine-tuning and preference alignment in one stage, from preference pairs; no "
        "reference model.",
        params=OrpoParams,
        data="pairs",
        build_trainer=build_trainer,
        metrics=("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "log_odds_ratio"),
        sequences=2,
        check=refusing(NO_VIRTUAL_TOKENS),
    )
)
