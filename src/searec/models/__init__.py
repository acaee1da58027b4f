"""Model registry. Importing this package registers every built-in model."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from searec.errors import ConfigError
from searec.models import bpr, freedom, lightgcn, pop, sea, vbpr  # noqa: F401  (registration side effect)
from searec.models.base import Recommender, get_model_class, register, registry


def resolve_model_section(
    name: str, params: dict[str, Any], source: str = "config"
) -> tuple[str, dict[str, Any], float]:
    """Validate a model's parameters -> (name, full params with defaults, default lr)."""
    from searec.config import _format_validation_error, _known_keys

    cls = get_model_class(name)
    try:
        validated = cls.Params.model_validate(params)
    except ValidationError as err:
        known = ["model." + k for k in _known_keys(cls.Params)]
        msg = _format_validation_error(err, known, source, prefix="model.")
        raise ConfigError(msg + f" (model {name!r})") from None
    return name, validated.model_dump(mode="json"), cls.default_lr


def create_model(name: str, dataset: Any, params: dict[str, Any],
                 cache_dir: str | None = None) -> Recommender:
    cls = get_model_class(name)
    cls.check_dataset(dataset)
    return cls.build(dataset, cls.Params.model_validate(params), cache_dir)


__all__ = ["Recommender", "create_model", "get_model_class", "register", "registry",
           "resolve_model_section"]
