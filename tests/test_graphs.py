import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.graphs import (
    InteractionGraph,
    bipartite_adjacency,
    cached_knn_graph,
    hnsw_knn_graph,
    knn_graph,
    sym_normalize,
)


def test_sym_normalize_hand_computed():
    # user 0 - items 0, 1; user 1 - item 1. Degrees: u0 2, u1 1, i0 1, i1 2.
    r = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))
    norm = sym_normalize(bipartite_adjacency(r)).toarray()
    expected = np.zeros((4, 4))
    expected[0, 2] = expected[2, 0] = 1 / np.sqrt(2 * 1)
    expected[0, 3] = expected[3, 0] = 1 / np.sqrt(2 * 2)
    expected[1, 3] = expected[3, 1] = 1 / np.sqrt(1 * 2)
    np.testing.assert_allclose(norm, expected, rtol=1e-6)
    np.testing.assert_allclose(norm, norm.T)


def test_zero_degree_nodes_stay_zero():
    r = sp.csr_matrix(np.array([[1, 0], [0, 0]], dtype=np.float32))
    norm = sym_normalize(bipartite_adjacency(r)).toarray()
    assert np.isfinite(norm).all()
    assert norm[1].sum() == 0 and norm[3].sum() == 0


def test_interaction_graph_is_sparse_torch():
    r = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))
    g = InteractionGraph.from_train(r)
    assert g.norm_adj.symmetric and g.norm_adj.shape == (4, 4)
    dense = g.norm_adj.to_dense().numpy()
    np.testing.assert_allclose(dense, sym_normalize(bipartite_adjacency(r)).toarray())


def test_knn_matches_brute_force_and_includes_self():
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    g = knn_graph(x, 5, block_size=64)
    assert g.shape == (300, 300) and g.nnz == 300 * 5
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    brute = np.argsort(-(xn @ xn.T), axis=1, kind="stable")[:, :5]
    for i in range(300):
        assert set(g[i].indices) == set(brute[i])
        assert i in g[i].indices


def test_knn_ties_go_to_lower_id_and_exclude_self():
    x = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    g = knn_graph(x, 2, include_self=False)
    assert list(g[3].indices) == [0, 1]
    assert list(g[0].indices) == [1, 2]


