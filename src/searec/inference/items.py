"""New catalogue items for a trained run, scored from their features without retraining.

    from searec.inference.items import add_items
    add_items("runs/shop", {"image": new_image_rows}, ids=["B0NEW1", "B0NEW2"])
    # or: searec items add --run runs/shop --features image=new.npy --ids new_ids.txt

The new items' features are scaled as the training items' were. A model with a fitted
cold-item mapper (``model.cold_start.method: mapper``, searec.models.cold) maps each new
item's features to its representation: nothing is rebuilt, and an item's representation
does not depend on the other items added with it. Otherwise the trained model is rebuilt
over the catalogue extended with the new items (the item-item kNN graphs recomputed with
them, ID embeddings of the new items zero: they have no interactions) and its trained
weights loaded; the new items' representations come out of that forward pass. Existing
users' and items' representations are kept exactly as trained, so recommendations among
the old items do not move.

Each addition writes a new version of the item table under ``RUN/items/v<N>/`` (every
added item so far: ids, raw features, and the representations of the whole catalogue);
``RUN/items/CURRENT`` names the version that ``searec recommend`` and ``searec serve``
use. The version is written to a temporary folder and renamed into place, then CURRENT is
replaced atomically: a failed or interrupted addition leaves the run folder as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from searec.config import Config
from searec.data.dataset import Dataset
from searec.data.idmap import IdMap
from searec.data.load import feature_norm_methods, load_dataset, normalize_features
from searec.data.missing import fill_missing
from searec.data.mmrec import read_features
from searec.errors import DataError, SearecError
from searec.graphs import CacheDir, InteractionGraph
from searec.io import read_bounded_text, write_text
from searec.models import get_model_class
from searec.models.base import Recommender
from searec.models.cold import ColdItemMapper
from searec.runs import build_model, load_run, run_config
from searec.training.checkpoint import (
    BEST,
    remove_stale_temporaries,
    run_lock,
)

ITEMS_DIR = "items"
CURRENT = "CURRENT"
IDS_FILE = "ids.txt"
REPS_FILE = "representations.pt"
MANIFEST = "manifest.json"
# most bytes of one item-table version's id list (a received run folder is not trusted)
MAX_IDS_BYTES = 256 * 2**20


class CatalogueError(SearecError):
    """New items that cannot be added as given, or an item table that cannot be read."""


@dataclass(frozen=True)
class ItemTable:
    """The items added to a run after training, as one published version holds them:
    their ids and raw (unscaled) features, in the order they were added."""

    version: int | None = None  # None: nothing added, the trained catalogue only
    ids: list[str] = field(default_factory=list)
    features: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------- reading a version
def current_version(run_dir: str | Path) -> int | None:
    """The item-table version a run serves (None: only its trained catalogue)."""
    path = Path(run_dir) / ITEMS_DIR / CURRENT
    if not path.is_file():
        return None
    value = read_bounded_text(path, 64, "item-table pointer", CatalogueError).strip()
    if not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise CatalogueError(f"{path}: holds {value[:20]!r}, expected a version number (1 or "
                             f"more); restore it, or delete {path.parent} to serve the "
                             "trained catalogue alone")
    version = int(value)
    if not _version_dir(Path(run_dir), version).is_dir():
        raise CatalogueError(f"{path}: names v{version}, which is not in {path.parent}; "
                             f"restore it, or delete {path.parent} to serve the trained "
                             "catalogue alone")
    return version


def _version_dir(run_dir: Path, version: int) -> Path:
    return run_dir / ITEMS_DIR / f"v{version}"


def read_item_table(run_dir: str | Path, dataset: Dataset,
                    version: int | None = None) -> ItemTable:
    """The published item table ``version`` (default: the current one) of a run trained on
    ``dataset``; every file is checked (a run folder may come from anyone) and a bad one
    is a :class:`CatalogueError` naming it."""
    run_dir = Path(run_dir)
    version = current_version(run_dir) if version is None else version
    if version is None:
        return ItemTable()
    folder = _version_dir(run_dir, version)
    ids_path = folder / IDS_FILE
    ids = read_bounded_text(ids_path, MAX_IDS_BYTES, "list of added item ids",
                            CatalogueError).splitlines()
    if not ids or any(not t.strip() or "\t" in t for t in ids):
        raise CatalogueError(f"{ids_path}: expected one item id per line, none empty")
    feats = {}
    for m, trained in dataset.modalities.items():
        path = folder / f"{m}_feat.npy"
        try:
            rows = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            raise CatalogueError(f"{path}: not a readable array of numbers ({exc})") from None
        if rows.shape != (len(ids), trained.shape[1]) or rows.dtype.kind != "f":
            raise CatalogueError(f"{path}: expected {len(ids)} rows x {trained.shape[1]} "
                                 f"floats (one per added id), got {rows.shape} {rows.dtype}")
        rows = np.asarray(rows, dtype=np.float32)
        if not np.isfinite(rows).all():
            raise CatalogueError(f"{path}: holds NaN or inf")
        feats[m] = rows
    return ItemTable(version, ids, feats)


def _read_representations(path: Path, n_users: int, n_items: int
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """A version's (user, item) representations, loaded without running anything in the
    file and checked against the catalogue's size."""
    try:
        reps = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # refused objects, truncation, corruption: never trusted
        raise CatalogueError(f"{path}: not a readable pair of representation tensors "
                             f"({type(exc).__name__}); nothing in it was run") from None
    if not (isinstance(reps, (tuple, list)) and len(reps) == 2
            and all(isinstance(t, torch.Tensor) and t.ndim == 2 and t.is_floating_point()
                    for t in reps)):
        raise CatalogueError(f"{path}: expected (user, item) representation matrices")
    users, items = reps
    if users.shape[0] != n_users or items.shape[0] != n_items \
            or users.shape[1] != items.shape[1]:
        raise CatalogueError(f"{path}: shapes {tuple(users.shape)} and {tuple(items.shape)} "
                             f"do not fit {n_users} users and {n_items} items")
    if not (torch.isfinite(users).all() and torch.isfinite(items).all()):
        raise CatalogueError(f"{path}: holds NaN or inf")
    return users, items


