"""Item-item kNN graphs from features: exact (blockwise cosine top-k) or approximate
(faiss HNSW), cached on disk under a key made from the *content* of their inputs (feature
bytes and parameters), never from file names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from searec.errors import ConfigError
from searec.io import atomic_path
from searec.topk import topk_stable


def unit_rows(features: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """(rows scaled to unit length, so cosine = inner product; which rows have features).

    An all-zero row (an item without this modality, e.g. a missing image) has no direction:
    it stays zero and is left out of the kNN graph (no neighbours, nobody's neighbour)."""
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    norms = feats.norm(dim=1)
    present = norms > 0
    return feats / torch.where(present, norms, 1.0)[:, None], present.numpy()


def _check_k(n: int, k: int, include_self: bool) -> None:
    if not 0 < k < n + int(include_self):
        raise ValueError(f"knn k must be in 1..{n - 1 + int(include_self)}, got {k}")


def _binary_graph(rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
    graph = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    graph.sort_indices()
    return graph


def knn_graph(
    features: np.ndarray,
    k: int,
    block_size: int = 2048,
    include_self: bool = True,
) -> sp.csr_matrix:
    """Binary item-item kNN graph by cosine similarity, computed blockwise (sparse, n x k).

    Row i holds the k most similar items of item i (item i itself included when
    ``include_self``, as MMRec's FREEDOM/DRAGON do). Ties go to the lower item id. Exact:
    time grows with n^2 (memory with n x block_size); see :func:`hnsw_knn_graph`.
    """
    n = features.shape[0]
    _check_k(n, k, include_self)
    feats, present = unit_rows(features)
    absent = torch.from_numpy(~present)
    cols = np.empty((n, k), dtype=np.int64)
    found = np.empty((n, k), dtype=bool)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        sim = feats[start:stop] @ feats.T
        if not include_self:
            sim[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf
        sim[:, absent] = -torch.inf  # an item without features is nobody's neighbour
        vals, idx = topk_stable(sim, k)
        cols[start:stop] = idx.numpy()
        found[start:stop] = torch.isfinite(vals).numpy()
    found &= present[:, None]  # ... and has none itself
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    return _binary_graph(rows[found], cols[found], n)


def hnsw_knn_graph(
    features: np.ndarray,
    k: int,
    include_self: bool = True,
    m: int = 16,
    ef_construction: int = 40,
    ef_search: int = 64,
) -> sp.csr_matrix:
    """Approximate cosine kNN graph from a faiss HNSW index (time ~ n log n, not n^2).

    Same layout as :func:`knn_graph`, except that item i is always one of its own
    neighbours when ``include_self`` (exact kNN can drop it for exact duplicates). Some
    true neighbours are missed (recall is reported by benchmarks/knn.py), and the graph
    is not guaranteed to be the same across thread counts. Needs ``pip install
    'searec[ann]'`` (faiss-cpu).
    """
    try:
        import faiss
    except ImportError as exc:
        raise ConfigError("config key 'model.knn_method': hnsw needs faiss; install it with "
                          "pip install 'searec[ann]' (or faiss-cpu / faiss-gpu)") from exc
    n = features.shape[0]
    _check_k(n, k, include_self)
    unit, present = unit_rows(features)
    items = np.flatnonzero(present)  # items without features stay out of the index
    feats = np.ascontiguousarray(unit.numpy()[items])
    n_in = len(items)
    faiss.omp_set_num_threads(torch.get_num_threads())  # honour train.threads
    index = faiss.IndexHNSWFlat(feats.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(feats)
    index.hnsw.efSearch = max(ef_search, k + 1)
    wanted = k - 1 if include_self else k  # neighbours other than the item itself
    _, ids = index.search(feats, max(1, min(wanted + 1, n_in)))
    # faiss returns neighbours best first, -1 where it found too few; drop self and -1.
    found = (ids >= 0) & (ids != np.arange(n_in)[:, None])
    keep = found & (np.cumsum(found, axis=1) <= wanted)
    rows = np.nonzero(keep)[0]
    cols = ids[keep]
    if include_self:
        rows = np.concatenate([rows, np.arange(n_in)])
        cols = np.concatenate([cols, np.arange(n_in)])
    return _binary_graph(items[rows], items[cols.astype(np.int64)], n)


# Where kNN graphs are cached: a folder; None, the default ($SEAREC_CACHE, else
# ~/.cache/searec); or False, no disk cache at all (neither read nor written: a server
# answering a request writes no file).
CacheDir = str | Path | None | Literal[False]


def cache_dir(explicit: str | Path | None = None) -> Path:
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("SEAREC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "searec"


def content_key(*parts: np.ndarray | str | int | float) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            arr = np.ascontiguousarray(p)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(memoryview(arr).cast("B"))
        else:
            h.update(repr(p).encode())
        h.update(b"|")
    return h.hexdigest()[:32]


# kNN builders by model.knn_method, with the cache tag of their graphs (the exact graph
# keeps its original tag, so existing caches stay valid).
KNN_METHODS = {"exact": (knn_graph, "knn-cosine-v1"),
               "hnsw": (hnsw_knn_graph, "knn-cosine-hnsw-v1")}


def _knn_method(method: str) -> tuple[Any, str]:
    if method not in KNN_METHODS:
        raise ConfigError(f"config key 'model.knn_method': expected one of "
                          f"{tuple(KNN_METHODS)}, got {method!r}")
    return KNN_METHODS[method]


def knn_cache_path(features: np.ndarray, k: int, cache: str | Path | None = None,
                   include_self: bool = True, method: str = "exact") -> Path:
    """Where :func:`cached_knn_graph` keeps this graph (named by its inputs' content)."""
    key = content_key(features, _knn_method(method)[1], k, int(include_self))
    return cache_dir(cache) / f"knn-{key}.npz"


def cached_knn_graph(
    features: np.ndarray,
    k: int,
    cache: CacheDir = None,
    include_self: bool = True,
    method: str = "exact",
) -> sp.csr_matrix:
    """:func:`knn_graph` (or :func:`hnsw_knn_graph` for ``method="hnsw"``), loaded from /
    saved to the content-addressed cache."""
    if cache is False:
        return _knn_method(method)[0](features, k, include_self=include_self)
    path = knn_cache_path(features, k, cache, include_self, method)
    if path.is_file():
        try:
            return sp.load_npz(path).tocsr()
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt, never trusted
    graph = KNN_METHODS[method][0](features, k, include_self=include_self)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            sp.save_npz(fh, graph)
    except OSError:
        pass  # an unwritable cache only costs time
    return graph


def knn_indices(unit: torch.Tensor, k: int, block_size: int = 2048) -> torch.Tensor:
    """(n, k) indices of each row's k largest inner products with the rows of ``unit``
    (itself included), blockwise: n x block_size scores at a time, never n x n; no
    gradient (the caller scores the chosen pairs itself, with gradient)."""
    n = unit.shape[0]
    out = torch.empty((n, min(k, n)), dtype=torch.long, device=unit.device)
    with torch.no_grad():
        for start in range(0, n, block_size):
            _, idx = topk_stable(unit[start : start + block_size] @ unit.T, k)
            out[start : start + block_size] = idx
    return out