@pytest.mark.parametrize("method", ["exact", "hnsw"])
def test_items_without_features_have_no_cosine_neighbours(method):
    """An all-zero row (a missing image) has no direction: its kNN row is empty, nobody
    has it as a neighbour, and the normalised graph stays finite."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    x[[2, 17]] = 0
    build = knn_graph if method == "exact" else hnsw_knn_graph
    g = build(x, 5)
    assert g[2].nnz == 0 and g[17].nnz == 0
    assert not np.isin(g.indices, [2, 17]).any()
    others = np.setdiff1d(np.arange(30), [2, 17])
    assert (np.diff(g.indptr)[others] == 5).all()
    norm = sym_normalize(g)
    assert np.isfinite(norm.data).all()
    # the rest of the graph is what it would be without those items
    kept = build(x[others], 5)
    np.testing.assert_array_equal(g[others][:, others].toarray(), kept.toarray())
    # fewer items with features than k: each row keeps the ones there are
    sparse = np.zeros((6, 3), np.float32)
    sparse[[0, 1]] = [[1, 0, 0], [0, 1, 0]]
    assert knn_graph(sparse, 4)[0].nnz == 2


def test_knn_cache_is_keyed_by_content(tmp_path):
    x = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    g1 = cached_knn_graph(x, 3, cache=tmp_path)
    assert len(list(tmp_path.glob("knn-*.npz"))) == 1
    g2 = cached_knn_graph(x.copy(), 3, cache=tmp_path)
    assert (g1 != g2).nnz == 0
    assert len(list(tmp_path.glob("knn-*.npz"))) == 1
    y = x.copy()
    y[0, 0] += 1.0
    cached_knn_graph(y, 3, cache=tmp_path)
    cached_knn_graph(x, 4, cache=tmp_path)
    assert len(list(tmp_path.glob("knn-*.npz"))) == 3
    # A damaged cache entry is rebuilt, not trusted.
    for p in tmp_path.glob("knn-*.npz"):
        p.write_bytes(b"garbage")
    g3 = cached_knn_graph(x, 3, cache=tmp_path)
    assert (g1 != g3).nnz == 0


def test_propagation_preserves_shape():
    from searec.graphs import propagate

    r = sp.random(20, 10, density=0.3, random_state=0, format="csr")
    r.data[:] = 1
    g = InteractionGraph.from_train(r)
    out = propagate(g.norm_adj, torch.ones(30, 4), 2)
    assert len(out) == 3 and all(o.shape == (30, 4) for o in out)


def test_propagated_sum_adds_every_layer():
    from searec.graphs import SparseOperator, propagated_sum

    a = np.array([[0.0, 0.5], [0.5, 0.0]], dtype=np.float32)
    x = torch.tensor([[1.0], [3.0]])
    # x + Ax + A^2x = [1, 3] + [1.5, 0.5] + [0.25, 0.75]
    out = propagated_sum(SparseOperator.from_scipy(sp.csr_matrix(a)), x, 2)
    torch.testing.assert_close(out, torch.tensor([[2.75], [4.25]]))


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_propagated_sum_gradient_matches_dense_powers(n_layers):
    from searec.graphs import SparseOperator

    # not symmetric: the backward pass must use the transpose
    mat = sp.random(6, 6, density=0.5, random_state=2, format="csr", dtype=np.float32)
    op = SparseOperator.from_scipy(mat)
    assert not op.symmetric
    _assert_propagated_sum_matches_dense(op, torch.from_numpy(mat.toarray()),
                                         torch.randn(6, 4), n_layers)


def _assert_propagated_sum_matches_dense(op, dense: torch.Tensor, x: torch.Tensor,
                                         n_layers: int, **tolerance: float) -> None:
    """propagated_sum(op, x) and its gradient against the sum of dense matrix powers,
    computed on the CPU (``op`` and ``x`` may be on another device)."""
    from searec.graphs import propagated_sum

    x = x.detach().requires_grad_(True)
    x_ref = x.detach().cpu().clone().requires_grad_(True)
    w = torch.randn(x.shape)
    out = propagated_sum(op, x, n_layers)
    ref = sum(torch.linalg.matrix_power(dense, k) @ x_ref for k in range(n_layers + 1))
    torch.testing.assert_close(out.cpu(), ref, **tolerance)
    (out * w.to(out.device)).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(x.grad.cpu(), x_ref.grad, **tolerance)


def test_sparse_operator_product_and_gradient_match_dense():
    from searec.graphs import SparseOperator

    mat = sp.random(7, 5, density=0.4, random_state=1, format="csr", dtype=np.float32)
    op = SparseOperator.from_scipy(mat)
    assert not op.symmetric and op.shape == (7, 5) and op.nnz == mat.nnz
    dense = torch.from_numpy(mat.toarray())
    x = torch.randn(5, 3, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    w = torch.randn(7, 3)
    ((op @ x) * w).sum().backward()
    ((dense @ x_ref) * w).sum().backward()
    torch.testing.assert_close(op @ x.detach(), dense @ x.detach())
    torch.testing.assert_close(x.grad, x_ref.grad)
    # a column-major input (as a gradient may arrive) gives the same product
    x_cols = x.detach().t().contiguous().t()
    assert not x_cols.is_contiguous()
    torch.testing.assert_close(op @ x_cols, dense @ x.detach())


def _ratings_with_cold_rows() -> sp.csr_matrix:
    """7 users x 5 items with ratings (not only ones), a user and an item without any."""
    r = sp.random(7, 5, density=0.5, random_state=3, format="lil", dtype=np.float32)
    r[2, :] = 0
    r[:, 4] = 0
    r = sp.csr_matrix(r)
    r.eliminate_zeros()
    r.data = np.round(r.data * 4 + 1)
    return r


def test_bipartite_operator_is_the_normalised_adjacency():
    from searec.graphs import BipartiteOperator

    r = _ratings_with_cold_rows()
    op = BipartiteOperator.normalized(r)
    full = sym_normalize(bipartite_adjacency(r))
    assert op.shape == (12, 12) and op.nnz == full.nnz and op.symmetric
    np.testing.assert_allclose(op.to_dense().numpy(), full.toarray(), rtol=1e-6)


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_bipartite_propagation_matches_dense_powers(n_layers, layout):
    from searec.graphs import BipartiteOperator, propagate

    op = BipartiteOperator.normalized(_ratings_with_cold_rows())
    dense = op.to_dense()
    x = torch.randn(12, 4)
    if layout == "columns":  # as a gradient may arrive
        x = x.t().contiguous().t()
    _assert_propagated_sum_matches_dense(op, dense, x, n_layers)
    x.requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    w = torch.randn(12, 4)
    layers = propagate(op, x, n_layers)
    ref_layers = propagate(dense, x_ref, n_layers)  # a dense matrix has @ too
    for got, want in zip(layers, ref_layers, strict=True):
        torch.testing.assert_close(got, want)
    (layers[-1] * w).sum().backward()
    (ref_layers[-1] * w).sum().backward()
    if n_layers:
        torch.testing.assert_close(x.grad, x_ref.grad)


def test_bipartite_propagation_of_bfloat16_rows_sums_in_float32():
    from searec.graphs import BipartiteOperator, propagated_sum

    op = BipartiteOperator.normalized(_ratings_with_cold_rows())
    x = torch.randn(12, 4).to(torch.bfloat16)
    out = propagated_sum(op, x, 2)
    dense = op.to_dense()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, (torch.eye(12) + dense + dense @ dense) @ x.float())


def test_sparse_operator_detects_symmetry():
    from searec.graphs import SparseOperator

    a = np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]], dtype=np.float32)
    assert SparseOperator.from_scipy(sp.csr_matrix(a)).symmetric
    a[0, 2] = 5
    assert not SparseOperator.from_scipy(sp.csr_matrix(a)).symmetric


def _clustered_points(n: int = 3000, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, d))
    return (centres[rng.integers(0, 30, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_hnsw_knn_graph_finds_most_exact_neighbours():
    pytest.importorskip("faiss")
    from searec.graphs import hnsw_knn_graph

    feats = _clustered_points()
    exact = knn_graph(feats, 10)
    approx = hnsw_knn_graph(feats, 10)
    assert approx.shape == exact.shape
    assert np.all(np.diff(approx.indptr) == 10)  # k per row, self included
    assert np.all(approx.diagonal() == 1)
    recall = exact.multiply(approx).sum() / exact.sum()
    assert recall > 0.95


def test_hnsw_knn_graph_without_self():
    pytest.importorskip("faiss")
    from searec.graphs import hnsw_knn_graph

    approx = hnsw_knn_graph(_clustered_points(500), 5, include_self=False)
    assert np.all(approx.diagonal() == 0) and np.all(np.diff(approx.indptr) == 5)


def test_hnsw_without_faiss_is_a_config_error(monkeypatch, tmp_path):
    import sys

    from searec.errors import ConfigError

    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(ConfigError, match="searec\\[ann\\]"):
        cached_knn_graph(_clustered_points(50), 5, tmp_path, method="hnsw")


def test_unknown_knn_method_is_a_config_error(tmp_path):
    from searec.errors import ConfigError

    with pytest.raises(ConfigError, match="knn_method"):
        cached_knn_graph(_clustered_points(50), 5, tmp_path, method="annoy")
