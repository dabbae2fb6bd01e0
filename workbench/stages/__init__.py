"""The stage registry: each training stage is one module that calls `register(...)` once.

The run config, the worker and the Runs charts read this registry; the order of the imports is the order shown.
"""

from workbench.stages.registry import StageSpec, TrainerParts, get, names, params_types, register

from workbench.stages import sft  # noqa: E402, F401  isort: skip
from workbench.stages import pt  # noqa: E402, F401  isort: skip
from workbench.stages import dpo  # noqa: E402, F401  isort: skip
from workbench.stages import kto  # noqa: E402, F401  isort: skip
from workbench.stages import orpo  # noqa: E402, F401  isort: skip
from workbench.stages import simpo  # noqa: E402, F401  isort: skip
from workbench.stages import reward  # noqa: E402, F401  isort: skip
from workbench.stages import grpo  # noqa: E402, F401  isort: skip
from workbench.stages import rloo  # noqa: E402, F401  isort: skip
from workbench.stages import online_dpo  # noqa: E402, F401  isort: skip

__all__ = ["StageSpec", "TrainerParts", "get", "names", "params_types", "register"]
