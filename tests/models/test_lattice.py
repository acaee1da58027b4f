"""LATTICE: learned item-item graphs, rebuilt once an epoch, mixed with the initial ones."""

import numpy as np
import torch

from searec.graphs import InteractionGraph
from searec.models import create_model
from searec.models.lattice import random_walk_adjacency
from tests.models.synthetic_runs import popularity_recall, synthetic_recall


def _dense_knn(z: torch.Tensor, k: int) -> torch.Tensor:
    """MMRec's build_sim + build_knn_neighbourhood with dense matrices."""
    unit = z / z.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    vals, idx = torch.topk(sim, k, dim=1)
    return torch.zeros_like(sim).scatter_(1, idx, vals)


def test_learned_graph_equals_the_dense_construction(tiny):
    model = create_model("lattice", tiny, {"knn_k": 5})
    model.eval()
    rows, cols, values, weights = model.learned_graph()
    dense = torch.zeros(tiny.n_items, tiny.n_items).index_put_((rows, cols), values,
                                                               accumulate=True)
    with torch.no_grad():
        mixed = sum(w * _dense_knn(model.projections[m](model.raw_features()[m]), 5)
                    for w, m in zip(weights, model.names, strict=True))
        d = mixed.sum(1).pow(-0.5)  # compute_normalized_laplacian of the mix
        want = d[:, None] * mixed * d[None, :]
    torch.testing.assert_close(dense, want, rtol=1e-4, atol=1e-6)
    assert len(rows) == tiny.n_items * 5 * len(model.names)


def test_the_learned_graph_gets_gradient_at_the_first_step_of_each_epoch(tiny):
    graph = InteractionGraph.from_train(tiny.train)
    model = create_model("lattice", tiny, {})
    batch = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])

    def projection_grad() -> float:
        model.zero_grad(set_to_none=True)
        model.loss(graph, *batch).loss.backward()
        grad = model.projections["image"].weight.grad
        return 0.0 if grad is None else float(grad.abs().sum())

    assert projection_grad() > 0  # first step: the graph is built with gradient
    assert projection_grad() == 0  # later steps of the epoch use it fixed
    model.on_epoch_start(2, np.random.default_rng(0))
    assert projection_grad() > 0
    assert model.modal_weight.grad is not None


def test_user_item_graph_is_the_random_walk_with_self_loops(tiny):
    adj = random_walk_adjacency(tiny.train)
    np.testing.assert_allclose(np.asarray(adj.sum(axis=1)).ravel(), 1.0, rtol=1e-6)
    assert (adj.diagonal() > 0).all()


def test_lattice_clearly_beats_pop(tmp_path):
    recall = synthetic_recall(tmp_path, "lattice",
                              "train.lr=0.01", "train.epochs=6", "train.eval_every=6")
    assert recall > 2.0 * popularity_recall()
