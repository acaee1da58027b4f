"""A registry of estimator classes by name, one per kind (alignment, distancing), and the
config section each kind is chosen with.

An estimator's section is ``{name: <registered name>, <its settings>}`` (a bare name is
the section with that estimator's defaults); each estimator class declares its settings
as ``Params``, so a new estimator with settings of its own is one file and one
registration. ``none`` is reserved: it is how a config switches a kind off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import ValidationError

from searec.schema import Registry, StrictModel, describe_errors, known_keys

T = TypeVar("T")


class EstimatorParams(StrictModel):
    """Base of an estimator's settings section: which estimator, and its settings."""

    name: str


class EstimatorRegistry(Registry[T], Generic[T]):
    """Estimators of one kind, and the validation of the section that picks one."""

    reserved: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, kind: str, base: type[EstimatorParams], default: str) -> None:
        super().__init__(f"{kind} estimator")
        self.kind = kind
        self.base = base  # the kind's common settings (and those of "none")
        self.default = default

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: make ``cls`` available as ``<kind>: <cls.name>``, its settings
        (``cls.Params``, a subclass of the kind's base section) with it."""
        params = getattr(cls, "Params", None)
        if not (isinstance(params, type) and issubclass(params, self.base)):
            raise ValueError(f"{self.kind} estimator {getattr(cls, 'name', cls)!r}: its "
                             f"Params must derive from {self.base.__name__}")
        return super().register(cls)

    def choices(self) -> str:
        """'a, b, none': what a config may name."""
        return ", ".join([*self.names(), "none"])

    def check(self, name: str) -> str:
        """``name`` if a config may name it (a registered estimator or ``none``), else a
        ValueError that suggests the closest name."""
        if name == "none" or name in self.entries:
            return name
        raise ValueError(f"unknown {self.kind} estimator {str(name)[:60]!r}"
                         f"{self.suggestion(name, extra=['none'])}; choose one of "
                         f"{self.choices()}")

    def get(self, name: str) -> type[T]:
        self.check(name)
        if name not in self.entries:
            raise ValueError(f"{self.kind} 'none' is no estimator; choose one of "
                             f"{self.choices()}")
        return self.entries[name]

    def params_class(self, name: str) -> type[EstimatorParams]:
        """The settings section of estimator ``name`` (the kind's base for ``none``)."""
        return self.base if self.check(name) == "none" else self.entries[name].Params  # type: ignore[attr-defined]

    def section(self, value: Any) -> EstimatorParams:
        """Validate a config value into the chosen estimator's settings: a bare name, or a
        mapping with ``name`` (default: the kind's default estimator) and the settings.
        Errors are ValueErrors that name the setting and suggest the closest one."""
        if isinstance(value, EstimatorParams):
            if type(value) is self.params_class(value.name):
                return value  # validated already (a component built from its config)
            value = value.model_dump()
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an estimator name or a section {{name: ..., its "
                             f"settings}}, e.g. {self.default} (got {type(value).__name__})")
        named = "name" in value
        value = {"name": self.default, **value}
        name = value["name"]
        if not isinstance(name, str):
            raise ValueError("'name' must be a string: a registered estimator or none")
        params = self.params_class(name)
        try:
            return params.model_validate(value)
        except ValidationError as err:
            own = [k for k in known_keys(params) if k != "name"]
            # a typo may mean any estimator's setting; one that is another's says whose
            raise ValueError(f"{name}: {describe_errors(err, self.setting_keys())}; the "
                             f"settings of {name}: {', '.join(own) or 'none'}"
                             f"{self._owners_hint(value, own, name, named)}") from None

    def _owners_hint(self, value: Mapping[str, Any], own: list[str], name: str,
                     named: bool) -> str:
        """For settings given that belong to other estimators (CLUB's q_steps while the
        default is another): which estimators have them and how to choose one."""
        others = {other: known_keys(cls.Params) for other, cls in self.entries.items()  # type: ignore[attr-defined]
                  if other != name}
        foreign = [k for k in value if k != "name" and k not in own
                   and any(k in keys for keys in others.values())]
        if not foreign:
            return ""
        owners = sorted(o for o, keys in others.items() if any(k in keys for k in foreign))
        which = f"{name}, the default {self.kind} estimator" if not named else name
        keys = ", ".join(repr(k) for k in foreign)
        return (f". {keys} {'is a setting' if len(foreign) == 1 else 'are settings'} of "
                f"{' and '.join(owners)}, not of {which}: choose one first, e.g. "
                f"{self.kind}={owners[0]} (or {{name: {owners[0]}, ...}})")

    def setting_keys(self) -> list[str]:
        """Every setting any registered estimator of this kind has."""
        keys = {k for cls in self.entries.values() for k in known_keys(cls.Params)}  # type: ignore[attr-defined]
        return sorted(keys | set(known_keys(self.base)))
