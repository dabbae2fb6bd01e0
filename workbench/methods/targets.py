"""Which linear layers an adapter lands on: a shared parameter for every method that adapts linear layers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

# Module names used by Llama-style models (SmolLM2, Llama, Mistral, Qwen).
ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_MODULES = ["gate_proj", "up_proj", "down_proj"]

Targets = Literal["all-linear", "attention", "mlp"] | list[str]


def targets_field(default: str = "all-linear") -> object:
    return Field(
        default,
        description="Layers that get an adapter: every linear layer, attention projections, MLP projections, "
        "or a list of module names.",
    )


def resolve(targets: Targets) -> str | list[str]:
    """The value PEFT's `target_modules` takes ("all-linear" leaves the output layer out)."""
    if targets == "attention":
        return list(ATTENTION_MODULES)
    if targets == "mlp":
        return list(MLP_MODULES)
    return targets
