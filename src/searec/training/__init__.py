"""Training: the loop (Trainer) and its callbacks, its config section, checkpoints and the
run-folder lock, term diagnostics, memory checks, and distributed helpers. Whole runs
(train, resume, load_run) are in :mod:`searec.runs`."""

from searec.training.trainer import (
    Callback,
    TrainConfig,
    Trainer,
    main_parameters,
    seed_everything,
)

__all__ = ["Callback", "TrainConfig", "Trainer", "main_parameters", "seed_everything"]
