"""Training: the loop (Trainer) and whole runs (train, resume, load_run)."""

from searec.training.run import format_metrics, load_dataset, load_run, resume, train
from searec.training.trainer import Trainer, evaluate_model, seed_everything

__all__ = ["Trainer", "evaluate_model", "format_metrics", "load_dataset", "load_run",
           "resume", "seed_everything", "train"]
