"""DRAGON: SEA's backbone plus a sparse user-user co-occurrence graph."""

import numpy as np
import scipy.sparse as sp
import torch

from searec.graphs import (
    InteractionGraph,
    registered_operator,
    softmax_user_graph,
    user_cooccurrence_topk,
)
from searec.models import create_model
from searec.training import seed_everything
from tests.models.synthetic_runs import popularity_recall, synthetic_recall


def test_cooccurrence_topk_matches_the_dense_count_in_small_blocks():
    train = sp.random(50, 30, density=0.15, random_state=3, format="csr")
    rows, cols, counts = user_cooccurrence_topk(train, k=4, block=7)
    binary = (train.toarray() > 0).astype(float)
    dense = binary @ binary.T
    np.fill_diagonal(dense, 0)
    for user in range(50):
        mine = cols[rows == user]
        want = [j for j in sorted(range(50), key=lambda j: (-dense[user, j], j))
                if dense[user, j] > 0][:4]
        assert list(mine) == want, user
        np.testing.assert_array_equal(counts[rows == user], dense[user, want])
    assert not np.any(rows == cols)


def test_softmax_user_graph_pads_short_lists_and_normalises():
    rows = np.array([0, 0, 1, 2, 2, 2])
    cols = np.array([1, 2, 0, 0, 1, 3])
    counts = np.array([3.0, 1.0, 2.0, 1.0, 1.0, 1.0], dtype=np.float32)
    graph = softmax_user_graph(5, rows, cols, counts, k=3, rng=np.random.default_rng(0))
    dense = graph.toarray()
    # users 3 and 4 have no neighbours at all: empty rows
    np.testing.assert_allclose(dense.sum(axis=1), [1, 1, 1, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(dense[2, [0, 1, 3]], 1 / 3, rtol=1e-6)  # full list: plain
    assert dense[1, 0] == 1.0  # one neighbour, repeated to k: all its weight
    # user 0: [1, 2] padded by one repeat of either; softmax over the padded counts
    e3, e1 = np.exp(3.0), np.exp(1.0)
    options = [(2 * e3 / (2 * e3 + e1), e1 / (2 * e3 + e1)),
               (e3 / (e3 + 2 * e1), 2 * e1 / (e3 + 2 * e1))]
    assert any(np.allclose(dense[0, [1, 2]], o, rtol=1e-5) for o in options)


def test_dragon_is_the_sea_backbone_plus_the_user_graph(tiny):
    graph = InteractionGraph.from_train(tiny.train)
    seed_everything(0)
    dragon = create_model("dragon", tiny, {"embedding_dim": 8})
    op = registered_operator(dragon, "user_graph")
    assert op.shape == (tiny.n_users, tiny.n_users)
    assert op.nnz <= tiny.n_users * 40
    users, items = dragon(graph)
    base_users, base_items = super(type(dragon), dragon)._encode(graph)
    torch.testing.assert_close(items, base_items)
    torch.testing.assert_close(users, base_users + op @ base_users)
    parts = dragon.loss(graph, torch.tensor([0, 1]), torch.tensor([2, 3]),
                        torch.tensor([4, 5])).logged()
    assert {"bpr", "reg"} <= set(parts) and float(parts["reg"].detach()) > 0
    assert dragon.separation is None
    separated = create_model("dragon", tiny,
                             {"separation": {"distancing": {"name": "club", "q_steps": 2}}})
    assert separated.separation is not None


def test_dragon_clearly_beats_pop(tmp_path):
    recall = synthetic_recall(tmp_path, "dragon",
                              "train.lr=0.005", "train.epochs=10", "train.eval_every=5")
    assert recall > 2.0 * popularity_recall()
