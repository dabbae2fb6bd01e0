"""VeRA (Kopiczko et al., 2024): one pair of frozen random matrices shared by all layers; each layer learns
only two scaling vectors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register
from workbench.methods.targets import Targets, resolve, targets_field


class VeraParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["vera"] = "vera"
    r: int = Field(256, ge=1, le=8192, description="Rank of the shared random matrices (cheap: they are frozen).")
    d_initial: float = Field(0.1, gt=0.0, le=10.0, description="Starting value of the learned vector d.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the VeRA input during training.")
    projection_seed: int = Field(0, ge=0, description="Seed of the shared random matrices.")
    target_modules: Targets = targets_field()


def build_peft_config(params: VeraParams, model: Any, ctx: Context) -> Any:
    from peft import TaskType, VeraConfig

    return VeraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=params.r,
        d_initial=params.d_initial,
        vera_dropout=params.dropout,
        projection_prng_key=params.projection_seed,
        # Saved with the adapter, so it loads without regenerating them from the seed.
        save_projection=True,
        target_modules=resolve(params.target_modules),
    )


register(
    MethodSpec(
        name="vera",
        title="VeRA",
        family="Other PEFT",
        description="Vector-based random matrix adaptation: shared frozen random projections and two learned "
        "vectors per layer; ~10x fewer trainable parameters than LoRA.",
        params=VeraParams,
        mergeable=True,
        build_peft_config=build_peft_config,
    )
)
