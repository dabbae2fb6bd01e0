"""Continued pre-training: learn raw text, every token (documents joined with the end-of-text token and cut into
blocks of cutoff_len tokens, workbench/data/text.py), with TRL's SFTTrainer on the encoded blocks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from workbench.stages import sft
from workbench.stages.registry import StageSpec, register


class PtParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["pt"] = "pt"


register(
    StageSpec(
        name="pt",
        title="Continued pre-training",
        description="Learn raw text, every token of it: documents are joined with the end-of-text token and cut "
        "into blocks of the cutoff length.",
        params=PtParams,
        data="text",
        # The blocks arrive encoded with labels, as SFT's examples do: the same trainer takes them.
        build_trainer=sft.build_trainer,
        padding_free=True,
    )
)
