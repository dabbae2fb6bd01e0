"""The LoRA family: LoRA (Hu et al., 2021), DoRA, QLoRA, with rsLoRA scaling, PiSSA/OLoRA initialisation and
LoRA+ learning rates as options.

One parameter model per registered method; they share the low-rank settings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.methods.registry import Context, MethodSpec, register
from workbench.methods.targets import Targets, resolve, targets_field

__all__ = ["DoraParams", "LoraParams", "QloraParams"]

# Folder in the run where PiSSA/OLoRA keep the adapter as initialised, to convert the final one on save.
INITIAL_ADAPTER = "initial-adapter"


class _LowRank(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1, le=1024, description="Rank of the update matrices: higher learns more, costs more.")
    alpha: int = Field(16, ge=1, le=4096, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input during training.")
    target_modules: Targets = targets_field()
    use_rslora: bool = Field(
        False, description="rsLoRA: scale by alpha / sqrt(r) instead of alpha / r, which keeps high ranks learning."
    )
    loraplus_lr_ratio: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="LoRA+: train B at this many times A's learning rate (16 is typical); 0 leaves it off.",
    )


class LoraParams(_LowRank):
    name: Literal["lora"] = "lora"
    init: Literal["gaussian", "pissa", "olora"] = Field(
        "gaussian",
        description="Start of A and B: gaussian/zero (the update starts at 0); PiSSA (principal singular "
        "vectors) or OLoRA (QR) start from the weights and often converge faster.",
    )


class DoraParams(_LowRank):
    # No PiSSA/OLoRA start: PEFT's conversion back to the original base drops DoRA's magnitude vectors.
    name: Literal["dora"] = "dora"


class QloraParams(_LowRank):
    name: Literal["qlora"] = "qlora"
    bits: Literal[4, 8] = Field(4, description="Bits per frozen base weight: 4 (NF4/FP4) or 8 (LLM.int8).")
    quant_type: Literal["nf4", "fp4"] = Field(
        "nf4", description="4-bit data type; NF4 suits normally distributed weights."
    )
    double_quant: bool = Field(
        True, description="Quantize the quantization constants too (saves ~0.4 bit per weight)."
    )
    compute_dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Precision of the matmuls on dequantized weights; auto: bf16 on GPUs that have it, else fp32.",
    )


def build_peft_config(params: _LowRank, model: Any, ctx: Context) -> Any:
    from peft import LoraConfig, TaskType

    init = getattr(params, "init", "gaussian")
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=params.r,
        lora_alpha=params.alpha,
        # PiSSA and OLoRA fold the start of the update into the weights; dropout would break that identity.
        lora_dropout=params.dropout if init == "gaussian" else 0.0,
        target_modules=resolve(params.target_modules),
        use_rslora=params.use_rslora,
        use_dora=params.name == "dora",
        init_lora_weights=True if init == "gaussian" else init,
    )


def customize_trainer(params: _LowRank, trainer: Any, ctx: Context) -> None:
    if getattr(params, "init", "gaussian") != "gaussian":
        _keep_initial_adapter(trainer.model, ctx.run_dir / INITIAL_ADAPTER)
    if params.loraplus_lr_ratio > 0:
        from peft.optimizers import create_loraplus_optimizer
        from transformers import Trainer

        optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(trainer.args, trainer.model)
        kwargs.pop("lr", None)
        trainer.optimizer = create_loraplus_optimizer(
            model=trainer.model,
            optimizer_cls=optimizer_cls,
            lr=trainer.args.learning_rate,
            loraplus_lr_ratio=params.loraplus_lr_ratio,
            weight_decay=trainer.args.weight_decay,
            **kwargs,
        )


def _keep_initial_adapter(model: Any, folder: Path) -> None:
    """PiSSA/OLoRA change the base weights; the adapter as initialised lets the final one be converted into an
    adapter for the original base. Saved once: a resumed run initialises identically (SVD / QR are exact)."""
    if (folder / "adapter_config.json").is_file():
        return
    config = model.peft_config["default"]
    init = config.init_lora_weights
    config.init_lora_weights = True  # PEFT's recipe: the saved initial adapter must not claim PiSSA init
    try:
        model.save_pretrained(str(folder))
    finally:
        config.init_lora_weights = init


def save(params: _LowRank, trainer: Any, out_dir: Path, ctx: Context) -> None:
    if getattr(params, "init", "gaussian") == "gaussian":
        trainer.save_model(str(out_dir))
        return
    trainer.model.save_pretrained(
        str(out_dir), path_initial_model_for_weight_conversion=str(ctx.run_dir / INITIAL_ADAPTER)
    )
    trainer.processing_class.save_pretrained(str(out_dir))


def gaussian(params: _LowRank) -> _LowRank:
    # SVD and QR need weights; the shapes (and so the count) are those of the plain initialisation.
    return params.model_copy(update={"init": "gaussian"}) if hasattr(params, "init") else params


def quantization(params: QloraParams) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if params.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    dtype = params.compute_dtype
    if dtype == "auto":
        dtype = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=params.quant_type,
        bnb_4bit_use_double_quant=params.double_quant,
        bnb_4bit_compute_dtype={"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype],
    )


def check_quantization(params: QloraParams, device: str) -> list[str]:
    problems = []
    if importlib.util.find_spec("bitsandbytes") is None:
        problems.append("QLoRA needs bitsandbytes, which is not installed: `pip install bitsandbytes`.")
    if device == "mps":
        problems.append("bitsandbytes has no Apple GPU (MPS) backend: choose LoRA, or run QLoRA on CUDA or a CPU.")
    if device == "cpu" and params.compute_dtype in ("bf16", "fp16"):
        problems.append(
            f"method.compute_dtype={params.compute_dtype} on this CPU runs ~50x slower than fp32: choose auto or fp32."
        )
    return problems


_LORA_HOOKS = dict(
    build_peft_config=build_peft_config, customize_trainer=customize_trainer, save=save, for_counting=gaussian
)

register(
    MethodSpec(
        name="lora",
        title="LoRA",
        family="LoRA family",
        description="Low-rank adapters on frozen weights: small files, little memory, near full-tuning quality. "
        "Options: rsLoRA scaling, PiSSA/OLoRA initialisation, LoRA+ learning rates.",
        params=LoraParams,
        mergeable=True,
        **_LORA_HOOKS,
    )
)
register(
    MethodSpec(
        name="dora",
        title="DoRA",
        family="LoRA family",
        description="Weight-decomposed LoRA (Liu et al., 2024): learns each weight's magnitude and its direction "
        "apart; often better than LoRA at low ranks, ~20% slower per step.",
        params=DoraParams,
        mergeable=True,
        **_LORA_HOOKS,
    )
)
register(
    MethodSpec(
        name="qlora",
        title="QLoRA",
        family="LoRA family",
        description="LoRA on a base quantized to 4-bit NF4 (or 8-bit) with bitsandbytes (Dettmers et al., 2023): "
        "the base weights take a quarter of the memory. Merging goes into the full-precision base.",
        params=QloraParams,
        mergeable=True,
        quantization=quantization,
        check=check_quantization,
        **_LORA_HOOKS,
    )
)
