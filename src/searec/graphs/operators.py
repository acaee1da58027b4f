"""Sparse operators: normalised adjacency, sparse-dense products with a fixed matrix
(custom backward), the training graph, and propagation over graphs. Nothing here builds a
dense nodes x nodes matrix."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def sym_normalize(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with D the row sums; rows/columns of zero degree stay zero."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    d = sp.diags(_inverse_sqrt(adj.sum(axis=1)))
    out = (d @ adj @ d).tocsr()
    out.sort_indices()
    return out


def _inverse_sqrt(degree: np.ndarray | np.matrix) -> np.ndarray:
    """degree^-1/2 as float32, 0 where the degree is 0 (a node without edges stays zero)."""
    degree = np.asarray(degree).ravel()
    with np.errstate(divide="ignore"):
        return np.where(degree > 0, degree ** -0.5, 0.0).astype(np.float32)


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
    """matrix @ x into a fresh uninitialised output, in the matrix's precision.

    ``matrix @ x`` zero-fills a tensor and copies it into the output before the product:
    two extra passes over the result (beta=0 ignores the output's contents). Under
    autocast (train.precision) the product stays in the matrix's float32 (autocast
    leaves ``out=`` calls alone): its operands are read once per non-zero, so bf16 would
    save little and lose the sums' precision."""
    x = x.to(matrix.dtype)
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

    def power_sum(self, x: torch.Tensor, n_layers: int, transpose: bool = False
                  ) -> torch.Tensor:
        """(I + M + ... + M^n) x for M this matrix, or its transpose (no autograd: see
        :func:`propagated_sum`)."""
        return _horner_sum(self.transpose if transpose else self.matrix, x, n_layers)


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


def normalized_bipartite_block(train: sp.spmatrix) -> sp.csr_matrix:
    """The U x I block D_u^-1/2 R D_i^-1/2 of :func:`sym_normalize` applied to
    :func:`bipartite_adjacency` (``train``'s values, degrees its row and column sums), built
    without the (U+I) x (U+I) matrix."""
    r = sp.csr_matrix(train, dtype=np.float32)
    out = (sp.diags(_inverse_sqrt(r.sum(axis=1))) @ r
           @ sp.diags(_inverse_sqrt(r.sum(axis=0)))).tocsr()
    out.sort_indices()
    return out


def _split_rows(block: torch.Tensor, x: torch.Tensor
                ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor,
                           tuple[torch.Tensor, torch.Tensor]]:
    """((x's user rows, item rows) in the block's precision, a fresh output shaped like x,
    (its user rows, item rows)): the user rows are the block's first dimension."""
    x = x.to(block.dtype)
    n_users = block.shape[0]
    out = x.new_empty(x.shape)  # row-major, whatever the layout of x
    return (x[:n_users], x[n_users:]), out, (out[:n_users], out[n_users:])


def _bipartite_product(block: torch.Tensor, block_t: torch.Tensor,
                       x: torch.Tensor) -> torch.Tensor:
    """[[0, B], [B^T, 0]] @ x as two products into the row blocks of one fresh output."""
    (x_users, x_items), out, (out_users, out_items) = _split_rows(block, x)
    torch.addmm(out_items, block_t, x_users, beta=0, out=out_items)
    torch.addmm(out_users, block, x_items, beta=0, out=out_users)
    return out


