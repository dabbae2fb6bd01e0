"""Registry of fine-tuning methods, keyed by the `name` field of each method's parameter model.

A method module declares its parameters (a pydantic model) and the hooks the worker calls. The hooks run in
the worker only, so they may import torch and peft; the registry and the parameter models import neither, so
the web UI can build its form and check a config without the training stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from workbench.registry import Registry

# What a finished run leaves in its adapter/ folder:
# "peft": a PEFT adapter (adapter_config.json), loadable with PeftModel.from_pretrained;
# "model": a whole model folder (config.json + weights), loadable with AutoModelForCausalLM;
# "bottleneck": our bottleneck adapter (bottleneck_config.json), see workbench.adapters.bottleneck.
Artifact = Literal["peft", "model", "bottleneck"]


@dataclass(frozen=True)
class Context:
    """What a method's hooks may need beyond its parameters."""

    model_path: Path  # the base model's local folder (tokenizer included)
    run_dir: Path  # the run folder: a hook may keep files there that must survive a resume


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Exactly one of `build_peft_config(params, model, ctx)` (a PEFT method) and `prepare_model(params, model)`
    (which marks what trains, or adds modules, and returns the model) is given.
    `quantization(params)` returns the BitsAndBytesConfig to load the base with, for quantized methods.
    `customize_trainer(params, trainer, ctx)` adjusts the built trainer (an optimizer, a callback).
    `save(params, trainer, out_dir, ctx)` writes the artifact; by default the trainer saves the model.
    `for_counting(params)` gives parameters with the same shapes whose initialisation needs no weights, so the
    trainable parameters can be counted on a model without weights (meta device).
    `check(params, device)` lists what stops this method on the device ("cuda", "mps" or "cpu") before Start;
    it must not import torch.
    `padding_free=False` means examples need padded batches (methods that prepend virtual tokens per example).
    `merge_refusal` says why the artifact cannot be folded into the base weights when `mergeable` is False.
    """

    name: str
    title: str
    family: str
    description: str
    params: type[BaseModel]
    mergeable: bool
    merge_refusal: str = ""
    artifact: Artifact = "peft"
    padding_free: bool = True
    build_peft_config: Callable[[Any, Any, Context], Any] | None = None
    prepare_model: Callable[[Any, Any], Any] | None = None
    quantization: Callable[[Any], Any] | None = None
    customize_trainer: Callable[[Any, Any, Context], None] | None = None
    save: Callable[[Any, Any, Path, Context], None] | None = None
    for_counting: Callable[[Any], Any] | None = None
    check: Callable[[Any, str], list[str]] | None = None

    def __post_init__(self) -> None:
        if (self.build_peft_config is None) == (self.prepare_model is None):
            raise ValueError(f"method {self.name!r}: give exactly one of build_peft_config and prepare_model")
        if not self.mergeable and not self.merge_refusal:
            raise ValueError(f"method {self.name!r}: say why it cannot be merged (merge_refusal)")


_REGISTRY: Registry[MethodSpec] = Registry("method")
register = _REGISTRY.register
get = _REGISTRY.get
names = _REGISTRY.names
params_types = _REGISTRY.params_types
