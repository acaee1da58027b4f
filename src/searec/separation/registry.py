"""A registry of estimator classes by name, one per kind (alignment, distancing).

``none`` is reserved: it is how a config switches a kind off.
"""

from __future__ import annotations

import difflib
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

    def check(self, name: str) -> str:
        """``name`` if a config may name it (a registered estimator or ``none``), else a
        ValueError that suggests the closest name."""
        if name == "none" or name in self.classes:
            return name
        close = difflib.get_close_matches(name, [*self.classes, "none"], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {self.kind} estimator {name[:60]!r}{hint}; choose one of "
                         f"{self.choices()}")

    def get(self, name: str) -> type[T]:
        self.check(name)
        if name not in self.classes:
            raise ValueError(f"{self.kind} 'none' is no estimator; choose one of "
                             f"{self.choices()}")
        return self.classes[name]

    def copy(self) -> dict[str, type[T]]:
        return dict(self.classes)
