"""Model registry. Importing this package registers every built-in model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from searec.errors import ConfigError
from searec.graphs import CacheDir
from searec.models import (  # noqa: F401  (registration side effect)
    bm3,
    bpr,
    dragon,
    freedom,
    itemknn,
    lattice,
    lgmrec,
    lightgcn,
    mgcn,
    pop,
    sea,
    vbpr,
)
from searec.models.base import Recommender, get_model_class, register, registry
from searec.schema import known_keys, validate
from searec.separation import SeparationParams


def model_keys(name: str) -> list[str]:
    """Every ``model.*`` key of a registered model ([] for an unknown name)."""
    cls = registry().get(name)
    return [] if cls is None else ["model.name", *("model." + k for k in known_keys(cls.Params))]


def _moved_separation_keys(name: str, params: dict[str, Any], source: str) -> None:
    """Separation keys given flat in ``model`` (before the nested section) name their place."""
    fields = get_model_class(name).Params.model_fields
    moved = [k for k in params if k not in fields and k in SeparationParams.model_fields]
    if not moved:
        return
    takes = "separation" in fields
    hint = "" if takes else (f"; model {name!r} has no separation (models that take one: "
                             + ", ".join(n for n, c in sorted(registry().items())
                                         if "separation" in c.Params.model_fields) + ")")
    raise ConfigError(f"{source}: config key 'model.{moved[0]}' moved to "
                      f"'model.separation.{moved[0]}' (separation is a nested section)" + hint)


def resolve_model_section(
    name: str, params: dict[str, Any], source: str = "config",
    known: Iterable[str] | None = None,
) -> tuple[str, dict[str, Any], float]:
    """Validate a model's parameters -> (name, full params with defaults, default lr).

    ``known``: every config key a mistyped one may have meant (default: the model's)."""
    cls = get_model_class(name)
    _moved_separation_keys(name, params, source)
    try:
        validated = validate(cls.Params, params, source, prefix="model.",
                             known=known if known is not None else model_keys(name))
    except ConfigError as err:
        raise ConfigError(f"{err} (model {name!r})") from None
    return name, validated.model_dump(mode="json"), cls.default_lr


def create_model(name: str, dataset: Any, params: dict[str, Any],
                 cache_dir: CacheDir = None) -> Recommender:
    cls = get_model_class(name)
    cls.check_dataset(dataset)
    return cls.build(dataset, cls.Params.model_validate(params), cache_dir)


__all__ = ["Recommender", "create_model", "get_model_class", "model_keys", "register",
           "registry", "resolve_model_section"]
