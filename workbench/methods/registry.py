"""Registry of fine-tuning methods, keyed by the `name` field of each method's parameter model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its parameters (a pydantic model with a `name` literal) and how to build it.

    `build_peft_config(params, model)` runs in the worker only, so it may import peft; `model` is the loaded
    base model. `mergeable` says whether the trained artifact can be folded into the base weights.
    """

    name: str
    title: str
    description: str
    params: type[BaseModel]
    build_peft_config: Callable[[BaseModel, Any], Any]
    mergeable: bool


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"method {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> MethodSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; choose one of: {', '.join(names())}") from None


def names() -> list[str]:
    return list(_REGISTRY)


def params_types() -> tuple[type[BaseModel], ...]:
    return tuple(spec.params for spec in _REGISTRY.values())
