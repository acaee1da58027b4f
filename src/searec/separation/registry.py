"""A registry of estimator classes by name, one per kind (alignment, distancing).

``none`` is reserved: it is how a config switches a kind off.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class EstimatorRegistry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` available as ``<kind>: <cls.name>``."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or name in self.classes or name == "none":
            raise ValueError(f"{self.kind} estimator name {name!r} is taken or missing")
        self.classes[name] = cls
        return cls

    def choices(self) -> str:
        """'a, b, none': what a config may name."""
        return ", ".join([*sorted(self.classes), "none"])

    def get(self, name: str) -> type[T]:
        if name not in self.classes:
            raise ValueError(f"{self.kind} must be one of {self.choices()}, got {name!r}")
        return self.classes[name]

    def copy(self) -> dict[str, type[T]]:
        return dict(self.classes)