class _BipartiteProduct(torch.autograd.Function):
    """y = A @ x for A = [[0, B], [B^T, 0]]: symmetric, so dx = A @ dy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, block: torch.Tensor,  # type: ignore[override]
                block_t: torch.Tensor) -> torch.Tensor:
        ctx.block, ctx.block_t = block, block_t
        return _bipartite_product(block, block_t, x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _bipartite_product(ctx.block, ctx.block_t, grad), None, None


@dataclass(frozen=True, eq=False)
class BipartiteOperator:
    """The symmetric (U+I) x (U+I) matrix [[0, B], [B^T, 0]] of a user-item graph, kept as
    its U x I block B (with B^T): the same non-zeros as the whole matrix, but a product
    writes the user rows (B x_items) and the item rows (B^T x_users) apart, which lets
    :func:`propagated_sum` overwrite the user rows it no longer reads, with two nodes x
    width tensors alive instead of three (1.8 GB each at 1M users, 3 x 128 columns)."""

    block: SparseOperator  # U x I, its transpose I x U

    @classmethod
    def from_scipy(cls, block: sp.spmatrix, device: torch.device | str = "cpu"
                   ) -> BipartiteOperator:
        return cls(SparseOperator.from_scipy(block, device, symmetric=False))

    @classmethod
    def normalized(cls, train: sp.spmatrix, device: torch.device | str = "cpu"
                   ) -> BipartiteOperator:
        """D^-1/2 A D^-1/2 of the bipartite graph of ``train`` (LightGCN's adjacency)."""
        return cls.from_scipy(normalized_bipartite_block(train), device)

    @property
    def n_users(self) -> int:
        return self.block.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        n = sum(self.block.shape)
        return n, n

    @property
    def nnz(self) -> int:
        return 2 * self.block.nnz

    @property
    def symmetric(self) -> bool:
        return True

    def to(self, device: torch.device | str) -> BipartiteOperator:
        return BipartiteOperator(self.block.to(device))

    def to_dense(self) -> torch.Tensor:
        b = self.block.to_dense()
        out = b.new_zeros(self.shape)
        out[: self.n_users, self.n_users :] = b
        out[self.n_users :, : self.n_users] = b.T
        return out

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return _BipartiteProduct.apply(x, self.block.matrix, self.block.transpose)

    def power_sum(self, x: torch.Tensor, n_layers: int, transpose: bool = False
                  ) -> torch.Tensor:
        """(I + A + ... + A^n) x (no autograd: see :func:`propagated_sum`); A is symmetric,
        so ``transpose`` changes nothing."""
        return _bipartite_horner_sum(self.block.matrix, self.block.transpose, x, n_layers)


Adjacency = SparseOperator | BipartiteOperator  # what propagation runs over


@dataclass
class InteractionGraph:
    """The training graph handed to models' ``forward``: the normalised bipartite
    adjacency, and the user x item interaction matrix R itself (binary)."""

    n_users: int
    n_items: int
    norm_adj: BipartiteOperator  # (U+I) x (U+I), D^-1/2 A D^-1/2 (symmetric)
    interactions: SparseOperator  # U x I, R (its transpose for the backward pass)
    user_degree: torch.Tensor  # (U,) training interactions per user, float

    @classmethod
    def from_train(
        cls, train: sp.csr_matrix, device: torch.device | str = "cpu"
    ) -> InteractionGraph:
        n_users, n_items = train.shape
        binary = binarized(train)
        degree = torch.from_numpy(np.diff(binary.indptr).astype(np.float32)).to(device)
        return cls(n_users, n_items, BipartiteOperator.normalized(train, device),
                   SparseOperator.from_scipy(binary, device, symmetric=False), degree)

    def to(self, device: torch.device | str) -> InteractionGraph:
        return InteractionGraph(self.n_users, self.n_items, self.norm_adj.to(device),
                                self.interactions.to(device), self.user_degree.to(device))

    def item_degree(self) -> torch.Tensor:
        """(I,) training interactions per item (0: a cold item), as int64."""
        transpose = self.interactions.transpose  # I x U, CSR
        return torch.diff(transpose.crow_indices()).long()

    def user_mean(self, item_values: torch.Tensor) -> torch.Tensor:
        """Per user, the mean of ``item_values`` (n_items, d) over the items they
        interacted with in training (0 for a user without any)."""
        return (self.interactions @ item_values) / self.user_degree.clamp_min(1.0)[:, None]

    def user_sum(self, item_values: torch.Tensor) -> torch.Tensor:
        """Per user, the sum of ``item_values`` over their training items (R @ x)."""
        return self.interactions @ item_values


def propagate(adj: Adjacency, x: torch.Tensor, n_layers: int) -> list[torch.Tensor]:
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


def _bipartite_horner_sum(block: torch.Tensor, block_t: torch.Tensor, x: torch.Tensor,
                          n_layers: int) -> torch.Tensor:
    """x + Ax + ... + A^n x for A = [[0, B], [B^T, 0]], with two nodes x width tensors
    alive (``x`` and the result). A layer's user rows are B times the previous layer's
    item rows, so once the new item rows (items x width) are formed from the old user
    rows, those are not read again and the new user rows overwrite them."""
    (x_users, x_items), out, (out_users, out_items) = _split_rows(block, x)
    users, items = x_users, x_items
    for layer in range(n_layers):
        new_items = out_items if layer == n_layers - 1 else x_items.new_empty(x_items.shape)
        torch.addmm(new_items, block_t, users, beta=0, out=new_items).add_(x_items)
        torch.addmm(out_users, block, items, beta=0, out=out_users).add_(x_users)
        users, items = out_users, new_items
    return out


class _PropagatedSum(torch.autograd.Function):
    """y = (I + A + ... + A^n) x for a constant A; dx = (I + A^T + ... + (A^T)^n) dy.

    Linear in x, so nothing is saved for backward, and neither pass keeps the
    intermediate layers: at millions of users each is a nodes x width tensor."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, adj: Adjacency,  # type: ignore[override]
                n_layers: int) -> torch.Tensor:
        ctx.adj, ctx.n_layers = adj, n_layers
        return adj.power_sum(x, n_layers)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.adj.power_sum(grad, ctx.n_layers, transpose=True), None, None


def propagated_sum(adj: Adjacency, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """x + Ax + A^2x + ... + A^n_layers x, without keeping any layer's output."""
    if n_layers == 0:
        return x
    return _PropagatedSum.apply(x, adj, n_layers)


def propagated_mean(adj: Adjacency, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """The mean of x, Ax, ..., A^n_layers x (LightGCN's layer combination)."""
    return propagated_sum(adj, x, n_layers) / (n_layers + 1)


# ------------------------------------------------------------------------------ kNN


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


