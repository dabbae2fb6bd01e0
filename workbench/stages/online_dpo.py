"""Online DPO (Guo et al., 2024) with TRL's experimental OnlineDPOTrainer: the model writes two replies to each
prompt, the rewards (built-in functions and/or a reward-model run) pick the better one, and a DPO step prefers
it. Wraps `trl.experimental.online_dpo`, so a later move of the trainer in TRL touches this module only."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from workbench.stages import rewards
from workbench.stages.reference import reference_for
from workbench.stages.registry import NO_VIRTUAL_TOKENS, StageSpec, TrainerParts, refusing, register


class OnlineDpoParams(rewards.RewardChoice):
    name: Literal["online_dpo"] = "online_dpo"
    max_completion_length: int = Field(64, ge=1, le=32768, description="Longest sampled reply, in tokens.")
    temperature: float = Field(0.9, gt=0.0, le=2.0, description="Sampling temperature of the two replies.")
    beta: float = Field(
        0.1, gt=0.0, le=10.0, description="How far the model may move from the reference: lower moves further."
    )
    loss_type: Literal["sigmoid", "ipo"] = Field("sigmoid", description="sigmoid: DPO; ipo: IPO.")


def build_trainer(params: OnlineDpoParams, parts: TrainerParts) -> Any:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # the experimental status is stated here, once
    from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer

    args = OnlineDPOConfig(
        **parts.arguments(
            max_new_tokens=params.max_completion_length,
            max_length=parts.config.data.cutoff_len,
            temperature=params.temperature,
            beta=params.beta,
            loss_type=params.loss_type,
        )
    )
    return OnlineDPOTrainer(
        ref_model=reference_for(parts),
        args=args,
        **rewards.reward_inputs(params, parts.reward_run, parts.model.dtype),
        **parts.trainer_inputs(),
    )


register(
    StageSpec(
        name="online_dpo",
        title="Online DPO",
        description="DPO on the model's own replies: it answers each prompt twice and the rewards (built-in "
        "functions and/or a reward model run) decide which reply is preferred.",
        params=OnlineDpoParams,
        data="prompts",
        build_trainer=build_trainer,
        metrics=("objective/scores", "rewards/margins", "rewards/accuracies", "objective/kl"),
        sequences=2,
        reference_forwards=1,
        samples=True,
        check=refusing(NO_VIRTUAL_TOKENS),
        check_data=rewards.check_answers,
    )
)
