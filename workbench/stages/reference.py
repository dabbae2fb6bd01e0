"""The reference model of stages that keep the policy near where it started (DPO, KTO, GRPO with a KL term).

PEFT methods need none: TRL uses the base with the adapter switched off. Methods that train the model's own
weights (full, freeze) or add modules of their own (bottleneck) get a frozen copy of the starting model.
"""

from __future__ import annotations

from typing import Any

from workbench.stages.registry import TrainerParts


def needs_copy(parts: TrainerParts) -> bool:
    from peft import PeftModel

    return parts.peft_config is None and not isinstance(parts.model, PeftModel)


def frozen_copy(parts: TrainerParts) -> Any:
    """The starting model, read again from its local folder: TRL would look up the hub id the model records."""
    from transformers import AutoModelForCausalLM

    model = parts.model
    return AutoModelForCausalLM.from_pretrained(
        parts.model_path, dtype=model.dtype, attn_implementation=model.config._attn_implementation
    ).eval()


def reference_for(parts: TrainerParts) -> Any:
    """None where TRL can switch the adapter off, else a frozen copy."""
    return frozen_copy(parts) if needs_copy(parts) else None
