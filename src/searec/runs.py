"""Run folders: one training run end to end (config -> dataset -> model -> trainer -> folder).

A run folder holds config.yaml (the full resolved config), history.csv, last.pt (for
resume), best.pt (best validation checkpoint) and, when finished, metrics.json.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
import yaml

from searec.config import Config, build_config, deep_merge, parse_overrides, read_yaml
from searec.data.dataset import Dataset
from searec.data.load import load_dataset
from searec.errors import ConfigError, RunDirError
from searec.graphs import CacheDir, InteractionGraph
from searec.io import check_output_dir, read_bounded_text, write_json, write_text
from searec.models import create_model, get_model_class
from searec.models.base import Recommender
from searec.schema import short_repr
from searec.separation import migrate_flat_settings
from searec.training import distributed
from searec.training.checkpoint import (
    BEST,
    LAST,
    LOCK,
    clear_run_dir,
    load_model_state,
    read_checkpoint,
    remove_stale_temporaries,
    run_lock,
)
from searec.training.memory import available_memory, check_fits, footprint, keep_freed_memory
from searec.training.trainer import (
    Callback,
    Trainer,
    resolve_device,
    seed_everything,
    train_state,
)


def check_run_dir(out: str | Path, overwrite: bool = False) -> None:
    """Refuse a run folder that cannot be used, without touching anything."""
    check_output_dir(out, overwrite, "run directory", "pass --overwrite to replace it or "
                     "--resume to continue it", RunDirError, ignore=(LOCK,))


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
    """Empty the run folder, whose lock (:func:`run_lock`) the caller holds; refuse a
    non-empty one unless overwrite."""
    out = Path(out)
    check_run_dir(out, overwrite)  # again, under the lock: nobody else writes it now
    if not os.access(out, os.W_OK):
        raise RunDirError(f"{out}: run directory is not writable")
    try:
        clear_run_dir(out)
    except OSError as exc:
        raise RunDirError(f"{out}: cannot clear the run directory ({exc.strerror})") from None
    return out


def build_model(cfg: Config, dataset: Dataset, cache_dir: CacheDir = None) -> Recommender:
    """The model ``cfg`` names over ``dataset``; kNN graphs cached in ``cache_dir``, else
    in ``cfg.cache_dir`` (False: no disk cache)."""
    return create_model(cfg.model.name, dataset, cfg.model_params,
                        cfg.cache_dir if cache_dir is None else cache_dir)


def _integer_keys(tree: dict[str, Any], prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_integer_keys(value, f"{prefix}{key}."))
        elif isinstance(value, int) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


def check_model_memory(cfg: Config, dataset: Dataset, device: torch.device,
                       training: bool) -> None:
    """Refuse, before anything is allocated, a model whose tensors cannot fit on
    ``device`` (a ConfigError naming the key that sizes them and the estimate)."""
    available = available_memory(device)
    found = footprint(lambda: build_model(cfg, dataset)) if available is not None else None
    if found is None or available is None:
        return
    params = cfg.model.model_dump(mode="json")
    check_fits(found, available, training, _integer_keys(params, "model."),
               f"model {cfg.model.name!r} on {dataset.n_users:,} users and "
               f"{dataset.n_items:,} items")


def train(
    cfg: Config,
    out: str | Path,
    overwrite: bool = False,
    resume: bool = False,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Callback] = (),
    test: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one model; returns (and writes) metrics.json's content.

    ``callbacks`` get the trainer's hooks (epoch end, evaluation); ``test=False`` leaves
    the test split untouched (for model selection)."""
    out = Path(out)
    with ExitStack() as held:
        return _train(cfg, out, held, overwrite, resume, log, callbacks, test)


