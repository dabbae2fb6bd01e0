"""Group relative policy optimisation (Shao et al., 2024) with TRL's GRPOTrainer: the model answers each prompt
several times, and each reply is pushed up or down by how its reward compares with its group's mean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field

from workbench.stages import rewards
from workbench.stages.reference import needs_copy
from workbench.stages.registry import StageSpec, TrainerParts, register

# Reply length is logged too, but in tokens it would flatten the rewards on a shared axis.
ONLINE_METRICS = ("reward", "reward_std", "kl")


class GrpoParams(rewards.OnlineParams):
    name: Literal["grpo"] = "grpo"
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = Field(
        "dapo", description="How token losses are averaged: dapo and dr_grpo avoid GRPO's bias towards length."
    )


def online_arguments(params: rewards.OnlineParams, parts: TrainerParts) -> dict[str, Any]:
    """Arguments GRPO and RLOO share."""
    return parts.arguments(
        num_generations=params.num_generations,
        max_completion_length=params.max_completion_length,
        temperature=params.temperature,
        beta=params.beta,
        log_completions=False,  # it prints tables to the log; the metrics say enough
    )


def online_trainer_kwargs(params: rewards.OnlineParams, parts: TrainerParts) -> dict[str, Any]:
    """The reward functions (and reward model) and the data, as GRPOTrainer and RLOOTrainer take them."""
    return {**rewards.reward_inputs(params, parts.reward_run, parts.model.dtype), **parts.trainer_inputs()}


@contextmanager
def local_reference(params: rewards.OnlineParams, parts: TrainerParts) -> Iterator[None]:
    """TRL builds the KL reference of a non-PEFT model from the name its config records, a hub id: point that
    name at the local folder while the trainer is built (PEFT methods switch the adapter off instead)."""
    config = parts.model.config
    recorded = config._name_or_path
    if params.beta > 0 and needs_copy(parts):
        config._name_or_path = str(parts.model_path)
    try:
        yield
    finally:
        config._name_or_path = recorded


def build_trainer(params: GrpoParams, parts: TrainerParts) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(**online_arguments(params, parts), loss_type=params.loss_type)
    with local_reference(params, parts):
        return GRPOTrainer(args=args, **online_trainer_kwargs(params, parts))


register(
    StageSpec(
        name="grpo",
        title="GRPO",
        description="Reinforcement learning from prompts: the model answers each several times and learns from "
        "how each reply's reward compares with the others'. Rewards: built-in functions and/or a reward model run.",
        params=GrpoParams,
        data="prompts",
        build_trainer=build_trainer,
        metrics=ONLINE_METRICS,
        reference_forwards=1,
        samples=True,
        check=rewards.check_online,
        check_data=rewards.check_answers,
    )
)
