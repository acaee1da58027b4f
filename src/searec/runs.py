"""Run folders: one training run end to end (config -> dataset -> model -> trainer -> folder).

A run folder holds config.yaml (the full resolved config), history.csv, last.pt (for
resume), best.pt (best validation checkpoint) and, when finished, metrics.json.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from searec.config import Config, build_config, read_yaml
from searec.data.dataset import Dataset
from searec.data.load import load_dataset
from searec.errors import ConfigError, RunDirError
from searec.graphs import InteractionGraph
from searec.io import check_output_dir, write_json, write_text
from searec.models import create_model
from searec.models.base import Recommender
from searec.training import distributed
from searec.training.memory import keep_freed_memory
from searec.training.trainer import (
    BEST,
    LAST,
    Trainer,
    read_checkpoint,
    resolve_device,
    seed_everything,
)


def check_run_dir(out: str | Path, overwrite: bool = False) -> None:
    """Refuse a run folder that cannot be used, without touching anything."""
    check_output_dir(out, overwrite, "run directory", "pass --overwrite to replace it or "
                     "--resume to continue it", RunDirError)


def default_run_dir(cfg: Config, root: str | Path = "runs") -> Path:
    """runs/<model>-<dataset folder or synthetic>-<local time>, for a run given no folder."""
    data = Path(cfg.data.path).name if cfg.data.path else "synthetic"
    return Path(root) / f"{cfg.model.name}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_eval_config(
    cfg: Config, dataset: Dataset, log: Callable[[str], None] = print
) -> None:
    too_big = [k for k in cfg.eval.topk if k > dataset.n_items]
    if too_big and "topk" not in cfg.eval.model_fields_set:
        # The default cut-offs were not the user's choice: fit them to a small catalogue.
        cfg.eval.topk = [k for k in cfg.eval.topk if k <= dataset.n_items]
        log(f"eval.topk: leaving out K={too_big} (the dataset has {dataset.n_items} items)")
        too_big = [] if cfg.eval.topk else too_big
    if too_big:
        raise ConfigError(f"config key 'eval.topk': K={too_big[0]} is larger than the "
                          f"{dataset.n_items} items of dataset {dataset.name!r}")


def prepare_run_dir(out: str | Path, overwrite: bool = False) -> Path:
    """Create an empty run folder; refuse an existing non-empty one unless overwrite."""
    out = Path(out)
    check_run_dir(out, overwrite)
    if out.exists() and any(out.iterdir()):
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{out}: cannot create run directory ({exc.strerror})") from None
    if not os.access(out, os.W_OK):
        raise RunDirError(f"{out}: run directory is not writable")
    return out


def build_model(cfg: Config, dataset: Dataset) -> Recommender:
    return create_model(cfg.model.name, dataset, cfg.model_params, cfg.cache_dir)


def train(
    cfg: Config,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    log: Callable[[str], None] = print,
    on_eval: Callable[[int, float], None] | None = None,
    test: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one model; returns (and writes) metrics.json's content.

    ``on_eval(epoch, valid_score)`` is called after each validation; ``test=False`` leaves
    the test split untouched (for model selection)."""
    out = Path(out)
    info = distributed.world()
    main = info.rank == 0
    if resume:
        if not (out / LAST).is_file() and not (out / BEST).is_file():
            raise RunDirError(f"{out}: nothing to resume (no {LAST} in the run directory)")
    elif main:
        check_run_dir(out, overwrite)
    # Everything that can fail on the user's input fails here, before anything is written.
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    elif info.world_size > 1:  # processes on one machine share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.local_world_size))
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and info.world_size > 1:
        device = torch.device("cuda", info.local_rank)
    if device.type == "cpu" and cfg.train.cpu_memory == "reuse" and not keep_freed_memory() \
            and main:
        log("train.cpu_memory=reuse has no effect here (the C library is not glibc); "
            "freed memory is returned to the system as with 'release'")
    dataset = load_dataset(cfg.data)
    check_eval_config(cfg, dataset, log)
    seed_everything(cfg.train.seed)
    model = build_model(cfg, dataset)
    graph = InteractionGraph.from_train(dataset.train)
    if not main:
        pass  # rank 0 owns the run folder
    elif resume:
        for stale in out.glob(".*.tmp"):  # left by a process killed while writing
            stale.unlink()
    else:
        prepare_run_dir(out, overwrite)
        write_text(out / "config.yaml", cfg.to_yaml())
    distributed.barrier()
    trainer = Trainer(model, dataset, graph, cfg.train, cfg.eval, out, device, log=log,
                      on_eval=on_eval)
    if resume and (out / LAST).is_file():
        trainer.load_checkpoint(out / LAST)
        log(f"resumed {out} after epoch {trainer.state.epoch}")
    st = dataset.stats()
    log(f"{cfg.model.name} on {st['name']}: {st['users']} users, {st['items']} items, "
        f"{st['train']}/{st['valid']}/{st['test']} train/valid/test, modalities "
        f"{st['modalities'] or 'none'}, device {device}")
    trainer.fit()
    distributed.barrier()  # best.pt is on disk before anyone reads it
    if not main:
        distributed.barrier()
        return {}
    metrics = trainer.final_metrics(test=test)
    metrics = {"model": cfg.model.name, "dataset": st["name"], **metrics}
    if info.world_size > 1:
        metrics["world_size"] = info.world_size
    write_json(out / "metrics.json", metrics)
    distributed.barrier()
    return metrics


def run_config(run_dir: Path) -> Config:
    """The config a run folder was started with (its config.yaml)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no config.yaml; not a searec run directory")
    return build_config(read_yaml(path), str(path))


def resume(run_dir: str | Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Continue a run from its last checkpoint, with the config it was started with."""
    run_dir = Path(run_dir)
    return train(run_config(run_dir), run_dir, resume=True, log=log)


def load_run(run_dir: str | Path, cfg: Config | None = None
             ) -> tuple[Config, Dataset, Recommender]:
    """Rebuild a finished run's dataset and best model, ready for ``recommend``.

    ``cfg`` is the run's config when the caller has already read it (``run_config``)."""
    run_dir = Path(run_dir)
    cfg = cfg or run_config(run_dir)
    if not (run_dir / BEST).is_file():
        raise RunDirError(f"{run_dir}: no {BEST}; train the run first")
    dataset = load_dataset(cfg.data)
    model = build_model(cfg, dataset)
    state = read_checkpoint(run_dir / BEST)
    model.load_state_dict(state["model"])
    model.prepare_inference(InteractionGraph.from_train(dataset.train))
    return cfg, dataset, model


def format_metrics(metrics: dict[str, Any]) -> str:
    """A metrics table: one row per split, one column per metric@K."""
    names = list(metrics["valid"])
    width = max(len(n) for n in names) + 1
    splits = [s for s in ("valid", "test", "test_warm", "test_cold", "test_cold_catalogue")
              if s in metrics]
    label = max(len(s) for s in splits) + 1
    lines = [f"{'split':<{label}}" + "".join(f"{n:>{width}}" for n in names)]
    for split in splits:
        if metrics[split] is None:
            lines.append(f"{split:<{label}}n/a ({metrics.get(f'{split}_note', '')})")
            continue
        lines.append(f"{split:<{label}}"
                     + "".join(f"{metrics[split][n]:>{width}.4f}" for n in names))
    return "\n".join(lines)
