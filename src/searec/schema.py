"""The ground floor of every config section: a strict pydantic base and ``validate``.

Each section's schema lives beside the code that owns it (``TrainConfig`` beside the
trainer, ``SeparationParams`` beside the separation component, a model's ``Params`` in
its module); they all derive from :class:`StrictModel` and are validated with
:func:`validate`, which turns pydantic's errors into one line that names the key, says
what was expected and, for a mistyped key, suggests the closest known key of any section.
"""

from __future__ import annotations

import contextlib
import difflib
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from searec.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


def section_type(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds (``X`` or ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of a section and of the sections nested in it."""
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        nested = section_type(field.annotation)
        if nested is not None:
            keys.extend(known_keys(nested, prefix + name + "."))
    return keys


def suggest(key: str, candidates: Iterable[str]) -> str:
    """' (did you mean ...?)' for a mistyped dotted key, or ''.

    A key whose last part is a known key of another section (``model.lr`` -> ``train.lr``)
    is suggested first, then the closest spellings."""
    keys = list(dict.fromkeys(candidates))
    sections = {k.rsplit(".", 1)[0] for k in keys if "." in k}
    pool = [c for c in keys if c != key and c not in sections]  # keys, not section names
    leaf = key.rsplit(".", 1)[-1]
    picks = [c for c in pool if c.rsplit(".", 1)[-1] == leaf]
    picks += difflib.get_close_matches(key, pool, n=1, cutoff=0.6)
    picks = list(dict.fromkeys(picks))[:2]
    if not picks:
        return ""
    return " (did you mean " + " or ".join(repr(p) for p in picks) + "?)"


_SHORT = reprlib.Repr()  # attributes, not arguments: Python 3.10 and 3.11 take none
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxlong, _SHORT.maxother = 2, 60, 40, 60
for _kind in ("maxtuple", "maxlist", "maxarray", "maxdict", "maxset", "maxfrozenset",
              "maxdeque"):
    setattr(_SHORT, _kind, 4)
SHORT_VALUE = 100  # most characters of a value an error message quotes


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a short prefix: a message never echoes a huge value in full
    (nor walks all of it: nested and long containers are abbreviated first)."""
    text = _SHORT.repr(value)
    return text if len(text) <= SHORT_VALUE else text[: SHORT_VALUE - 3] + "..."


def describe_errors(err: ValidationError, known: Iterable[str], prefix: str = "") -> str:
    """pydantic's errors as '; '-joined sentences that name each key."""
    known = list(known)
    lines = []
    for e in err.errors(include_url=False)[:5]:
        key = prefix + ".".join(str(p)[:60] for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key!r}{suggest(key, known)}")
        else:
            msg = e["msg"].removeprefix("Value error, ")[:300]
            got = e.get("input")
            shown = "" if isinstance(got, dict) else f" (got {short_repr(got)})"
            lines.append(f"config key {key!r}: {msg}{shown}")
    return "; ".join(lines)


def validate(
    model: type[M],
    tree: Mapping[str, Any] | None,
    source: str = "config",
    prefix: str = "",
    known: Iterable[str] | None = None,
) -> M:
    """``model.model_validate(tree)``, raising :class:`ConfigError` that names the source
    and the key; ``prefix`` is the section's place (``"model."``), ``known`` every key a
    typo may have meant (default: the section's own keys)."""
    try:
        return model.model_validate(dict(tree or {}))
    except ValidationError as err:
        keys = list(known) if known is not None else known_keys(model, prefix)
        raise ConfigError(f"{source}: {describe_errors(err, keys, prefix)}") from None


class Registry(Generic[T]):
    """Entries of one kind by name (models, MI estimators, table formats): each name once,
    looked up with a did-you-mean. Plug-ins add to them (``searec --plugin``)."""

    reserved: ClassVar[tuple[str, ...]] = ()  # names a config uses for something else

    def __init__(self, what: str) -> None:
        self.what = what  # "model", "alignment estimator", "table format"
        self.entries: dict[str, T] = {}

    def add(self, name: Any, entry: T) -> T:
        if not isinstance(name, str) or not name or name in self.entries \
                or name in self.reserved:
            raise ValueError(f"{self.what} name {name!r} is taken or missing")
        self.entries[name] = entry
        return entry

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` available under ``cls.name``."""
        return self.add(getattr(cls, "name", None), cls)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def copy(self) -> dict[str, T]:
        return dict(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def suggestion(self, name: str, extra: Iterable[str] = ()) -> str:
        """' (did you mean ...?)' for a mistyped name, or ''."""
        close = difflib.get_close_matches(str(name), [*self.entries, *extra], n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    @contextlib.contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """What is registered inside the block is forgotten after it (tests, notebooks)."""
        saved = dict(self.entries)
        try:
            yield self
        finally:
            self.entries = saved