def load_catalogue(run_dir: str | Path) -> tuple[Config, Dataset, Recommender]:
    """A finished run's config, dataset and model over its current catalogue: the trained
    items plus every added one (``load_run`` when nothing was added)."""
    cfg, dataset, model = load_run(run_dir)
    extended = apply_catalogue(run_dir, cfg, dataset, model)
    return cfg, extended, model


def apply_catalogue(run_dir: str | Path, cfg: Config, dataset: Dataset,
                    model: Recommender, table: ItemTable | None = None,
                    scaler: FeatureScaler | None = None) -> Dataset:
    """Point ``model`` (loaded by ``load_run``) at the run's item ``table`` (default: the
    current one); the dataset over that catalogue (``dataset`` itself when nothing was
    added). ``scaler``: the run's, where the caller has built it already."""
    run_dir = Path(run_dir)
    table = read_item_table(run_dir, dataset) if table is None else table
    if table.version is None:
        return dataset
    scaler = scaler or FeatureScaler(cfg, dataset)
    extended = _extended_dataset(dataset, table.ids, scaler(table.features))
    user_rep, item_rep = _read_representations(
        _version_dir(run_dir, table.version) / REPS_FILE, dataset.n_users, extended.n_items)
    model.use_representations(user_rep, item_rep)
    return extended


def score_new_items(cfg: Config, dataset: Dataset,
                    trained: tuple[torch.Tensor, torch.Tensor],
                    state: dict[str, torch.Tensor], table: ItemTable,
                    features: dict[str, Any], scaler: FeatureScaler | None = None,
                    cache_dir: CacheDir = False) -> torch.Tensor:
    """Representations of items described only by ``features`` (one row each, every
    modality the model reads), as ``add_items`` would give them on top of the catalogue
    ``table`` of a run, without adding them. ``dataset``, ``trained`` and ``state`` are
    the run's trained catalogue, representations and model state (``load_run``).

    Nothing is read from or written to disk when ``scaler`` is given (built once per
    run) and ``cache_dir`` is False (the default: kNN graphs in memory)."""
    if not get_model_class(cfg.model.name).scores_new_items:
        raise CatalogueError(f"model {cfg.model.name!r} scores items from interactions "
                             "only; it cannot score items from features")
    n_new = len(next(iter(features.values()))) if features else 0
    new = _read_features(features, dataset, n_new)
    if not n_new:
        raise CatalogueError("no items to score")
    placeholders = [f"\0new{i}" for i in range(n_new)]
    *_, item_rep = _extend(cfg, dataset, state, trained, table, placeholders, new,
                           scaler or FeatureScaler(cfg, dataset), cache_dir)
    return item_rep[-n_new:]


