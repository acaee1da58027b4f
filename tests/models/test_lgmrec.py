"""LGMRec: hyperedges, local + global embeddings, its contrastive loss, any number of
modalities, SEA's separation as a plug-in."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.data import make_synthetic
from searec.graphs import InteractionGraph, hypergraph_propagate
from searec.losses import contrast_with_table
from searec.models import create_model
from tests.models.synthetic_runs import popularity_recall, synthetic_recall


def _batch(ds, n=48):
    users, items = ds.train_pairs()
    idx = np.random.default_rng(0).choice(len(users), n, replace=False)
    return (torch.from_numpy(users[idx]), torch.from_numpy(items[idx]),
            torch.from_numpy(np.random.default_rng(1).integers(0, ds.n_items, n)))


def test_each_modality_has_the_stated_number_of_hyperedges(tiny):
    model = create_model("lgmrec", tiny, {"hyper_num": 7})
    graph = InteractionGraph.from_train(tiny.train)
    model.eval()
    for m, x in model.item_inputs().items():
        logits = x.through(model.hyperedges[m])
        assert logits.shape == (tiny.n_items, 7)
        memberships = model._memberships(logits)
        torch.testing.assert_close(memberships.sum(dim=1), torch.ones(tiny.n_items))
        users = model._memberships(graph.user_sum(logits))
        assert users.shape == (tiny.n_users, 7)
    # at inference the scores are deterministic; while training the memberships are
    # Gumbel-softmax samples, dropped out
    first, second = model(graph), model(graph)
    torch.testing.assert_close(first[1], second[1], rtol=0, atol=0)
    model.train()
    noisy = model._memberships(torch.zeros(50, 7))
    assert not torch.allclose(noisy, torch.full((50, 7), 1 / 7))
    assert (noisy == 0).float().mean() > 0.3  # keep_rate 0.5


def test_hypergraph_propagation_hand_computed():
    item_assign = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    user_assign = torch.tensor([[0.2, 0.8]])
    x = torch.tensor([[1.0], [2.0], [3.0]])
    users, items = hypergraph_propagate(item_assign, user_assign, x, 1)
    edges = torch.tensor([[1.0 + 1.0], [1.0 + 3.0]])  # A_i^T x
    torch.testing.assert_close(items, item_assign @ edges)
    torch.testing.assert_close(users, torch.tensor([[0.2 * 2.0 + 0.8 * 4.0]]))
    with pytest.raises(ValueError, match="at least one layer"):
        hypergraph_propagate(item_assign, user_assign, x, 0)


def test_contrastive_loss_is_mmrecs_formula():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(30, 8, generator=g)
    rows = torch.tensor([0, 4, 9])
    anchor = torch.randn(3, 8, generator=g)
    a, p, t = (torch.nn.functional.normalize(v) for v in (anchor, table[rows], table))
    pos = torch.exp((a * p).sum(1) / 0.2)
    total = torch.exp(a @ t.T / 0.2).sum(1)
    want = -torch.log(pos / total).sum()
    torch.testing.assert_close(contrast_with_table(anchor, table[rows], table, 0.2), want)
    # a temperature small enough that exp would overflow goes through logsumexp
    a, t = anchor.clone().requires_grad_(), table.clone().requires_grad_()
    cold = contrast_with_table(a, t[rows], t, 0.005)
    assert torch.isfinite(cold)
    cold.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(t.grad).all()


def test_contrastive_loss_gradients_match_logsumexp():
    g = torch.Generator().manual_seed(1)
    anchor, table = torch.randn(16, 8, generator=g), torch.randn(40, 8, generator=g)
    rows = torch.randint(0, 40, (16,), generator=g)

    def reference(a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, p, t = (torch.nn.functional.normalize(x) for x in (a, t[rows], t))
        return (torch.logsumexp(a @ t.T / 0.2, dim=1) - (a * p).sum(1) / 0.2).sum()

    grads = []
    for loss in (reference, lambda a, t: contrast_with_table(a, t[rows], t, 0.2)):
        a, t = anchor.clone().requires_grad_(), table.clone().requires_grad_()
        loss(a, t).backward()
        grads.append((a.grad, t.grad))
    for ours, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(ours, want)


def test_user_mean_and_sum_over_training_items():
    train = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]], dtype=np.float32))
    graph = InteractionGraph.from_train(train)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(graph.user_sum(x), torch.tensor([[4.0, 4.0], [0.0, 0.0],
                                                                [3.0, 6.0]]))
    torch.testing.assert_close(graph.user_mean(x), torch.tensor([[2.0, 2.0], [0.0, 0.0],
                                                                 [1.5, 3.0]]))


def test_any_number_of_modalities_and_pairs_in_the_contrastive_loss(tiny):
    one = make_synthetic(n_users=60, n_items=40, interactions_per_user=6,
                         modalities={"text": 6}, seed=2)
    three = make_synthetic(n_users=60, n_items=40, interactions_per_user=6,
                           modalities={"image": 8, "text": 6, "audio": 4}, seed=2)
    for ds, pairs in ((one, 0), (three, 3)):
        model = create_model("lgmrec", ds, {})
        assert len(model.pairs) == pairs
        parts = model.loss(InteractionGraph.from_train(ds.train), *_batch(ds, 24)).logged()
        assert torch.isfinite(parts["loss"])
        assert (float(parts["hypergraph_cl"].detach()) > 0) == (pairs > 0)


def test_separation_plugs_into_lgmrec(tiny):
    club = {"name": "club", "q_steps": 2}
    model = create_model("lgmrec", tiny, {"separation": {"proj_dim": 10, "distancing": club}})
    assert model.transforms["image"].in_features == 10
    assert model.hyperedges["text"].in_features == 10
    parts = model.loss(InteractionGraph.from_train(tiny.train), *_batch(tiny)).logged()
    assert {"align", "distance", "hypergraph_cl", "bpr"} <= set(parts)
    assert len(model.auxiliary_objectives()) == 1  # CLUB's q


def test_lgmrec_clearly_beats_pop(tmp_path):
    # validation recall@20 0.34 after 3 epochs, 0.45 after 27 (pop: 0.14 on test)
    recall = synthetic_recall(tmp_path, "lgmrec",
                              "train.lr=0.01", "train.epochs=4", "train.eval_every=4")
    assert recall > 2.0 * popularity_recall()
