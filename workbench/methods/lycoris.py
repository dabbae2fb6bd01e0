"""LyCORIS methods from PEFT: LoHa (Hadamard product of two low-rank pairs) and LoKr (Kronecker product)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register
from workbench.methods.targets import Targets, resolve, targets_field


class _Lycoris(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1, le=1024, description="Rank of each factor.")
    alpha: int = Field(16, ge=1, le=4096, description="Scaling numerator: the update is scaled by alpha / r.")
    rank_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the rank dimension while training.")
    module_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Chance of skipping a layer's update per step.")
    target_modules: Targets = targets_field()


class LohaParams(_Lycoris):
    name: Literal["loha"] = "loha"


class LokrParams(_Lycoris):
    name: Literal["lokr"] = "lokr"
    decompose_factor: int = Field(
        -1, ge=-1, description="Factor of the Kronecker split of each dimension; -1 picks the most balanced."
    )


def build_loha(params: LohaParams, model: Any, ctx: Context) -> Any:
    from peft import LoHaConfig, TaskType

    return LoHaConfig(
        task_type=TaskType.CAUSAL_LM,
        r=params.r,
        alpha=params.alpha,
        rank_dropout=params.rank_dropout,
        module_dropout=params.module_dropout,
        target_modules=resolve(params.target_modules),
    )


def build_lokr(params: LokrParams, model: Any, ctx: Context) -> Any:
    from peft import LoKrConfig, TaskType

    return LoKrConfig(
        task_type=TaskType.CAUSAL_LM,
        r=params.r,
        alpha=params.alpha,
        rank_dropout=params.rank_dropout,
        module_dropout=params.module_dropout,
        decompose_factor=params.decompose_factor,
        target_modules=resolve(params.target_modules),
    )


register(
    MethodSpec(
        name="loha",
        title="LoHa",
        family="Other PEFT",
        description="Low-rank Hadamard product (LyCORIS): two low-rank pairs multiplied element-wise reach a "
        "higher effective rank than LoRA for the same parameters.",
        params=LohaParams,
        mergeable=True,
        build_peft_config=build_loha,
    )
)
register(
    MethodSpec(
        name="lokr",
        title="LoKr",
        family="Other PEFT",
        description="Low-rank Kronecker product (LyCORIS): the update is a Kronecker product of a small and a "
        "low-rank matrix; very few parameters for a full-rank update.",
        params=LokrParams,
        mergeable=True,
        build_peft_config=build_lokr,
    )
)
