"""The one way a run comes in, from the UI, the CLI or the API: validate, check this machine, store the data,
queue it. Everything is checked before anything is written; the stored dataset copies are content-addressed, so
a run can always be reproduced from its frozen config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from workbench import data, models, stages
from workbench.config import RunConfig
from workbench.errors import ConfigError, DataError, FieldProblem
from workbench.runs import chaining, preflight
from workbench.runs.queue import RunQueue
from workbench.runs.store import Job


def submit(
    config: RunConfig,
    *,
    device: str | None = None,
    env: Mapping[str, str] | None = None,
    queue: RunQueue | None = None,
    warn: Callable[[str], None] | None = None,
) -> Job:
    """Queue a run of `config` (and start it when the queue is free); ConfigError lists every problem at once.

    `device` is where it will train ("cpu", "cuda", "mps"; detected when None, which imports torch: the UI
    passes what its helper process found). The worker runs with `env` (default: this process's environment).
    `warn` is told, before the run is queued, what it will train that is likely not meant (placeholders left
    without a value).
    """
    env = dict(os.environ if env is None else env)
    preflight.refuse(preflight.problems(config, device or preflight.this_device(), env))
    frozen = freeze(config, warn)
    return (queue or RunQueue()).submit(frozen, env=env)


def freeze(config: RunConfig, warn: Callable[[str], None] | None = None) -> RunConfig:
    """The config with each dataset replaced by its stored, self-contained copy; ConfigError lists all problems."""
    problems: list[FieldProblem] = []
    model_problem = models.check_model_ref(config.model.name_or_path)
    if model_problem:
        problems.append(FieldProblem("model.name_or_path", model_problem))
    # Each stage reads its own kind of data (conversations, pairs, labelled replies, prompts): refused here,
    # before Start, naming what the stage needs.
    stage = stages.get(config.stage.name)
    loaded = []
    for i, spec in enumerate(config.data.datasets):
        try:
            loaded.append(data.load_for(stage.data, spec))
        except DataError as err:
            problems.append(FieldProblem(f"data.datasets.{i}", f"{err} (stage {config.stage.name})"))
    if not problems and stage.check_data is not None:
        problem = stage.check_data(config.stage, loaded)
        if problem:
            problems.append(FieldProblem("data.datasets", f"{problem} (stage {config.stage.name})"))
    parent = chaining.parent_problem(config)
    if parent:
        problems.append(FieldProblem("model.parent_run", parent))
    if problems:
        raise ConfigError(problems)
    for i, ds in enumerate(loaded):
        unfilled = data.placeholders.found_in(ds.conversations if isinstance(ds, data.LoadedDataset) else ds.examples)
        if unfilled and warn is not None:
            names = ", ".join(f"{{{{{name}}}}}" for name in unfilled)
            example = f"--set data.datasets.{i}.fill.{unfilled[0]}=VALUE"
            warn(f"data.datasets.{i}: {ds.path.name} has placeholders without a value ({names}); the model will "
                 f"learn them as written. Give their values with data.datasets.{i}.fill ({example}).")  # fmt: skip
    config = chaining.inherit(config)
    frozen = [data.freeze_spec(spec, ds) for spec, ds in zip(config.data.datasets, loaded, strict=True)]
    return config.model_copy(update={"data": config.data.model_copy(update={"datasets": frozen})})
