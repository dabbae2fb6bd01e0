"""Adapter tuning: bottleneck adapters after attention and MLP (Houlsby et al., 2019; our own module, PEFT has
none) and LLaMA-Adapter (Zhang et al., 2023; PEFT's adaption prompt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register


class BottleneckParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["bottleneck"] = "bottleneck"
    size: int = Field(64, ge=1, le=65536, description="Width of the bottleneck (the down-projection's output).")
    nonlinearity: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="Between down and up.")
    positions: Literal["both", "attention", "mlp"] = Field(
        "both", description="After the attention block, after the MLP, or both (Houlsby's design)."
    )


class LlamaAdapterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["llama_adapter"] = "llama_adapter"
    adapter_len: int = Field(10, ge=1, le=512, description="Learned prompt tokens each adapted layer attends to.")
    adapter_layers: int = Field(8, ge=1, le=1024, description="How many of the top layers get an adaption prompt.")


def _bottleneck_config(params: BottleneckParams, model: Any = None) -> Any:
    from workbench.adapters.bottleneck import BottleneckConfig

    base = getattr(model, "name_or_path", None) if model is not None else None
    return BottleneckConfig(
        size=params.size, nonlinearity=params.nonlinearity, positions=params.positions, base_model_name_or_path=base
    )


def prepare_bottleneck(params: BottleneckParams, model: Any) -> Any:
    from workbench.adapters.bottleneck import add_bottlenecks

    model.requires_grad_(False)
    for adapter in add_bottlenecks(model, _bottleneck_config(params)):
        adapter.requires_grad_(True)
    return model


def save_bottleneck(params: BottleneckParams, trainer: Any, out_dir: Path, ctx: Context) -> None:
    from workbench.adapters import bottleneck

    bottleneck.save(trainer.model, out_dir, _bottleneck_config(params, trainer.model))
    trainer.processing_class.save_pretrained(str(out_dir))


def build_llama_adapter(params: LlamaAdapterParams, model: Any, ctx: Context) -> Any:
    from peft import AdaptionPromptConfig, TaskType

    layers = model.config.num_hidden_layers
    if params.adapter_layers > layers:
        from workbench.errors import ConfigError, FieldProblem

        raise ConfigError(
            [FieldProblem("method.adapter_layers", f"{params.adapter_layers} asked for, but the model has {layers}")]
        )
    return AdaptionPromptConfig(
        task_type=TaskType.CAUSAL_LM, adapter_len=params.adapter_len, adapter_layers=params.adapter_layers
    )


def rebind_forward(params: LlamaAdapterParams, trainer: Any, ctx: Context) -> None:
    # PEFT's adaption-prompt wrapper copies the model's forward when it is built; TRL then patches that forward
    # (a fused LM head) on the model itself. Point the wrapper at the patched one.
    wrapper = trainer.model.base_model
    wrapper.forward = wrapper.model.forward


register(
    MethodSpec(
        name="bottleneck",
        title="Bottleneck adapters",
        family="Adapters",
        description="Houlsby adapters: a small down-projection, nonlinearity and zero-initialised up-projection "
        "with a residual after every attention block and MLP; the model starts unchanged.",
        params=BottleneckParams,
        mergeable=False,
        merge_refusal="its adapters have a nonlinearity, which no linear weight can absorb",
        artifact="bottleneck",
        prepare_model=prepare_bottleneck,
        save=save_bottleneck,
    )
)
register(
    MethodSpec(
        name="llama_adapter",
        title="LLaMA-Adapter",
        family="Adapters",
        description="Adaption prompts: learned prompt tokens in the top layers, read through zero-initialised "
        "gated attention, so training starts from the base model's behaviour.",
        params=LlamaAdapterParams,
        mergeable=False,
        merge_refusal="its gated attention to learned prompts is not a change to the weights; load it with PEFT",
        build_peft_config=build_llama_adapter,
        customize_trainer=rebind_forward,
    )
)
