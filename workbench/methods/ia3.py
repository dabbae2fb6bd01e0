"""IA3 (Liu et al., 2022): learned vectors that rescale keys, values and the feed-forward activations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register


class Ia3Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["ia3"] = "ia3"
    target_modules: list[str] = Field(
        ["k_proj", "v_proj", "down_proj"], description="Layers whose activations are rescaled."
    )
    feedforward_modules: list[str] = Field(
        ["down_proj"], description="Which of those are feed-forward layers (rescaled on their input, not output)."
    )


def build_peft_config(params: Ia3Params, model: Any, ctx: Context) -> Any:
    from peft import IA3Config, TaskType

    return IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=params.target_modules,
        feedforward_modules=[m for m in params.feedforward_modules if m in params.target_modules],
    )


register(
    MethodSpec(
        name="ia3",
        title="IA3",
        family="Other PEFT",
        description="Infused adapters: one learned scale per channel of keys, values and the MLP; the fewest "
        "trainable parameters of all, a good fit for small data.",
        params=Ia3Params,
        mergeable=True,
        build_peft_config=build_peft_config,
    )
)