def _extend(cfg: Config, dataset: Dataset, state: dict[str, torch.Tensor],
            trained: tuple[torch.Tensor, torch.Tensor], table: ItemTable,
            new_ids: list[str], new_feats: dict[str, np.ndarray], scaler: FeatureScaler,
            cache_dir: CacheDir = None
            ) -> tuple[list[str], dict[str, np.ndarray], Dataset, torch.Tensor, torch.Tensor]:
    """The catalogue with the items of ``table`` and the new ones: (every added id, their
    raw features, the extended dataset, user and item representations over it)."""
    all_ids = table.ids + new_ids
    raw = {m: np.concatenate([table.features[m], new_feats[m]]) if table.ids
           else new_feats[m] for m in dataset.modalities}
    extended = _extended_dataset(dataset, all_ids, scaler(raw))
    user_rep, item_rep = extended_representations(cfg, state, dataset, trained, extended,
                                                  cache_dir)
    return all_ids, raw, extended, user_rep, item_rep


# ---------------------------------------------------------------- adding
def add_items(run_dir: str | Path, features: dict[str, np.ndarray | str | Path],
              ids: Sequence[str] | str | Path, log: Callable[[str], None] = print
              ) -> dict[str, Any]:
    """Add items (``ids``, one row of each modality's ``features`` per id, in the order of
    ``ids``) to a finished run's catalogue; returns the new version's manifest.

    ``features`` values are arrays or .npy files; ``ids`` a sequence or a file of one id
    per line. Every check runs before anything is written, and the run folder is locked
    meanwhile: a second writer (another addition, training) gets a clear error."""
    run_dir = Path(run_dir)
    cfg = run_config(run_dir)
    if not (run_dir / BEST).is_file():
        raise CatalogueError(f"{run_dir}: no {BEST}; train the run first")
    new_ids = _read_ids(ids)
    if cfg.data.perturb:
        raise CatalogueError(f"{run_dir}: the run perturbs its features (data.perturb); new "
                             "items cannot be scaled and perturbed as its training items were")
    with run_lock(run_dir, "searec items add"):
        _recover(run_dir, log)
        _, dataset, model = load_run(run_dir, cfg)
        cls = type(model)
        if not cls.scores_new_items:
            raise CatalogueError(f"model {cls.name!r} scores items from interactions only; "
                                 "new items need a model that reads item features (sea, "
                                 "vbpr, freedom, lattice, mgcn, lgmrec, dragon)")
        new_feats = _read_features(features, dataset, len(new_ids))
        table = read_item_table(run_dir, dataset)
        _check_ids(new_ids, _catalogue_ids(dataset, table.ids))

        t0 = time.perf_counter()
        all_ids, raw, extended, user_rep, item_rep = _extend(
            cfg, dataset, model.state_dict(), model.representations(), table, new_ids,
            new_feats, FeatureScaler(cfg, dataset))
        if not torch.isfinite(item_rep).all():
            raise CatalogueError("the new items' representations are not finite; check "
                                 "their features' scale")

        next_version = (table.version or 0) + 1
        manifest = {"version": next_version, "model": cls.name,
                    "trained_items": dataset.n_items, "added_items": len(all_ids),
                    "added_now": len(new_ids), "items": extended.n_items,
                    "modalities": {m: int(f.shape[1]) for m, f in raw.items()},
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "seconds": round(time.perf_counter() - t0, 3)}
        _write_version(run_dir, next_version, all_ids, raw, (user_rep, item_rep), manifest)
    log(f"{run_dir}: added {len(new_ids)} items (catalogue {dataset.n_items} trained + "
        f"{len(all_ids)} added = {extended.n_items}); item table v{next_version}")
    return manifest


def _recover(run_dir: Path, log: Callable[[str], None]) -> None:
    """Undo what an interrupted writer left (the caller holds the run's lock, so no live
    writer owns any of it): temporary files and folders, and versions written but never
    published (CURRENT does not name them, so no reader ever used them)."""
    items = run_dir / ITEMS_DIR
    for stale in remove_stale_temporaries(items) + remove_stale_temporaries(run_dir):
        log(f"removed {stale}, left by an interrupted writer")
    if not items.is_dir():
        return
    current = current_version(run_dir) or 0
    for folder in sorted(items.iterdir()):
        name = folder.name
        if folder.is_dir() and name[:1] == "v" and name[1:].isascii() \
                and name[1:].isdigit() and int(name[1:]) > current:
            shutil.rmtree(folder)
            log(f"removed {folder}: an interrupted addition wrote it but never published "
                f"it (CURRENT names {f'v{current}' if current else 'no version'})")


