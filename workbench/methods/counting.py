"""Trainable-parameter counts: of a model being trained, and, before a run, of a method on a chosen model.

The pre-run count builds the model from its config.json on PyTorch's meta device (shapes, no memory, no
weights read) and applies the method exactly as the worker does, so it holds for every method without a
formula per method. It needs torch, so the UI runs it in its helper process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, all) parameters of `model`, a 4-bit weight counted as the weight it stands for."""
    if hasattr(model, "get_nb_trainable_parameters"):  # a PeftModel knows its prompt encoders and 4-bit weights
        return model.get_nb_trainable_parameters()
    trainable = total = 0
    for parameter in model.parameters():
        n = parameter.numel()
        if parameter.__class__.__name__ == "Params4bit":
            n *= 2  # two 4-bit values per stored byte
        total += n
        trainable += n if parameter.requires_grad else 0
    return trainable, total


def count_for_method(method: BaseModel, model_dir: Path | str) -> tuple[int, int]:
    """(trainable, all) parameters that `method` gives the model in `model_dir`, without loading its weights."""
    return _count(method.model_dump_json(), str(Path(model_dir).resolve()))


@functools.lru_cache(maxsize=64)
def _count(method_json: str, model_dir: str) -> tuple[int, int]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from workbench import methods
    from workbench.methods.registry import Context

    raw = json.loads(method_json)
    spec = methods.get(raw["name"])
    params = spec.params.model_validate(raw)
    if spec.for_counting is not None:
        params = spec.for_counting(params)
    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    context = Context(model_path=Path(model_dir), run_dir=Path(model_dir))
    if spec.build_peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, spec.build_peft_config(params, model, context))
    else:
        model = spec.prepare_model(params, model)
    for name, parameter in model.named_parameters():
        # PEFT moves AdaLoRA's per-layer rank constant to the meta device as a trainable parameter (on a real
        # device it stays frozen): it never trains.
        if ".ranknum." in name:
            parameter.requires_grad_(False)
    return count_parameters(model)
