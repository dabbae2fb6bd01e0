"""Orthogonal fine-tuning: OFT (Qiu et al., 2023) and its butterfly-factorised BOFT (Liu et al., 2024).

Both rotate each layer's weights with a learned orthogonal matrix, which keeps the angles between neurons.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register
from workbench.methods.targets import Targets, resolve, targets_field


class OftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["oft"] = "oft"
    block_size: int = Field(
        32, ge=1, le=4096, description="Size of each orthogonal block; must divide the layer widths."
    )
    coft: bool = Field(False, description="Constrained OFT: keep the rotation within eps of the identity.")
    eps: float = Field(6e-5, gt=0.0, description="How far constrained OFT may move from the identity.")
    module_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Chance of skipping a block's rotation per step.")
    target_modules: Targets = targets_field()


class BoftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["boft"] = "boft"
    block_size: int = Field(
        4, ge=1, le=4096, description="Size of each butterfly block; must divide the layer widths."
    )
    butterfly_factor: int = Field(1, ge=1, le=16, description="Butterfly factors: more mix channels further apart.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Multiplicative dropout on the butterfly blocks.")
    target_modules: Targets = targets_field()


def build_oft(params: OftParams, model: Any, ctx: Context) -> Any:
    from peft import OFTConfig, TaskType

    return OFTConfig(
        task_type=TaskType.CAUSAL_LM,
        r=0,  # the block size decides the number of blocks
        oft_block_size=params.block_size,
        coft=params.coft,
        eps=params.eps,
        module_dropout=params.module_dropout,
        target_modules=resolve(params.target_modules),
    )


def build_boft(params: BoftParams, model: Any, ctx: Context) -> Any:
    from peft import BOFTConfig, TaskType

    return BOFTConfig(
        task_type=TaskType.CAUSAL_LM,
        boft_block_size=params.block_size,
        boft_n_butterfly_factor=params.butterfly_factor,
        boft_dropout=params.dropout,
        target_modules=resolve(params.target_modules),
    )


register(
    MethodSpec(
        name="oft",
        title="OFT",
        family="Other PEFT",
        description="Orthogonal fine-tuning: learned block-diagonal rotations of each weight; preserves the "
        "pretrained structure and resists forgetting.",
        params=OftParams,
        mergeable=True,
        build_peft_config=build_oft,
    )
)
register(
    MethodSpec(
        name="boft",
        title="BOFT",
        family="Other PEFT",
        description="Butterfly OFT: dense orthogonal rotations built from sparse butterfly factors, with fewer "
        "parameters than OFT. Runs without its CUDA extension (slower) where that is missing.",
        params=BoftParams,
        mergeable=True,
        build_peft_config=build_boft,
    )
)