@torch.no_grad()
def extended_representations(cfg: Config, state: dict[str, torch.Tensor], dataset: Dataset,
                             trained: tuple[torch.Tensor, torch.Tensor], extended: Dataset,
                             cache_dir: CacheDir = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(user, item) representations over ``extended``: the ``trained`` ones for every user
    and trained item; for the rest, the model's fitted cold-item mapper
    (searec.models.cold: each item from its own features, nothing rebuilt), or without
    one the forward pass of the model rebuilt over ``extended`` with the trained
    ``state`` (grown to the added items)."""
    trained_users, trained_items = trained
    mapper = ColdItemMapper.from_state(
        state, {m: f.shape[1] for m, f in dataset.modalities.items()})
    if mapper is not None:
        added = {m: torch.from_numpy(np.ascontiguousarray(f[dataset.n_items :]))
                 for m, f in extended.modalities.items()}
        new_rep = mapper.represent(added).to(trained_items)
        return trained_users.clone(), torch.cat([trained_items, new_rep])
    bigger = build_model(cfg, extended, cache_dir)
    bigger.load_state_dict(grow_state(state, bigger.state_dict(), dataset.n_items,
                                      extended.n_items))
    bigger.prepare_inference(InteractionGraph.from_train(extended.train))
    _, item_rep = bigger.representations()
    item_rep = item_rep.clone()
    item_rep[: dataset.n_items] = trained_items
    return trained_users.clone(), item_rep


def grow_state(trained: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
               n_items: int, n_total: int) -> dict[str, torch.Tensor]:
    """The trained state for a model over ``n_total`` items: tensors with one row per item
    get zero rows for the added items (no interactions, so no collaborative signal); every
    other tensor must have kept its shape."""
    out = {}
    for key, value in target.items():
        old = trained[key]
        if old.shape == value.shape:
            out[key] = old
        elif (old.ndim >= 1 and old.shape[0] == n_items and value.shape[0] == n_total
              and old.shape[1:] == value.shape[1:]):
            grown = torch.zeros_like(value)
            grown[:n_items] = old
            out[key] = grown
        else:
            raise CatalogueError(f"cannot extend the model's {key!r} from {tuple(old.shape)} "
                                 f"to {tuple(value.shape)}")
    return out


# ---------------------------------------------------------------- helpers
def _read_ids(ids: Sequence[str] | str | Path) -> list[str]:
    if isinstance(ids, (str, Path)):
        path = Path(ids)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(path, f"cannot read the item ids ({exc})") from None
        out = [line.strip() for line in lines]
        empty = [n for n, t in enumerate(out, start=1) if not t]
        if empty:
            raise DataError(path, "empty id; expected one item id per line", empty[0])
    else:
        out = [str(i) for i in ids]
    if not out:
        raise CatalogueError("no new item ids given")
    return out


def _read_features(features: dict[str, np.ndarray | str | Path], dataset: Dataset,
                   n_new: int) -> dict[str, np.ndarray]:
    known = list(dataset.modalities)
    unknown = sorted(set(features) - set(known))
    if unknown:
        raise CatalogueError(f"modality {unknown[0]!r} is not one the model reads "
                             f"({', '.join(known)})")
    missing = [m for m in known if m not in features]
    if missing:
        raise CatalogueError(f"no features for modality {missing[0]!r}; the model reads "
                             f"{', '.join(known)}: give each (all-zero rows for items "
                             "without one)")
    out = {}
    for m in known:
        value = features[m]
        if isinstance(value, (str, Path)):
            arr = read_features(Path(value), n_new)
            where = str(value)
        else:
            arr = np.asarray(value)
            where = f"features[{m!r}]"
            if arr.ndim != 2 or arr.shape[0] != n_new:
                raise CatalogueError(f"{where}: expected shape ({n_new}, "
                                     f"{dataset.modalities[m].shape[1]}) (one row per new "
                                     f"id), got {arr.shape}")
            arr = arr.astype(np.float32)
            bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
            if len(bad):
                raise CatalogueError(f"{where}: {len(bad)} rows hold NaN or inf (first: row "
                                     f"{bad[0]}); features must be finite")
        width = dataset.modalities[m].shape[1]
        if arr.shape[1] != width:
            raise CatalogueError(f"{where}: {arr.shape[1]} columns, but the run's {m!r} "
                                 f"features have {width}")
        out[m] = arr
    return out


def _catalogue_ids(dataset: Dataset, added: list[str]) -> list[str]:
    trained = ([str(i) for i in dataset.item_map.originals] if dataset.item_map is not None
               else [str(i) for i in range(dataset.n_items)])
    return trained + added


def _check_ids(new_ids: list[str], catalogue: list[str]) -> None:
    seen: set[str] = set()
    for n, token in enumerate(new_ids, start=1):
        if not token.strip() or any(c in token for c in "\n\r\t"):
            raise CatalogueError(f"new item id {token!r} (position {n}) is empty or holds a "
                                 "tab or line break")
        if token in seen:
            raise CatalogueError(f"item id {token!r} appears twice among the new ids "
                                 f"(second time at position {n})")
        seen.add(token)
    known = set(catalogue)
    clash = next((t for t in new_ids if t in known), None)
    if clash is not None:
        raise CatalogueError(f"item id {clash!r} is already in the catalogue")


class FeatureScaler:
    """Added items' raw features filled (``data.missing_fill``) and scaled as the training
    items' were, with the statistics of the trained catalogue, whose unscaled features are
    read once, here."""

    def __init__(self, cfg: Config, dataset: Dataset) -> None:
        self.methods = feature_norm_methods(list(dataset.modalities), cfg.data.feature_norm)
        self.missing_fill = cfg.data.missing_fill
        self.trained: dict[str, np.ndarray] = {}
        if self.missing_fill != "none" or any(method != "none"
                                              for method in self.methods.values()):
            base = load_dataset(cfg.data.model_copy(update={"feature_norm": "none"}))
            self.trained = {m: base.modalities[m] for m in dataset.modalities}

    def __call__(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.trained or not raw:
            return raw
        n_base = len(next(iter(self.trained.values())))
        both = {m: np.concatenate([self.trained[m], rows]) for m, rows in raw.items()}
        # each added row is filled and scaled with the trained rows' statistics alone
        both = fill_missing(both, self.missing_fill, fit_rows=n_base)
        return {m: normalize_features(x, self.methods[m], fit_rows=n_base)[n_base:]
                for m, x in both.items()}


def _extended_dataset(dataset: Dataset, ids: list[str], feats: dict[str, np.ndarray]
                      ) -> Dataset:
    n_new = len(ids)
    if not n_new:
        return dataset
    total = dataset.n_items + n_new

    def widen(mat: sp.csr_matrix) -> sp.csr_matrix:
        return sp.csr_matrix((mat.data, mat.indices, mat.indptr),
                             shape=(dataset.n_users, total))

    trained = _catalogue_ids(dataset, [])
    item_map = IdMap(np.asarray(trained + ids, dtype=object),
                     dataset.item_map.column if dataset.item_map is not None else "itemID")
    return replace(dataset, n_items=total, train=widen(dataset.train),
                   valid=widen(dataset.valid), test=widen(dataset.test),
                   modalities={m: np.concatenate([f, feats[m]])
                               for m, f in dataset.modalities.items()},
                   item_map=item_map)


def _write_version(run_dir: Path, version: int, ids: list[str], raw: dict[str, np.ndarray],
                   reps: tuple[torch.Tensor, torch.Tensor], manifest: dict[str, Any]) -> None:
    """Write version ``version`` to a temporary folder, rename it into place, then publish
    it by replacing CURRENT (the caller holds the run's lock)."""
    items = run_dir / ITEMS_DIR
    items.mkdir(exist_ok=True)
    final = _version_dir(run_dir, version)
    if final.exists():  # _recover removed every unpublished version under this lock
        raise CatalogueError(f"{final} appeared while this addition held the run's lock; "
                             "was it written by hand?")
    tmp = Path(tempfile.mkdtemp(prefix=f".v{version}.", dir=items))
    try:
        (tmp / IDS_FILE).write_text("\n".join(ids) + "\n", encoding="utf-8")
        for m, rows in raw.items():
            np.save(tmp / f"{m}_feat.npy", rows.astype(np.float32))
        torch.save(tuple(t.cpu() for t in reps), tmp / REPS_FILE)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text(items / CURRENT, f"{version}\n")
