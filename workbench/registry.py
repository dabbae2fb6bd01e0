"""A registry of specs keyed by name, in registration order: the one mechanism behind methods and stages."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel


class _Spec(Protocol):
    name: str
    params: type[BaseModel]


Spec = TypeVar("Spec", bound=_Spec)


class Registry(Generic[Spec]):
    def __init__(self, kind: str):
        self.kind = kind  # "method", "stage": used in messages
        self._specs: dict[str, Spec] = {}

    def register(self, spec: Spec) -> Spec:
        if spec.name in self._specs:
            raise ValueError(f"{self.kind} {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> Spec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._specs)

    def params_types(self) -> tuple[type[BaseModel], ...]:
        """The parameter models of every spec, for the run config's discriminated union."""
        return tuple(spec.params for spec in self._specs.values())
