"""LoRA: trainable low-rank updates beside frozen linear layers (Hu et al., 2021)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import MethodSpec, register

# Attention projections under the names used by Llama-style models (SmolLM2, Llama, Mistral, Qwen).
ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


class LoraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, le=1024, description="Rank of the update matrices: higher learns more, costs more.")
    alpha: int = Field(16, ge=1, le=4096, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input during training.")
    target_modules: Literal["all-linear", "attention"] | list[str] = Field(
        "all-linear",
        description="Layers that get an adapter: every linear layer, attention projections only, or a list of names.",
    )


def build_peft_config(params: LoraParams, model: Any) -> Any:
    from peft import LoraConfig, TaskType

    targets = ATTENTION_MODULES if params.target_modules == "attention" else params.target_modules
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=targets,
    )


register(
    MethodSpec(
        name="lora",
        title="LoRA",
        description="Low-rank adapters on frozen weights: small files, little memory, near full-tuning quality.",
        params=LoraParams,
        build_peft_config=build_peft_config,
        mergeable=True,
    )
)
