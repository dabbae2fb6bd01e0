"""Runs that use earlier runs: a run that starts where an earlier run of the same model finished (SFT → DPO,
SFT → GRPO), and online RL scored by a reward-model run.

A PEFT adapter keeps training, so the result is again one adapter on the plain base (it loads anywhere PEFT
loads) and stages with a reference use the base with the adapter off; a whole model saved by full or freeze
tuning becomes the starting model, for any method. Bottleneck adapters cannot be continued.
"""

from __future__ import annotations

from pathlib import Path

from workbench import home, models, stages
from workbench.config import RunConfig
from workbench.runs.files import RunFiles
from workbench.runs.store import finished_run


def parent_files(run_id: str) -> RunFiles:
    return RunFiles(home.runs_dir() / run_id)


def parent_problem(config: RunConfig) -> str | None:
    """Why `model.parent_run` cannot be the start of this run; None when it can (or no parent is set)."""
    run_id = config.model.parent_run
    if run_id is None:
        return None
    files, problem = finished_run(run_id)
    if files is None:
        return problem
    parent = files.read_config()
    kind = files.artifact_kind()
    if parent.model.name_or_path != config.model.name_or_path:
        return f"run {run_id} tuned {parent.model.name_or_path!r}, not {config.model.name_or_path!r}"
    if stages.get(parent.stage.name).head == "reward":
        return f"run {run_id} is a reward model; pick it as a GRPO/RLOO stage's reward_model_run instead"
    if kind == "bottleneck":
        return f"run {run_id} trained bottleneck adapters, which cannot be continued; chain from a PEFT or full run"
    if kind == "peft":
        if stages.get(config.stage.name).head == "reward":
            return (f"run {run_id} is an adapter for generating text; a reward model starts from the base or from "
                    "a full-tuning run")  # fmt: skip
        if parent.method.name != config.method.name:
            return (f"run {run_id} trained a {parent.method.name} adapter, which this run continues: set "
                    f"method.name to {parent.method.name}")  # fmt: skip
    return None


def reward_run_problem(config: RunConfig) -> str | None:
    """Why `stage.reward_model_run` cannot score this run's replies; None when it can (or none is set)."""
    run_id = getattr(config.stage, "reward_model_run", None)
    if not run_id:
        return None
    files, problem = finished_run(run_id)
    if files is None:
        return problem
    if stages.get(files.read_config().stage.name).head != "reward":
        return f"run {run_id} trained stage {files.read_config().stage.name!r}, not a reward model"
    return None


def reward_run(config: RunConfig) -> RunFiles | None:
    """The files of the reward-model run that scores this run's replies, if one is chosen."""
    run_id = getattr(config.stage, "reward_model_run", None)
    return parent_files(run_id) if run_id else None


def inherit(config: RunConfig) -> RunConfig:
    """The config as it will train: continuing an adapter means continuing its method settings too."""
    if config.model.parent_run is None:
        return config
    files = parent_files(config.model.parent_run)
    if files.artifact_kind() != "peft":
        return config
    return config.model_copy(update={"method": files.read_config().method})


def starting_folder(config: RunConfig) -> Path | None:
    """The parent's whole model folder, when the run starts from one."""
    if config.model.parent_run is None:
        return None
    files = parent_files(config.model.parent_run)
    return files.adapter if files.artifact_kind() == "model" else None


def parent_adapter(config: RunConfig) -> Path | None:
    """The parent's PEFT adapter folder, when the run continues one."""
    if config.model.parent_run is None:
        return None
    files = parent_files(config.model.parent_run)
    return files.adapter if files.artifact_kind() == "peft" else None


def base_ref(config: RunConfig) -> models.ModelRef:
    """The model a run's adapter applies to: the base, or the whole model of the run it started from."""
    ref = models.resolve(config.model.name_or_path)
    start = starting_folder(config)
    return models.ModelRef(path=str(start), base_name=ref.base_name) if start else ref
