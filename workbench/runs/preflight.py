"""What the form shows about a run before Start: the method's trainable parameters on the chosen model, and what
stops the run (on this machine, with this stage and parent run, or with trackers that cannot report). Needs
torch (device detection, the meta-device count), so the UI runs it in its helper process; the worker checks the
same problems again.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench import methods, stages
from workbench.config import RunConfig
from workbench.errors import ConfigError, FieldProblem
from workbench.runs import chaining, tracking

_BITSANDBYTES_OPTIMIZERS = ("adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit")


@dataclass(frozen=True)
class MethodReport:
    trainable: int
    total: int
    device: str
    problems: list[str]
    device_memory_mb: float | None = None  # the GPU's memory, where the device is one

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def problems(config: RunConfig, device: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Why this run cannot train on `device` ("cuda", "mps" or "cpu") in a worker with environment `env` (default:
    this process's; it configures the experiment trackers); empty when nothing stops it."""
    spec = methods.get(config.method.name)
    found = list(spec.check(config.method, device)) if spec.check else []
    stage = stages.get(config.stage.name)
    found += stage.check(config) if stage.check else []
    parent = chaining.parent_problem(config)
    if parent:
        found.append(f"model.parent_run: {parent}")
    reward_run = chaining.reward_run_problem(config)
    if reward_run:
        found.append(f"stage.reward_model_run: {reward_run}")
    if config.train.optim in _BITSANDBYTES_OPTIMIZERS:
        if importlib.util.find_spec("bitsandbytes") is None:
            found.append(f"train.optim={config.train.optim} needs bitsandbytes, which is not installed.")
        elif device == "mps":
            found.append(f"train.optim={config.train.optim}: bitsandbytes has no Apple GPU (MPS) backend.")
    found += tracking.problems(config.train.report_to, os.environ if env is None else env)
    return found


def refuse(problems_found: list[str]) -> None:
    """Raise a ConfigError for `problems(...)`, each under the field it names (`stage.beta: ...`)."""
    if problems_found:
        raise ConfigError([_field_problem(problem) for problem in problems_found])


def _field_problem(problem: str) -> FieldProblem:
    field, sep, message = problem.partition(": ")
    if sep and field.replace(".", "").replace("_", "").isalnum() and "." in field:
        return FieldProblem(field, message)
    return FieldProblem("method", problem)


def this_device() -> str:
    """Where a run would train here: "cuda", "mps" or "cpu" (imports torch: the UI asks its helper process)."""
    from workbench.training.hardware import detect_device

    return detect_device()[0]


def method_report(config: RunConfig, model_dir: Path | str) -> MethodReport:
    from workbench.methods.counting import count_for_method
    from workbench.training.hardware import detect_device

    device, _ = detect_device()
    trainable, total = count_for_method(config.method, model_dir)
    memory = None
    if device == "cuda":
        import torch

        memory = torch.cuda.get_device_properties(0).total_memory / 2**20
    return MethodReport(trainable, total, device, problems(config, device), memory)
