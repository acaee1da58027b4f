"""MGCN: behaviour-guided purification, weighted item graphs, attention fusion."""

import numpy as np
import scipy.sparse as sp
import torch

from searec.data import make_synthetic
from searec.graphs import InteractionGraph, cosine_weighted, knn_graph
from searec.models import create_model
from tests.models.synthetic_runs import popularity_recall, synthetic_recall


def test_item_graphs_are_cosine_weighted_knn_graphs():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((30, 5)).astype(np.float32)
    binary = knn_graph(feats, 4)
    weighted = cosine_weighted(binary, feats)
    assert (weighted != 0).nnz <= binary.nnz and weighted.nnz == binary.nnz
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    coo = weighted.tocoo()
    np.testing.assert_allclose(coo.data, (unit[coo.row] * unit[coo.col]).sum(1), rtol=1e-5)
    np.testing.assert_allclose(weighted.diagonal(), 1.0, rtol=1e-5)  # self included


def test_the_purifier_gates_item_embeddings_by_the_features(tiny):
    """Each modality's item view is the ID embedding times a feature-driven gate in (0, 1);
    with the gate saturated at 1 the view is the ID embedding itself."""
    model = create_model("mgcn", tiny, {"n_layers": 0})
    x = model.item_inputs()["image"]
    with torch.no_grad():
        gate = model.purifiers["image"](x.through(model.projections["image"]))
    assert gate.shape == model.item_emb.shape
    assert float(gate.min()) > 0.0 and float(gate.max()) < 1.0
    # a different item's features give a different gate: the features decide it
    assert not torch.allclose(gate[0], gate[1])
    with torch.no_grad():
        model.purifiers["image"][0].weight.zero_()
        model.purifiers["image"][0].bias.fill_(50.0)
        gate = model.purifiers["image"](x.through(model.projections["image"]))
        torch.testing.assert_close(model.item_emb * gate, model.item_emb * 1.0)


def test_attention_fusion_over_any_number_of_modalities():
    three = make_synthetic(n_users=60, n_items=40, interactions_per_user=6,
                           modalities={"image": 8, "text": 6, "audio": 4}, seed=2)
    graph = InteractionGraph.from_train(three.train)
    model = create_model("mgcn", three, {})
    content, side = model._views(graph)
    assert content.shape == side.shape == (three.n_users + three.n_items, 64)
    users, items = model(graph)
    torch.testing.assert_close(torch.cat([users, items]), content + side)
    rng = np.random.default_rng(0)
    u = torch.from_numpy(rng.integers(0, 60, 16))
    p = torch.from_numpy(rng.integers(0, 40, 16))
    parts = model.loss(graph, u, p, torch.from_numpy(rng.integers(0, 40, 16))).logged()
    assert {"bpr", "reg", "contrast"} <= set(parts)
    assert float(parts["contrast"].detach()) > 0


def test_user_view_is_the_normalised_user_item_block(tiny):
    graph = InteractionGraph.from_train(tiny.train)
    r = sp.csr_matrix(tiny.train, dtype=np.float32)
    du, di = np.asarray(r.sum(1)).ravel(), np.asarray(r.sum(0)).ravel()
    with np.errstate(divide="ignore"):
        block = sp.diags(np.where(du > 0, du**-0.5, 0)) @ r @ sp.diags(
            np.where(di > 0, di**-0.5, 0))
    items = torch.randn(tiny.n_items, 3)
    zeros = torch.zeros(tiny.n_users, 3)
    got = (graph.norm_adj @ torch.cat([zeros, items]))[: tiny.n_users]
    np.testing.assert_allclose(got.numpy(), block @ items.numpy(), rtol=1e-5, atol=1e-6)


def test_separation_plugs_into_mgcn(tiny):
    club = {"name": "club", "q_steps": 2}
    model = create_model("mgcn", tiny, {"separation": {"proj_dim": 10, "distancing": club}})
    assert model.projections["image"].in_features == 10
    parts = model.loss(InteractionGraph.from_train(tiny.train), torch.tensor([0, 1]),
                       torch.tensor([2, 3]), torch.tensor([4, 5])).logged()
    assert {"align", "distance", "contrast"} <= set(parts)


def test_mgcn_clearly_beats_pop(tmp_path):
    recall = synthetic_recall(tmp_path, "mgcn",
                              "train.lr=0.01", "train.epochs=4", "train.eval_every=4")
    assert recall > 2.0 * popularity_recall()
