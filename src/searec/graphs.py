"""Graphs shared by every model: normalised user-item adjacency and item-item kNN graphs.

Nothing here builds a dense items x items (or users x users) matrix: kNN graphs are
computed block by block and kept sparse. kNN graphs are cached on disk under a key made
from the *content* of their inputs (feature bytes and parameters), never from file names.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from searec.errors import ConfigError
from searec.io import atomic_path
from searec.topk import topk_stable


def sym_normalize(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with D the row sums; rows/columns of zero degree stay zero."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, deg ** -0.5, 0.0).astype(np.float32)
    d = sp.diags(inv_sqrt)
    out = (d @ adj @ d).tocsr()
    out.sort_indices()
    return out


def binarized(train: sp.spmatrix) -> sp.csr_matrix:
    """A float32 copy of ``train`` with every stored entry 1 (an interaction is an edge)."""
    out = sp.csr_matrix(train, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """Symmetric (U+I) x (U+I) adjacency [[0, R], [R^T, 0]] of the training interactions."""
    r = sp.csr_matrix(train, dtype=np.float32)
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)


def to_torch_sparse(mat: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy sparse -> torch sparse CSR float32 tensor.

    Indices are int32 when they fit: the product reads them once per non-zero, and the
    narrower type makes it about 20% faster on CPU (200k x 200k kNN graph, 5.5M non-zeros).
    """
    csr = sp.csr_matrix(mat, dtype=np.float32)
    csr.sum_duplicates()
    csr.sort_indices()
    index = np.int32 if max(csr.nnz, *csr.shape) < np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():  # "CSR support is in beta": we use only products
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(index)),
            torch.from_numpy(csr.indices.astype(index)),
            torch.from_numpy(csr.data),
            csr.shape, device=device, check_invariants=False,  # scipy built it valid
        )


def _sparse_dense_product(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """matrix @ x into a fresh uninitialised output.

    ``matrix @ x`` zero-fills a tensor and copies it into the output before the product:
    two extra passes over the result (beta=0 ignores the output's contents)."""
    out = x.new_empty(matrix.shape[0], x.shape[1])
    return torch.addmm(out, matrix, x, beta=0, out=out)


class _FixedSparseProduct(torch.autograd.Function):
    """y = A @ x for a constant sparse A, with dx = A^T @ dy from a stored A^T.

    torch's own backward for a sparse product re-derives the transpose on every call,
    which costs more than the product itself; propagation graphs never change, so their
    transpose is built once (and is A itself for the symmetric user-item graph).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor,  # type: ignore[override]
                transpose: torch.Tensor) -> torch.Tensor:
        ctx.transpose = transpose
        return _sparse_dense_product(matrix, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _sparse_dense_product(ctx.transpose, grad), None, None


@dataclass(frozen=True, eq=False)  # tensors: identity, not elementwise ==
class SparseOperator:
    """A fixed sparse matrix (CSR) used as a linear operator, with its transpose for autograd."""

    matrix: torch.Tensor
    transpose: torch.Tensor

    @classmethod
    def from_scipy(cls, mat: sp.spmatrix, device: torch.device | str = "cpu",
                   symmetric: bool | None = None) -> SparseOperator:
        """``symmetric=None`` checks; pass True only for matrices symmetric by construction."""
        csr = sp.csr_matrix(mat, dtype=np.float32)
        forward = to_torch_sparse(csr, device)
        if symmetric is None:
            symmetric = csr.shape[0] == csr.shape[1] and (abs(csr - csr.T) > 0).nnz == 0
        return cls(forward, forward if symmetric else to_torch_sparse(csr.T, device))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)  # type: ignore[return-value]

    @property
    def nnz(self) -> int:
        return int(self.matrix.values().numel())

    @property
    def symmetric(self) -> bool:
        return self.transpose is self.matrix

    def to(self, device: torch.device | str) -> SparseOperator:
        forward = self.matrix.to(device)
        return SparseOperator(forward, forward if self.symmetric else self.transpose.to(device))

    def to_dense(self) -> torch.Tensor:
        return self.matrix.to_dense()

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return _FixedSparseProduct.apply(x, self.matrix, self.transpose)


def register_operator(module: nn.Module, name: str, graph: sp.spmatrix) -> None:
    """Keep a fixed sparse graph on ``module`` as buffers ``<name>_matrix`` and
    ``<name>_transpose``: moved by ``.to``, not saved in the state dict (it is rebuilt).

    The transpose (for the backward pass) is a buffer only when it differs, so a symmetric
    graph is stored, and moved between devices, once."""
    op = SparseOperator.from_scipy(graph)
    module.register_buffer(f"{name}_matrix", op.matrix, persistent=False)
    module.register_buffer(f"{name}_transpose", None if op.symmetric else op.transpose,
                           persistent=False)


def registered_operator(module: nn.Module, name: str) -> SparseOperator:
    """The operator :func:`register_operator` kept on ``module`` under ``name``."""
    matrix = getattr(module, f"{name}_matrix")
    transpose = getattr(module, f"{name}_transpose")
    return SparseOperator(matrix, matrix if transpose is None else transpose)


@dataclass
class InteractionGraph:
    """The training graph handed to models' ``forward``: the normalised bipartite
    adjacency, and the user x item interaction matrix R itself (binary)."""

    n_users: int
    n_items: int
    norm_adj: SparseOperator  # (U+I) x (U+I), D^-1/2 A D^-1/2 (symmetric)
    interactions: SparseOperator  # U x I, R (its transpose for the backward pass)
    user_degree: torch.Tensor  # (U,) training interactions per user, float

    @classmethod
    def from_train(
        cls, train: sp.csr_matrix, device: torch.device | str = "cpu"
    ) -> InteractionGraph:
        n_users, n_items = train.shape
        norm = sym_normalize(bipartite_adjacency(train))
        binary = binarized(train)
        degree = torch.from_numpy(np.diff(binary.indptr).astype(np.float32)).to(device)
        return cls(n_users, n_items, SparseOperator.from_scipy(norm, device, symmetric=True),
                   SparseOperator.from_scipy(binary, device, symmetric=False), degree)

    def to(self, device: torch.device | str) -> InteractionGraph:
        return InteractionGraph(self.n_users, self.n_items, self.norm_adj.to(device),
                                self.interactions.to(device), self.user_degree.to(device))

    def user_mean(self, item_values: torch.Tensor) -> torch.Tensor:
        """Per user, the mean of ``item_values`` (n_items, d) over the items they
        interacted with in training (0 for a user without any)."""
        return (self.interactions @ item_values) / self.user_degree.clamp_min(1.0)[:, None]

    def user_sum(self, item_values: torch.Tensor) -> torch.Tensor:
        """Per user, the sum of ``item_values`` over their training items (R @ x)."""
        return self.interactions @ item_values


def propagate(adj: SparseOperator, x: torch.Tensor, n_layers: int) -> list[torch.Tensor]:
    """[x, Ax, A^2x, ...] for n_layers weightless propagation steps (LightGCN-style)."""
    out = [x]
    for _ in range(n_layers):
        out.append(adj @ out[-1])
    return out


def _horner_sum(matrix: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """x + Mx + ... + M^n x as x + M(x + M(x + ...)): three live tensors at most."""
    out = x
    for _ in range(n_layers):
        out = _sparse_dense_product(matrix, out).add_(x)
    return out


class _PropagatedSum(torch.autograd.Function):
    """y = (I + A + ... + A^n) x for a constant A; dx = (I + A^T + ... + (A^T)^n) dy.

    Linear in x, so nothing is saved for backward, and neither pass keeps the
    intermediate layers: at millions of users each is a nodes x width tensor."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor,  # type: ignore[override]
                transpose: torch.Tensor, n_layers: int) -> torch.Tensor:
        ctx.transpose, ctx.n_layers = transpose, n_layers
        return _horner_sum(matrix, x, n_layers)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return _horner_sum(ctx.transpose, grad, ctx.n_layers), None, None, None


