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
from searec.separation import ALIGNMENTS, DISTANCINGS, SeparationParams
from searec.separation.component import MOVED_TO_SECTIONS


def model_keys(name: str) -> list[str]:
    """Every ``model.*`` key of a registered model ([] for an unknown name), each
    registered estimator's settings included where the model takes a separation."""
    cls = registry().get(name)
    if cls is None:
        return []
    keys = ["model.name", *("model." + k for k in known_keys(cls.Params))]
    if "model.separation" in keys:
        keys += [f"model.separation.{kind}.{k}" for kind, estimators in
                 (("alignment", ALIGNMENTS), ("distancing", DISTANCINGS))
                 for k in estimators.setting_keys()]
    return list(dict.fromkeys(keys))


def _moved_separation_keys(name: str, params: dict[str, Any], source: str) -> None:
    """Separation keys given flat in ``model`` (before the nested section) name their place."""
    fields = get_model_class(name).Params.model_fields
    moved = [k for k in params if k not in fields
             and (k in SeparationParams.model_fields or k in MOVED_TO_SECTIONS)]
    if not moved:
        return
    takes = "separation" in fields
    hint = "" if takes else (f"; model {name!r} has no separation (models that take one: "
                             + ", ".join(n for n, c in sorted(registry().items())
                                         if "separation" in c.Params.model_fields) + ")")
    kind, key = MOVED_TO_SECTIONS.get(moved[0], ("", moved[0]))
    place = f"model.separation.{kind}.{key}" if kind else f"model.separation.{key}"
    raise ConfigError(f"{source}: config key 'model.{moved[0]}' moved to '{place}' "
                      "(separation is a nested section, each estimator's settings a section "
                      "within it)" + hint)


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
