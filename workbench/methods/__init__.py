"""The method registry: each fine-tuning family is one module whose methods call `register(...)` once each.

The run config, the form, validation and the worker read this registry; no method name is spelled out elsewhere.
The order of the imports below is the order of the form's method picker.
"""

from workbench.methods.registry import Context, MethodSpec, get, names, params_types, register

# Importing a method module registers its methods.
from workbench.methods import lora  # noqa: E402, F401  isort: skip
from workbench.methods import full  # noqa: E402, F401  isort: skip
from workbench.methods import prompt  # noqa: E402, F401  isort: skip
from workbench.methods import adapters  # noqa: E402, F401  isort: skip
from workbench.methods import ia3, lycoris, vera, orthogonal, adalora  # noqa: E402, F401  isort: skip

__all__ = ["Context", "MethodSpec", "get", "names", "params_types", "register"]