def _train(cfg: Config, out: Path, held: ExitStack, overwrite: bool, resume: bool,
           log: Callable[[str], None], callbacks: Sequence[Callback],
           test: bool) -> dict[str, Any]:
    """``train``; the run folder's lock, once taken, lives as long as ``held``."""
    info = distributed.world()
    main = info.rank == 0
    if resume:
        if not (out / LAST).is_file() and not (out / BEST).is_file():
            raise RunDirError(f"{out}: nothing to resume (no {LAST} in the run directory)")
        if main:  # before anything is read: a live run is not resumed twice
            held.enter_context(run_lock(out, "searec train --resume"))
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
    check_model_memory(cfg, dataset, device, training=True)
    model = build_model(cfg, dataset)
    graph = InteractionGraph.from_train(dataset.train)
    if not main:
        pass  # rank 0 owns the run folder
    elif resume:
        remove_stale_temporaries(out)  # left by a process killed while writing
    else:
        held.enter_context(run_lock(out, "searec train"))
        prepare_run_dir(out, overwrite)
        write_text(out / "config.yaml", cfg.to_yaml())
    distributed.barrier()
    trainer = Trainer(model, dataset, graph, cfg.train, cfg.eval, out, device, log=log,
                      callbacks=callbacks)
    if resume and (out / LAST).is_file():
        trainer.load_checkpoint(out / LAST)
        log(f"resumed {out} after epoch {trainer.state.epoch}")
    st = dataset.stats()
    log(f"{cfg.model.name} on {st['name']}: {st['users']} users, {st['items']} items, "
        f"{st['train']}/{st['valid']}/{st['test']} train/valid/test, modalities "
        f"{st['modalities'] or 'none'}, device {device}, precision {trainer.precision}"
        f"{' (train.precision=auto)' if cfg.train.precision == 'auto' else ''}")
    trainer.fit()
    distributed.barrier()  # best.pt is on disk before anyone reads it
    if not main:
        distributed.barrier()
        return {}
    metrics = trainer.final_metrics(test=test)
    metrics = {"model": cfg.model.name, "dataset": st["name"], "precision": trainer.precision,
               **metrics}
    if info.world_size > 1:
        metrics["world_size"] = info.world_size
    write_json(out / "metrics.json", metrics)
    distributed.barrier()
    return metrics


def run_config(run_dir: Path) -> Config:
    """The config a run folder was started with (its config.yaml), minus where it kept
    its kNN cache: a run folder may come from anyone, and the paths it names are not
    followed for writing (the cache is this user's: $SEAREC_CACHE or ~/.cache/searec).
    Separation settings an earlier searec wrote flat are read into their estimator's
    section."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise RunDirError(f"{run_dir}: no config.yaml; not a searec run directory")
    tree = read_yaml(path)
    model = tree.get("model")
    if isinstance(model, dict) and isinstance(model.get("separation"), dict):
        # written before estimators owned their settings (searec 0.2): same run, new keys
        model["separation"] = migrate_flat_settings(model["separation"])
    cfg = build_config(tree, str(path))
    cfg.cache_dir = None
    return cfg


def refit_cold_path(run_dir: str | Path, overrides: Sequence[str] = (),
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit a finished run's cold-item path again (searec.models.cold), with its
    ``model.cold_start.*`` settings changed by ``overrides``, without retraining: best.pt
    gets the new mapper, config.yaml the settings, metrics.json the new evaluation
    (returned). The run's trained weights and every other setting stay as they were."""
    run_dir = Path(run_dir)
    for item in overrides:
        key = item.partition("=")[0]
        if not key.startswith("model.cold_start."):
            raise ConfigError(f"override {short_repr(item)}: only model.cold_start.* keys "
                              "can change after training")
    base = run_config(run_dir)
    if not (run_dir / BEST).is_file():
        raise RunDirError(f"{run_dir}: no {BEST}; train the run first")
    if "cold_start" not in get_model_class(base.model.name).Params.model_fields:
        raise ConfigError(f"model {base.model.name!r} reads no item features: it has no "
                          "cold-item path")
    tree = yaml.safe_load(base.to_yaml())
    cfg = build_config(deep_merge(tree, parse_overrides(overrides)), "config.yaml + overrides")
    cfg.cache_dir = None
    with run_lock(run_dir, "searec items cold-path"):
        if (run_dir / "items" / "CURRENT").exists():  # searec.inference.items' table
            raise RunDirError(f"{run_dir}: items were added to this run; their "
                              "representations came from the current cold-item path. "
                              "Refit a copy of the run made before adding them")
        old = json.loads(read_bounded_text(run_dir / "metrics.json", 2**24, "metrics",
                                           RunDirError)) \
            if (run_dir / "metrics.json").is_file() else {}
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        dataset = load_dataset(cfg.data)
        model = build_model(cfg, dataset)
        graph = InteractionGraph.from_train(dataset.train)
        device = resolve_device(cfg.train.device)
        trainer = Trainer(model, dataset, graph, cfg.train, cfg.eval, run_dir, device,
                          log=log)
        if (run_dir / LAST).is_file():
            trainer.state = train_state(read_checkpoint(run_dir / LAST).get("state"),
                                        run_dir / LAST)
        metrics = trainer.final_metrics(test="test" in old or not old, refit_cold_path=True)
        metrics = {"model": cfg.model.name, "dataset": dataset.name, **metrics}
        for key in ("world_size",):
            if key in old:
                metrics[key] = old[key]
        write_text(run_dir / "config.yaml", cfg.to_yaml())
        write_json(run_dir / "metrics.json", metrics)
    return metrics


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
    check_model_memory(cfg, dataset, torch.device("cpu"), training=False)
    model = build_model(cfg, dataset)
    state = read_checkpoint(run_dir / BEST)
    load_model_state(model, state["model"], run_dir / BEST)
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
