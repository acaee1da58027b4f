"""Graphs the models build from the data: mixed and cosine-weighted item kNN graphs, the
normalised per-modality similarity graphs, user co-occurrence graphs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch

from searec.errors import ConfigError
from searec.graphs.knn import CacheDir, cached_knn_graph, unit_rows
from searec.graphs.operators import binarized, sym_normalize


def mixed_knn_graph(
    modalities: Mapping[str, np.ndarray], k: int, weights: Mapping[str, float] | None,
    cache_dir: CacheDir, method: str = "exact",
) -> sp.csr_matrix:
    """sum_m w_m * D^-1/2 kNN_m D^-1/2 over the modalities (weights normalised to sum 1)."""
    names = list(modalities)
    if weights is None:
        weights = {m: 1.0 for m in names}
    unknown = sorted(set(weights) - set(names))
    missing = sorted(set(names) - set(weights))
    if unknown or missing:
        raise ConfigError(f"config key 'model.knn_weights': needs one weight per modality "
                          f"{names}; unknown {unknown}, missing {missing}")
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ConfigError("config key 'model.knn_weights': weights must be >= 0 with a "
                          "positive sum")
    n_items = next(iter(modalities.values())).shape[0]
    k = min(k, n_items)
    mix = sp.csr_matrix((n_items, n_items), dtype=np.float32)
    for m in names:
        graph = cached_knn_graph(modalities[m], k, cache_dir, method=method)
        mix = mix + (weights[m] / total) * sym_normalize(graph)
    return mix.tocsr()


def cosine_weighted(graph: sp.csr_matrix, features: np.ndarray) -> sp.csr_matrix:
    """The kNN ``graph``'s edges weighted by the cosine similarity of their items'
    features (MGCN's item graphs), computed for the edges only: O(nnz x d)."""
    graph = sp.csr_matrix(graph, dtype=np.float32)
    unit, _ = unit_rows(features)
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    values = np.empty(graph.nnz, dtype=np.float32)
    for start in range(0, graph.nnz, 1 << 20):  # bounded memory: a million edges at a time
        r = torch.from_numpy(rows[start : start + (1 << 20)])
        c = torch.from_numpy(graph.indices[start : start + (1 << 20)].astype(np.int64))
        values[start : start + len(r)] = (unit[r] * unit[c]).sum(dim=1).numpy()
    return sp.csr_matrix((values, graph.indices.copy(), graph.indptr.copy()),
                         shape=graph.shape)


def normalized_similarity_graphs(
    modalities: Mapping[str, np.ndarray], k: int, cache_dir: CacheDir,
    method: str = "exact",
) -> dict[str, sp.csr_matrix]:
    """Per modality, D^-1/2 W D^-1/2 of its kNN graph with cosine-similarity edge weights
    (D the row sums): the item graphs of MGCN and LATTICE, kept per modality."""
    n_items = next(iter(modalities.values())).shape[0]
    k = min(k, n_items)
    return {m: sym_normalize(cosine_weighted(cached_knn_graph(f, k, cache_dir, method=method),
                                             f))
            for m, f in modalities.items()}


# ------------------------------------------------------------------------ hypergraphs


def user_cooccurrence_topk(train: sp.csr_matrix, k: int, block: int = 1024
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's ``k`` users with the most training items in common (DRAGON's user
    graph), computed sparsely block by block of users, never as a users x users matrix.

    Returns COO arrays (rows, neighbours, counts): per user at most k entries, ordered by
    count (descending), ties by neighbour id; a user is never their own neighbour."""
    r = binarized(train)
    rt = r.T.tocsr()
    rows, cols, vals = [], [], []
    for start in range(0, r.shape[0], block):
        c = (r[start : start + block] @ rt).tocoo()
        keep = c.col != c.row + start
        row, col, val = c.row[keep] + start, c.col[keep], c.data[keep]
        order = np.lexsort((col, -val, row))
        row, col, val = row[order], col[order], val[order]
        first = np.searchsorted(row, row, side="left")  # rows are sorted: their first entry
        top = np.arange(len(row)) - first < k
        rows.append(row[top])
        cols.append(col[top])
        vals.append(val[top])
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(vals).astype(np.float32))


def softmax_user_graph(n_users: int, rows: np.ndarray, neighbours: np.ndarray,
                       counts: np.ndarray, k: int, rng: np.random.Generator) -> sp.csr_matrix:
    """DRAGON's user-user aggregation weights as a sparse users x users matrix: each
    user's neighbour list is padded to ``k`` by repeating randomly chosen neighbours of
    its own (as DRAGON does), and the weights are the softmax of the padded list's
    co-occurrence counts (repeats add up). Users without neighbours get an empty row."""
    n_per = np.bincount(rows, minlength=n_users)
    short = np.flatnonzero((n_per > 0) & (n_per < k))
    starts = np.concatenate([[0], np.cumsum(n_per)[:-1]])
    extra_rows, extra = [], []
    for user in short:  # only users with fewer than k co-occurring users
        picks = rng.integers(0, n_per[user], size=k - n_per[user])
        extra_rows.append(np.full(len(picks), user))
        extra.append(starts[user] + picks)
    index = np.concatenate([np.arange(len(rows)), *extra]).astype(np.int64)
    all_rows = np.concatenate([rows, *extra_rows]).astype(np.int64)
    logits = counts[index].astype(np.float64)
    row_max = np.full(n_users, -np.inf)
    np.maximum.at(row_max, all_rows, logits)
    weights = np.exp(logits - row_max[all_rows])
    sums = np.bincount(all_rows, weights=weights, minlength=n_users)
    weights = (weights / sums[all_rows]).astype(np.float32)
    out = sp.csr_matrix((weights, (all_rows, neighbours[index])), shape=(n_users, n_users))
    out.sum_duplicates()
    return out
