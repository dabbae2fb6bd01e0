"""Registry of training stages (SFT, DPO, ...), keyed by the `name` field of each stage's parameter model.

As with methods, the parameter models import neither torch nor trl, so the UI can validate a config; the
trainer builder runs in the worker only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from workbench.registry import Registry

# What a stage trains on: conversations (the assistant turns are learned), preference pairs, replies labelled
# desirable or not (KTO), prompts the model answers itself (online RL), or raw text (every token is learned).
DataKind = Literal["conversations", "pairs", "labeled", "prompts", "text"]
# What the model ends in: the language-model head, or one score per sequence (reward models).
Head = Literal["causal_lm", "reward"]


@dataclass(frozen=True)
class TrainerParts:
    """Everything the worker has prepared for a stage's trainer."""

    config: Any  # the RunConfig
    hardware: Any  # workbench.training.hardware.Hardware
    model: Any
    tokenizer: Any
    train_set: Any
    eval_set: Any
    peft_config: Any
    output_dir: Any
    callbacks: list[Any]
    padding_free: bool
    model_path: Any = None  # the base model's local folder, for stages that load a reference copy
    reward_run: Any = None  # the files of the reward-model run that scores replies (stage.reward_model_run)
    tracking: Any = None  # the run's name and project in the experiment trackers (training arguments)

    def arguments(self, **stage_arguments: Any) -> dict[str, Any]:
        """The training arguments every stage shares (training/arguments.py), with the stage's own added."""
        from workbench.training.arguments import common_arguments

        shared = common_arguments(
            self.config, self.hardware, self.output_dir, has_eval=self.eval_set is not None, tracking=self.tracking
        )
        return {**shared, **stage_arguments}

    def trainer_inputs(self) -> dict[str, Any]:
        """What every TRL trainer takes from the worker: model, data, tokenizer, PEFT config, callbacks."""
        return {
            "model": self.model,
            "train_dataset": self.train_set,
            "eval_dataset": self.eval_set,
            "processing_class": self.tokenizer,
            "peft_config": self.peft_config,
            "callbacks": self.callbacks,
        }


@dataclass(frozen=True)
class StageSpec:
    """A registered stage: its parameters, the data it needs and `build_trainer(params, parts)`.

    `sequences` is how many sequences the model trains on per example (a pair is two); `reference_forwards` how
    many gradient-free forward passes per trained sequence a reference model (or a KL batch) adds; `samples`
    whether the model writes its own replies first (online RL). The pre-flight estimate reads them.
    `padding_free` says whether the stage can train on padding-free batches (then per-example attention is used);
    `metrics` are the logged keys worth a chart of their own beside the loss. `check(config)` lists what stops a run
    config from training this stage (a method that cannot, settings that do not fit together, a missing run it
    names), checked before Start; `check_data(params, loaded datasets)` says why the data cannot serve these
    settings (None when it can).
    """

    name: str
    title: str
    description: str
    params: type[BaseModel]
    data: DataKind
    build_trainer: Callable[[Any, TrainerParts], Any]
    padding_free: bool = False
    metrics: tuple[str, ...] = ()
    head: Head = "causal_lm"
    sequences: int = 1
    reference_forwards: int = 0
    samples: bool = False
    check: Callable[[Any], list[str]] | None = None
    check_data: Callable[[Any, list[Any]], str | None] | None = None


def refusing(reasons: dict[str, str], *more: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
    """A `check` that refuses the methods named in `reasons` (method name -> why), then runs `more` checks."""

    def check(config: Any) -> list[str]:
        reason = reasons.get(config.method.name)
        found = [f"method.name: {reason}"] if reason else []
        return found + [problem for extra in more for problem in extra(config)]

    return check


# TRL's experimental preference trainers line logits up with labels position by position; prompt and P-tuning
# put virtual tokens in front of the sequence, which adds positions (prefix tuning adds keys, not positions).
VIRTUAL_TOKENS = (
    "this stage's TRL trainer lines logits up with labels position by position, and prompt / P-tuning's virtual "
    "tokens add positions"
)
NO_VIRTUAL_TOKENS = {"prompt": VIRTUAL_TOKENS + "; use prefix tuning or LoRA", "ptuning": VIRTUAL_TOKENS +
                     "; use prefix tuning or LoRA"}  # fmt: skip


_REGISTRY: Registry[StageSpec] = Registry("stage")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names
params_types = _REGISTRY.params_types
