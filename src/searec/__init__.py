"""searec: multimodal recommendation with SEA (separate learning of generic and unique
modality representations), with baselines, full-ranking evaluation and a CLI."""

from searec.config import Config, load_config
from searec.data import Dataset, load_mmrec, make_synthetic, save_mmrec
from searec.data.load import load_dataset
from searec.evaluation import evaluate_model
from searec.inference.items import add_items, load_catalogue
from searec.inference.recommend import recommend, write_recommendations
from searec.models import create_model, get_model_class, registry
from searec.runs import load_run, resume, train
from searec.version import __version__ as __version__

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
