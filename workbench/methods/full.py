"""Full fine-tuning (every weight trains) and freeze tuning (only the last layers, or some of their modules).

Both leave a whole model folder, loadable with AutoModelForCausalLM.from_pretrained.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import MethodSpec, register

_REFUSAL = "the run's result already is a whole model: download it as it is"


class FullParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["full"] = "full"


class FreezeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(2, ge=1, le=1024, description="How many of the last decoder layers train.")
    trainable_modules: Literal["all", "attention", "mlp"] = Field(
        "all", description="Which part of those layers trains: all of it, self-attention or the MLP."
    )
    extra_modules: list[Literal["embed_tokens", "norm", "lm_head"]] = Field(
        [], description="Modules outside the layers that train too: the embeddings, the final norm, the output layer."
    )


def prepare_full(params: FullParams, model: Any) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def prepare_freeze(params: FreezeParams, model: Any) -> Any:
    layers = model.get_decoder().layers
    if params.trainable_layers > len(layers):
        from workbench.errors import ConfigError, FieldProblem

        raise ConfigError(
            [
                FieldProblem(
                    "method.trainable_layers",
                    f"{params.trainable_layers} layers asked for, but the model has {len(layers)}",
                )
            ]
        )
    model.requires_grad_(False)
    part = {"all": None, "attention": "self_attn", "mlp": "mlp"}[params.trainable_modules]
    for layer in layers[len(layers) - params.trainable_layers :]:
        (getattr(layer, part) if part else layer).requires_grad_(True)
    for name in params.extra_modules:
        module = model.get_output_embeddings() if name == "lm_head" else getattr(model.get_decoder(), name)
        module.requires_grad_(True)
    return model


register(
    MethodSpec(
        name="full",
        title="Full fine-tuning",
        family="Full & freeze",
        description="Every weight trains: the most capacity, and the most memory (weights, gradients and two "
        "optimizer states, ~16 bytes per parameter in fp32). Leaves a whole model.",
        params=FullParams,
        mergeable=False,
        merge_refusal=_REFUSAL,
        artifact="model",
        prepare_model=prepare_full,
    )
)
register(
    MethodSpec(
        name="freeze",
        title="Freeze tuning",
        family="Full & freeze",
        description="Only the last N decoder layers (or their attention or MLP) train; the rest stay frozen. "
        "Cheaper than full tuning, no adapter to load. Leaves a whole model.",
        params=FreezeParams,
        mergeable=False,
        merge_refusal=_REFUSAL,
        artifact="model",
        prepare_model=prepare_freeze,
    )
)
