"""Property-based tests (hypothesis) for the metrics and the loader."""

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searec.data import Dataset, interaction_matrix, load_mmrec, save_mmrec
from searec.evaluation import evaluate_ranking

KS = [1, 3, 5]


@st.composite
def ranking_problem(draw):
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(6, 20))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32)
    target = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    train = ((rng.random((n_users, n_items)) < 0.2) & (target == 0)).astype(np.float32)
    target[0, rng.integers(n_items)] = 1.0  # at least one user with a held-out item
    train[target > 0] = 0.0
    return scores, sp.csr_matrix(target), sp.csr_matrix(train)


def _evaluate(scores, target, train):
    table = torch.from_numpy(scores)
    return evaluate_ranking(lambda u: table[u], target, [train], KS, batch_size=3)


@settings(max_examples=60, deadline=None)
@given(ranking_problem())
def test_metrics_are_in_unit_interval(problem):
    res = _evaluate(*problem)
    for name, value in res.items():
        if name != "users":
            assert 0.0 <= value <= 1.0 + 1e-9, (name, value)


@settings(max_examples=60, deadline=None)
@given(ranking_problem())
def test_perfect_ranking_scores_one(problem):
    _, target, train = problem
    dense = target.toarray()
    perfect = dense * 1000.0 + np.random.default_rng(0).random(dense.shape)  # held-out first
    res = _evaluate(perfect.astype(np.float32), target, train)
    n_rel = dense.sum(1)
    users = n_rel > 0
    for k in KS:
        expected_recall = np.mean(np.minimum(n_rel[users], k) / n_rel[users])
        assert np.isclose(res[f"recall@{k}"], expected_recall)
        assert np.isclose(res[f"ndcg@{k}"], 1.0)
        assert np.isclose(res[f"map@{k}"], 1.0)
        assert np.isclose(res[f"hit@{k}"], 1.0)


@settings(max_examples=60, deadline=None)
@given(ranking_problem(), st.integers(0, 2**31 - 1))
def test_item_id_permutation_does_not_change_metrics(problem, seed):
    scores, target, train = problem
    perm = np.random.default_rng(seed).permutation(scores.shape[1])
    a = _evaluate(scores, target, train)
    b = _evaluate(scores[:, perm], target[:, perm].tocsr(), train[:, perm].tocsr())
    for name in a:
        assert np.isclose(a[name], b[name]), name


@st.composite
def small_dataset(draw):
    """Every user has one train, one valid, one test item; every item occurs."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(3, 3 * n_users if n_users > 1 else 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    users = np.repeat(np.arange(n_users), 3)
    items = np.array([(3 * u + j) % n_items for u in range(n_users) for j in range(3)])
    labels = np.tile([0, 1, 2], n_users)
    dims = draw(st.lists(st.integers(1, 5), min_size=0, max_size=3))
    feats = {f"m{i}": rng.standard_normal((n_items, d)).astype(np.float32)
             for i, d in enumerate(dims)}
    mats = [interaction_matrix(users[labels == k], items[labels == k], n_users, n_items)
            for k in range(3)]
    return Dataset("prop", n_users, n_items, *mats, modalities=feats)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ds=small_dataset())
def test_save_then_load_is_identity(tmp_path_factory, ds):
    back = load_mmrec(save_mmrec(ds, tmp_path_factory.mktemp("prop"), name="prop"))
    assert (back.n_users, back.n_items) == (ds.n_users, ds.n_items)
    for split in ("train", "valid", "test"):
        assert (getattr(back, split) != getattr(ds, split)).nnz == 0
    assert sorted(back.modalities) == sorted(ds.modalities)
    for m, f in ds.modalities.items():
        np.testing.assert_array_equal(back.modalities[m], f)
