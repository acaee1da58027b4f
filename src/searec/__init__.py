"""searec: multimodal recommendation with SEA (separate learning of generic and unique
modality representations), with baselines, full-ranking evaluation and a CLI.

The public names below are imported on first use (PEP 562), not with the package: the
command line imports ``searec`` to answer ``--help`` and ``--version``, and that should not
cost torch's import time.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from searec.hugepages import request_huge_pages
from searec.version import __version__ as __version__

# before any large torch allocation of searec's: torch reads this once (searec/hugepages.py)
request_huge_pages()

# public name -> the module that defines it
_EXPORTS = {
    "Config": "searec.config",
    "load_config": "searec.config",
    "Dataset": "searec.data",
    "load_mmrec": "searec.data",
    "make_synthetic": "searec.data",
    "save_mmrec": "searec.data",
    "load_dataset": "searec.data.load",
    "evaluate_model": "searec.evaluation",
    "add_items": "searec.inference.items",
    "load_catalogue": "searec.inference.items",
    "recommend": "searec.inference.recommend",
    "write_recommendations": "searec.inference.recommend",
    "create_model": "searec.models",
    "get_model_class": "searec.models",
    "registry": "searec.models",
    "load_run": "searec.runs",
    "resume": "searec.runs",
    "train": "searec.runs",
}

__all__ = [
    "Config",
    "Dataset",
    "add_items",
    "create_model",
    "evaluate_model",
    "get_model_class",
    "load_catalogue",
    "load_config",
    "load_dataset",
    "load_mmrec",
    "load_run",
    "make_synthetic",
    "recommend",
    "registry",
    "resume",
    "save_mmrec",
    "train",
    "write_recommendations",
]

if TYPE_CHECKING:
    from searec.config import Config, load_config
    from searec.data import Dataset, load_mmrec, make_synthetic, save_mmrec
    from searec.data.load import load_dataset
    from searec.evaluation import evaluate_model
    from searec.inference.items import add_items, load_catalogue
    from searec.inference.recommend import recommend, write_recommendations
    from searec.models import create_model, get_model_class, registry
    from searec.runs import load_run, resume, train


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:  # a subpackage not imported yet (searec.graphs, ...)
        if name.startswith("_") or importlib.util.find_spec(f"searec.{name}") is None:
            raise AttributeError(f"module 'searec' has no attribute {name!r}")
        return importlib.import_module(f"searec.{name}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
