"""What the form shows about a method before Start: its trainable parameters on the chosen model, and what stops
it on this machine. Needs torch (device detection, the meta-device count), so the UI runs it in its helper
process; the worker checks the same problems before it loads anything.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from workbench import methods
from workbench.config import RunConfig

_BITSANDBYTES_OPTIMIZERS = ("adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit")


@dataclass(frozen=True)
class MethodReport:
    trainable: int
    total: int
    device: str
    problems: list[str]

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def describe(self) -> str:
        return f"**{self.trainable:,}** trainable parameters of {self.total:,} (**{self.share:.4%}**)"


def problems(config: RunConfig, device: str) -> list[str]:
    """Why this run cannot train on `device` ("cuda", "mps" or "cpu"); empty when nothing stops it."""
    spec = methods.get(config.method.name)
    found = list(spec.check(config.method, device)) if spec.check else []
    if config.train.optim in _BITSANDBYTES_OPTIMIZERS:
        if importlib.util.find_spec("bitsandbytes") is None:
            found.append(f"train.optim={config.train.optim} needs bitsandbytes, which is not installed.")
        elif device == "mps":
            found.append(f"train.optim={config.train.optim}: bitsandbytes has no Apple GPU (MPS) backend.")
    return found


def method_report(config: RunConfig, model_dir: Path | str) -> MethodReport:
    from workbench.methods.counting import count_for_method
    from workbench.training.hardware import detect_device

    device, _ = detect_device()
    trainable, total = count_for_method(config.method, model_dir)
    return MethodReport(trainable, total, device, problems(config, device))
