"""Choose device, precision, threads and gradient checkpointing from the hardware, not from library defaults.

TRL's configs default to bf16 and gradient checkpointing. On a CPU without native bf16 a bf16 step is ~50x
slower than fp32, and checkpointing a small model only repeats the forward pass, so both are decided here.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from workbench.config import TrainConfig

# Below this many parameters, activations are small next to the weights and optimizer state:
# recomputing them (checkpointing) costs a second forward pass and saves little.
CHECKPOINTING_MIN_PARAMS = 1_000_000_000


@dataclass(frozen=True)
class Hardware:
    device: Literal["cuda", "mps", "cpu"]
    device_name: str
    precision: Literal["fp32", "bf16", "fp16"]
    threads: int
    gradient_checkpointing: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_device() -> tuple[Literal["cuda", "mps", "cpu"], str]:
    if torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    if torch.backends.mps.is_available():
        return "mps", "Apple GPU"
    return "cpu", platform.processor() or platform.machine()


def choose(train: TrainConfig, n_params: int) -> Hardware:
    """The settings this run will use on this machine."""
    device, name = detect_device()
    precision = train.precision
    if precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    checkpointing = train.gradient_checkpointing == "on" or (
        train.gradient_checkpointing == "auto" and device == "cuda" and n_params >= CHECKPOINTING_MIN_PARAMS
    )
    threads = train.threads or len(os.sched_getaffinity(0))
    return Hardware(device, name, precision, threads, checkpointing)


def torch_dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