def propagated_sum(adj: SparseOperator, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """x + Ax + A^2x + ... + A^n_layers x, without keeping any layer's output."""
    if n_layers == 0:
        return x
    return _PropagatedSum.apply(x, adj.matrix, adj.transpose, n_layers)


def propagated_mean(adj: SparseOperator, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """The mean of x, Ax, ..., A^n_layers x (LightGCN's layer combination)."""
    return propagated_sum(adj, x, n_layers) / (n_layers + 1)


# ------------------------------------------------------------------------------ kNN


def _unit_rows(features: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
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
    feats, present = _unit_rows(features)
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
    unit, present = _unit_rows(features)
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
    unit, _ = _unit_rows(features)
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    values = np.empty(graph.nnz, dtype=np.float32)
    for start in range(0, graph.nnz, 1 << 20):  # bounded memory: a million edges at a time
        r = torch.from_numpy(rows[start : start + (1 << 20)])
        c = torch.from_numpy(graph.indices[start : start + (1 << 20)].astype(np.int64))
        values[start : start + len(r)] = (unit[r] * unit[c]).sum(dim=1).numpy()
    return sp.csr_matrix((values, graph.indices.copy(), graph.indptr.copy()),
                         shape=graph.shape)


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


def edge_propagate(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                   x: torch.Tensor) -> torch.Tensor:
    """y_i = sum over edges (i, j) of value * x_j, differentiable in the values and in x
    (a sparse product whose edge weights are being learned)."""
    return torch.zeros_like(x).index_add_(0, rows, values[:, None] * x[cols])


def sym_normalized_edges(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                         n: int) -> torch.Tensor:
    """The edge values of D^-1/2 W D^-1/2 (D the row sums of W, duplicates adding up),
    differentiable in the values."""
    degree = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(
        0, rows, values)
    inv_sqrt = degree.clamp_min(1e-12).rsqrt()
    return values * inv_sqrt[rows] * inv_sqrt[cols]


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


def hypergraph_propagate(item_assign: torch.Tensor, user_assign: torch.Tensor,
                         item_x: torch.Tensor, n_layers: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Message passing through H learned hyperedges (LGMRec's global embeddings).

    ``item_assign`` (n_items, H) and ``user_assign`` (n_users, H) are soft memberships;
    each layer gathers the items into the hyperedges (A_i^T x) and sends them back to
    items (A_i . ) and users (A_u . ). Dense but thin: n x H, never n x n."""
    if n_layers < 1:
        raise ValueError(f"hypergraph propagation needs at least one layer, got {n_layers}")
    users = item_x.new_zeros((user_assign.shape[0], item_x.shape[1]))
    for _ in range(n_layers):
        edges = item_assign.T @ item_x
        item_x = item_assign @ edges
        users = user_assign @ edges
    return users, item_x


# ------------------------------------------------------------------ user-user graphs


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
