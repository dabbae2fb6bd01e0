"""The method registry: each fine-tuning method is one module that calls `register(...)` once.

The run config, the form, validation and the worker read this registry; no method name is spelled out elsewhere.
"""

from workbench.methods.registry import MethodSpec, get, names, params_types, register

# Importing a method module registers it.
from workbench.methods import lora  # noqa: E402, F401  isort: skip

__all__ = ["MethodSpec", "get", "names", "params_types", "register"]
