"""Finished runs for serving tests, made without training: a queued run whose adapter/ holds LoRA weights with a
random start (PEFT's init_lora_weights=False), so that each run answers differently from the base and the other."""

from __future__ import annotations

from tests.conftest import PRESETS
from workbench.config import load_config
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze


def finished_lora_run(
    seed: int, target_modules: tuple[str, ...] = ("q_proj", "v_proj", "up_proj", "down_proj")
) -> str:
    """A run of the bundled model whose adapter/ holds a random LoRA adapter; its id."""
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench import models

    queue = RunQueue()
    job = queue.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml")), start=False)
    queue.cancel(job.id)  # nothing trains: the adapter is written here
    torch.manual_seed(seed)
    base = models.load_model(models.resolve("smollm2-135m-instruct"))
    # A large alpha: the random adapters change the replies, so the test sees which one answered.
    config = LoraConfig(r=8, lora_alpha=64, target_modules=list(target_modules), init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(job.files.adapter)
    return job.id
