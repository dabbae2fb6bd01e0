"""REINFORCE leave-one-out (Ahmadian et al., 2024) with TRL's RLOOTrainer: like GRPO, several replies per
prompt, but each reply's baseline is the mean reward of the others."""

from __future__ import annotations

from typing import Any, Literal

from workbench.stages import rewards
from workbench.stages.grpo import ONLINE_METRICS, local_reference, online_arguments, online_trainer_kwargs
from workbench.stages.registry import StageSpec, TrainerParts, register


class RlooParams(rewards.OnlineParams):
    name: Literal["rloo"] = "rloo"


def build_trainer(params: RlooParams, parts: TrainerParts) -> Any:
    from trl import RLOOConfig, RLOOTrainer

    args = RLOOConfig(**online_arguments(params, parts))
    with local_reference(params, parts):
        return RLOOTrainer(args=args, **online_trainer_kwargs(params, parts))


register(
    StageSpec(
        name="rloo",
        title="RLOO",
        description="Reinforcement learning from prompts with a leave-one-out baseline: each reply is compared "
        "with the mean reward of the other replies to its prompt. Same rewards as GRPO.",
        params=RlooParams,
        data="prompts",
        build_trainer=build_trainer,
        metrics=ONLINE_METRICS,
        reference_forwards=1,
        samples=True,
        check=rewards.check_online,
        check_data=rewards.check_answers,
    )
)
