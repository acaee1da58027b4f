"""A trained run, loaded once, answering recommendation queries in original ids.

Framework-free: the HTTP layer (``searec.inference.serving.app``) and Python callers share it::

    from searec.inference.serving import RunService
    service = RunService("runs/shop")
    service.recommend(["A0003Z"], k=10)      # [{"user": "A0003Z", "items": [...], ...}]
    service.similar(["B000000001"], k=5)

Every query is validated before any scoring; a bad one raises :class:`RequestError`
carrying the HTTP status it deserves (404 unknown id, 409 new items to score but no
cold-item path, 413 oversized batch or answer, 422 bad value, 503 busy). Every id list of
a request counts against ``max_batch`` together, and an answer holds at most
``max_results`` scored entries (users x k). Answering reads and writes no file: whatever a
query needs is loaded when the service starts (and, with ``watch``, an item table added
later).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from searec.data.dataset import Dataset
from searec.errors import SearecError
from searec.inference.items import (
    CatalogueError,
    FeatureScaler,
    ItemTable,
    apply_catalogue,
    current_version,
    read_item_table,
    score_new_items,
)
from searec.inference.recommend import UnknownIdError, item_indices, user_indices
from searec.io import read_bounded_text
from searec.models.base import Recommender
from searec.models.cold import ColdItemMapper
from searec.runs import load_run
from searec.schema import short_repr

Id = str | int


class RequestError(SearecError):
    """A query that cannot be answered as asked; ``status`` is its HTTP status code,
    ``headers`` any the answer should carry (Retry-After for 503)."""

    def __init__(self, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def __reduce__(self) -> tuple[type[RequestError], tuple[int, str, dict[str, str]]]:
        return type(self), (self.status, str(self), self.headers)  # see DataError.__reduce__


@dataclass(frozen=True)
class Catalogue:
    """What queries read, as one snapshot: a reload (RunService.refresh) builds a new
    one and swaps it in whole, so a query never mixes two item tables."""

    dataset: Dataset
    table: ItemTable
    model: Recommender  # its representations are this catalogue's, on the serving device
    user_rep: torch.Tensor
    item_rep: torch.Tensor
    index: Any  # a faiss HNSW index over item_rep, or None (exact top-k)


class RunService:
    """The best model of a finished run with its item and user representations computed
    once; queries in the dataset's ids (original ids where the run's data maps them)."""

    def __init__(self, run: str | Path, max_batch: int = 1000,
                 device: str | torch.device = "cpu", approximate: bool = False,
                 ef_search: int = 128, max_results: int | None = None) -> None:
        if max_batch < 1:
            raise SearecError(f"max_batch must be at least 1, got {max_batch}")
        # scored entries in one answer (users x k, users x new items): ~30 bytes each
        self.max_results = max_results if max_results is not None else 100 * max_batch
        if self.max_results < 1:
            raise SearecError(f"max_results must be at least 1, got {self.max_results}")
        # new items are scored one request at a time; a second meanwhile gets 503 (retry)
        self._scoring = threading.Lock()
        self.run_dir = Path(run)
        self.config, self.trained_dataset, model = load_run(self.run_dir)
        # the trained catalogue's representations: new items are scored on top of them
        self.trained_reps = tuple(t.clone() for t in model.representations())
        self.trained_state = model.state_dict()  # new items are represented from it
        self._trained_model = model  # never changed: each catalogue gets a copy
        # /items/score maps new items with the fitted cold-item path, never a rebuild
        self.maps_new_items = ColdItemMapper.from_state(
            self.trained_state,
            {m: f.shape[1] for m, f in self.trained_dataset.modalities.items()}) is not None
        # read once: answering a request reads and writes no file
        self.scaler = FeatureScaler(self.config, self.trained_dataset)
        self.device = torch.device(device)
        self.max_batch = max_batch
        self.approximate, self.ef_search = approximate, ef_search
        self._catalogue = self._load_catalogue(
            read_item_table(self.run_dir, self.trained_dataset))
        self._refreshing = threading.Lock()
        self.metrics = _read_metrics(self.run_dir / "metrics.json")

    def _load_catalogue(self, table: ItemTable) -> Catalogue:
        model = copy.copy(self._trained_model)  # shares the weights, not the representations
        model.use_representations(*self.trained_reps)  # type: ignore[arg-type]
        dataset = apply_catalogue(self.run_dir, self.config, self.trained_dataset, model,
                                  table, self.scaler)
        # the model answers queries over its representations on the serving device
        user_rep, item_rep = model.representations()
        model.use_representations(user_rep.to(self.device).float(),
                                  item_rep.to(self.device).float())
        user_rep, item_rep = model.representations()
        index = self._hnsw_index(item_rep, self.ef_search) if self.approximate else None
        return Catalogue(dataset, table, model, user_rep, item_rep, index)

    def refresh(self) -> bool:
        """Serve the run's current item table if ``searec items add`` published another
        since this catalogue was loaded (True: swapped in). Queries in flight finish on
        the catalogue they started with; a damaged new table is an error, and the
        service keeps serving the one it has."""
        with self._refreshing:
            version = current_version(self.run_dir)
            if version == self._catalogue.table.version:
                return False
            table = read_item_table(self.run_dir, self.trained_dataset, version)
            self._catalogue = self._load_catalogue(table)
            return True

    def watch(self, interval: float, log: Callable[[str], None] = print) -> threading.Thread:
        """Call :meth:`refresh` every ``interval`` seconds in a daemon thread (the only
        file reads while serving: the run's item-table pointer, and a new table once)."""
        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    if self.refresh():
                        log(f"serving item table v{self.item_table} "
                            f"({self.dataset.n_items} items)")
                except SearecError as exc:
                    log(f"warning: kept serving item table v{self.item_table}: {exc}")

        thread = threading.Thread(target=loop, name="searec-item-table", daemon=True)
        thread.start()
        return thread

    # what the current catalogue holds (a query reads ``self._catalogue`` once instead)
    @property
    def dataset(self) -> Dataset:
        return self._catalogue.dataset

    @property
    def model(self) -> Recommender:
        return self._catalogue.model

    @property
    def table(self) -> ItemTable:
        return self._catalogue.table

    @property
    def item_table(self) -> int | None:
        return self._catalogue.table.version

    @property
    def user_rep(self) -> torch.Tensor:
        return self._catalogue.user_rep

    @property
    def item_rep(self) -> torch.Tensor:
        return self._catalogue.item_rep

    @property
    def index(self) -> Any:
        return self._catalogue.index

    def _hnsw_index(self, item_rep: torch.Tensor, ef_search: int) -> Any:
        """A faiss HNSW inner-product index over the item representations: top-k per user
        in time ~ log(items) instead of a full pass over the catalogue, approximately."""
        try:
            import faiss
        except ImportError as exc:
            raise SearecError("approximate top-k needs faiss: pip install 'searec[ann]'"
                              ) from exc
        items = np.ascontiguousarray(item_rep.cpu().numpy(), dtype=np.float32)
        index = faiss.IndexHNSWFlat(items.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(items)
        index.hnsw.efSearch = ef_search
        return index

    # ------------------------------------------------------------------ ids
    @property
    def original_ids(self) -> bool:
        return self.dataset.user_map is not None and self.dataset.item_map is not None

    def user_ids(self, index: np.ndarray, dataset: Dataset | None = None) -> list[Id]:
        """The ids queries name these users by (original ids where the data maps them);
        ``dataset``: the catalogue's a query started with (default: the current one)."""
        dataset = dataset or self.dataset
        if dataset.user_map is None:
            return [int(i) for i in index]
        return [str(u) for u in dataset.user_map.to_original(index)]

    def item_ids(self, index: np.ndarray, dataset: Dataset | None = None) -> list[Id]:
        """The ids queries name these items by (original ids where the data maps them)."""
        dataset = dataset or self.dataset
        if dataset.item_map is None:
            return [int(i) for i in index]
        return [str(i) for i in dataset.item_map.to_original(index)]

    def _user_index(self, users: Sequence[Id], dataset: Dataset) -> np.ndarray:
        try:
            return user_indices(users, dataset)
        except UnknownIdError as exc:
            raise RequestError(404, f"unknown user {short_repr(exc.token)}: {exc.why}"
                               ) from None

    def _item_index(self, items: Sequence[Id], dataset: Dataset, what: str = "item"
                    ) -> np.ndarray:
        try:
            return item_indices(items, dataset)
        except UnknownIdError as exc:
            raise RequestError(404, f"unknown {what} {short_repr(exc.token)}: {exc.why}"
                               ) from None

    def _check_batch(self, ids: Sequence[Id], what: str, *others: tuple[int, str]) -> None:
        """Refuse an empty ``ids`` list (422), and a request whose id lists (``ids`` and
        ``others``: (count, what)) hold more than ``max_batch`` ids together (413)."""
        if not ids:
            raise RequestError(422, f"'{what}' is empty; give at least one id")
        self.check_counts([(len(ids), what), *others])

    def check_counts(self, parts: Sequence[tuple[int, str]]) -> None:
        """Refuse (413) a request whose lists ((count, what) each) hold more than
        ``max_batch`` entries together; the HTTP layer calls it before it validates
        every entry."""
        parts = [(n, w) for n, w in parts if n]
        total = sum(n for n, _ in parts)
        if total > self.max_batch:
            listed = " + ".join(f"{n} {w}" for n, w in parts)
            raise RequestError(413, f"{listed} in one request; at most {self.max_batch} ids "
                               "in all (searec serve --max-batch)")

    def _check_results(self, rows: int, per_row: int, what: str) -> None:
        if rows * per_row > self.max_results:
            raise RequestError(413, f"the answer would hold {rows} x {per_row} = "
                               f"{rows * per_row:,} {what}; at most {self.max_results:,} per "
                               "request: ask for fewer at a time")

    def _check_k(self, k: int, most: int, what: str) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most:
            raise RequestError(422, f"k must be an integer in 1..{most} ({what}), got {k!r}")

    def example_ids(self) -> tuple[Id, Id]:
        """A user and an item of this catalogue, as queries name them (API examples)."""
        first = np.zeros(1, dtype=np.int64)
        return self.user_ids(first)[0], self.item_ids(first)[0]

    # ------------------------------------------------------------------ queries
    # Each query reads the current catalogue once (``cat``) and answers from it alone.
    def info(self) -> dict[str, Any]:
        """What is being served: model, data, sizes, id kind, the run's test metrics."""
        cat = self._catalogue
        return {
            "run": self.run_dir.resolve().name,  # its name only: no path of this machine
            "model": self.config.model.name,
            "dataset": cat.dataset.name,
            "users": cat.dataset.n_users,
            "items": cat.dataset.n_items,
            "modalities": {n: int(f.shape[1]) for n, f in cat.dataset.modalities.items()},
            "ids": "original" if self.original_ids else "index",
            "item_table": cat.table.version,
            "top_k": "approximate (faiss HNSW)" if cat.index is not None else "exact",
            "scores_new_items": self.maps_new_items,  # POST /items/score answers
            "max_batch": self.max_batch,
            "max_results": self.max_results,
            "best_epoch": self.metrics.get("best_epoch"),
            "test": self.metrics.get("test", {}),
        }

    @torch.no_grad()
    def recommend(self, users: Sequence[Id], k: int = 20, exclude: Sequence[Id] = (),
                  include_seen: bool = False) -> list[dict[str, Any]]:
        """Top-k items per user, best first; the user's training items (unless
        ``include_seen``) and the ``exclude`` items are never returned, so a user with
        fewer candidates left gets fewer than k."""
        cat = self._catalogue
        self._check_batch(users, "users", (len(exclude), "excluded items"))
        self._check_k(k, cat.dataset.n_items, "the catalogue's size")
        self._check_results(len(users), k, "recommendations")
        index = self._user_index(users, cat.dataset)
        excluded = (self._item_index(list(exclude), cat.dataset, "excluded item")
                    if len(exclude) else None)
        if cat.index is not None:
            return self._recommend_approximate(cat, index, k, excluded, include_seen)
        items, values = cat.model.recommend(
            index, k, user_items=None if include_seen else cat.dataset.train,
            exclude_items=excluded)
        return self._rows(cat, "user", self.user_ids(index, cat.dataset), items, values)

    def _recommend_approximate(self, cat: Catalogue, index: np.ndarray, k: int,
                               excluded: np.ndarray | None, include_seen: bool
                               ) -> list[dict[str, Any]]:
        """Top-k from the HNSW index: enough candidates to survive removing the user's
        training items and the exclusion list, then those removed."""
        train = cat.dataset.train
        seen = np.diff(train.indptr)[index] if not include_seen else np.zeros(len(index))
        n_excluded = 0 if excluded is None else len(excluded)
        wanted = min(cat.dataset.n_items, k + int(seen.max()) + n_excluded)
        queries = np.ascontiguousarray(cat.user_rep[torch.from_numpy(index)].cpu().numpy())
        scores, found = cat.index.search(queries, wanted)
        banned_all = set() if excluded is None else set(excluded.tolist())
        out = []
        for row, user in enumerate(index):
            banned = banned_all if include_seen else \
                banned_all | set(train.indices[train.indptr[user]:train.indptr[user + 1]])
            keep = [j for j, item in enumerate(found[row]) if item >= 0 and item not in banned]
            keep = keep[:k]
            out.append({"user": self.user_ids(np.asarray([user]), cat.dataset)[0],
                        "items": self.item_ids(found[row][keep], cat.dataset),
                        "scores": [float(v) for v in scores[row][keep]]})
        return out

    @torch.no_grad()
    def similar(self, items: Sequence[Id], k: int = 10) -> list[dict[str, Any]]:
        """The k items whose representations are most cosine-similar to each item's (the
        item itself excluded)."""
        cat = self._catalogue
        self._check_batch(items, "items")
        self._check_k(k, cat.dataset.n_items - 1, "the catalogue's size minus the item")
        self._check_results(len(items), k, "similar items")
        index = self._item_index(items, cat.dataset)
        found, values = cat.model.similar_items(index, k)
        return self._rows(cat, "item", self.item_ids(index, cat.dataset), found, values)

    @torch.no_grad()
    def score_items(self, features: dict[str, Any], users: Sequence[Id]
                    ) -> list[dict[str, Any]]:
        """Scores, for each user, of items described only by their ``features`` (modality
        -> one row per item), computed as ``searec items add`` would represent them, without
        adding them to the catalogue."""
        cat = self._catalogue
        rows = {m: len(v) if isinstance(v, Sequence) else 0 for m, v in features.items()}
        n_new = max(rows.values(), default=0)
        self._check_batch(users, "users", (n_new, "new items"))
        if len(set(rows.values())) > 1:
            raise RequestError(422, "every modality needs the same number of rows (one per "
                               f"item); got {sorted(set(rows.values()))}")
        self._check_results(len(users), n_new, "scores")
        index = self._user_index(users, cat.dataset)
        arrays = {}
        for m, value in features.items():
            try:
                arrays[m] = np.asarray(value, dtype=np.float32)
            except (ValueError, TypeError):
                arrays[m] = np.empty(0)
            if arrays[m].ndim != 2:
                raise RequestError(422, f"features[{short_repr(m)}]: expected a list of "
                                   "equally long lists of numbers (one per item)")
        if not self.maps_new_items:
            raise RequestError(409, f"model {self.config.model.name!r} of this run has no "
                               "fitted cold-item path, and scoring items by rebuilding the "
                               "model for each request is not served; fit one without "
                               "retraining (searec items cold-path --run RUN "
                               "model.cold_start.method=mapper) and restart the server")
        if not self._scoring.acquire(blocking=False):
            raise RequestError(503, "busy scoring new items for another request; retry "
                               "shortly", headers={"Retry-After": "1"})
        try:
            item_rep = score_new_items(self.config, self.trained_dataset,
                                       self.trained_reps,  # type: ignore[arg-type]
                                       self.trained_state, cat.table, arrays, self.scaler)
        except CatalogueError as exc:
            raise RequestError(422, str(exc)) from None
        finally:
            self._scoring.release()
        scores = (cat.user_rep[torch.from_numpy(index).to(self.device)]
                  @ item_rep.to(self.device).float().T).cpu().numpy()
        return [{"user": who, "scores": [float(v) for v in row]}
                for who, row in zip(self.user_ids(index, cat.dataset), scores, strict=True)]

    def _rows(self, cat: Catalogue, key: str, ids: list[Id], items: np.ndarray,
              values: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for who, row_items, row_values in zip(ids, items, values, strict=True):
            keep = np.isfinite(row_values)  # masked candidates (-inf) are not results
            rows.append({key: who, "items": self.item_ids(row_items[keep], cat.dataset),
                         "scores": [float(v) for v in row_values[keep]]})
        return rows


def _read_metrics(path: Path) -> dict[str, Any]:
    """A run's metrics.json for /info (bounded; a damaged one is reported as absent)."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(read_bounded_text(path, 1 << 20, "metrics file"))
    except (SearecError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
