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

# What a stage trains on: conversations (the assistant turns are learned) or preference pairs.
DataKind = Literal["conversations", "pairs"]


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


@dataclass(frozen=True)
class StageSpec:
    """A registered stage: its parameters, the data it needs and `build_trainer(params, parts)`.

    `padding_free` says whether the stage can train on padding-free batches (then per-example attention is used);
    `metrics` are the logged keys worth a chart of their own beside the loss.
    """

    name: str
    title: str
    description: str
    params: type[BaseModel]
    data: DataKind
    build_trainer: Callable[[Any, TrainerParts], Any]
    padding_free: bool = False
    metrics: tuple[str, ...] = ()


_REGISTRY: Registry[StageSpec] = Registry("stage")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names
params_types = _REGISTRY.params_types
