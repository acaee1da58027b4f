"""Training: the loop (Trainer), its config section, and distributed helpers. Whole runs
(train, resume, load_run) are in :mod:`searec.runs`."""

from searec.training.trainer import (
    TrainConfig,
    Trainer,
    evaluate_model,
    main_parameters,
    seed_everything,
)

__all__ = ["TrainConfig", "Trainer", "evaluate_model", "main_parameters", "seed_everything"]
