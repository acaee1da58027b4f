"""VBPR and FREEDOM, and SEA's separation as a plug-in on them."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from searec.config import load_config
from searec.errors import ConfigError
from searec.graphs import InteractionGraph
from searec.models import create_model
from searec.models.freedom import degree_sensitive_prune
from searec.optim import fit_auxiliary
from searec.separation import Separation


def _batch(ds, n=48):
    users, items = ds.train_pairs()
    idx = np.random.default_rng(0).choice(len(users), n, replace=False)
    return (torch.from_numpy(users[idx]), torch.from_numpy(items[idx]),
            torch.from_numpy(np.random.default_rng(1).integers(0, ds.n_items, n)))


def test_plain_backbones_have_no_separation(tiny, tmp_path):
    for name in ("vbpr", "freedom"):
        model = create_model(name, tiny, {}, cache_dir=str(tmp_path))
        assert model.separation is None
        parts = model.loss(InteractionGraph.from_train(tiny.train), *_batch(tiny)).logged()
        assert not any(k.startswith(("align", "distance")) for k in parts)


def test_the_same_separation_component_plugs_into_every_backbone(tiny, tmp_path):
    graph = InteractionGraph.from_train(tiny.train)
    for name in ("vbpr", "freedom", "sea"):
        club = {"distancing": {"name": "club", "q_steps": 2}}
        model = create_model(name, tiny, {"separation": club}, cache_dir=str(tmp_path))
        assert type(model.separation) is Separation
        parts = model.loss(graph, *_batch(tiny)).logged()
        for key in ("align", "distance", "distance_image", "distance_text"):
            assert key in parts and torch.isfinite(parts[key]), (name, key)
        parts["loss"].backward()
        (objective,) = model.auxiliary_objectives()  # CLUB's q, declared to the trainer
        q_before = [q.detach().clone() for q in objective.parameters]
        assert all(q.grad is None or q.grad.abs().sum() == 0 for q in objective.parameters)
        assert fit_auxiliary(objective, torch.optim.Adam(objective.parameters)) is not None
        assert any(not torch.equal(a, b.detach())
                   for a, b in zip(q_before, objective.parameters, strict=True))


def test_vbpr_content_reads_separated_representations(tiny, tmp_path):
    plain = create_model("vbpr", tiny, {}, cache_dir=str(tmp_path))
    assert plain.content.in_features == sum(f.shape[1] for f in tiny.modalities.values())
    sep = create_model("vbpr", tiny, {"separation": {"proj_dim": 10}},
                       cache_dir=str(tmp_path))
    assert sep.content.in_features == 10 * len(tiny.modalities)


def test_degree_sensitive_pruning():
    rng = np.random.default_rng(0)
    train = sp.random(300, 200, density=0.05, random_state=1, format="csr")
    train.data[:] = 1
    pruned = degree_sensitive_prune(train, 0.2, rng)
    assert pruned.nnz == int(train.nnz * 0.2)
    assert (pruned - pruned.multiply(train)).nnz == 0  # a subset of the training edges
    assert pruned.max() == 1.0  # no edge twice
    # Edges between low-degree nodes survive more often than between hubs.
    du = np.asarray(train.sum(1)).ravel()
    di = np.asarray(train.sum(0)).ravel()
    coo = train.tocoo()
    weight = 1 / np.sqrt(du[coo.row] * di[coo.col])
    kept = np.asarray(pruned[coo.row, coo.col]).ravel() > 0
    assert weight[kept].mean() > weight[~kept].mean()
    again = degree_sensitive_prune(train, 0.2, np.random.default_rng(0))
    assert (again != pruned).nnz == 0


def test_freedom_trains_on_pruned_graph_and_scores_on_full(tiny, tmp_path):
    model = create_model("freedom", tiny, {}, cache_dir=str(tmp_path))
    graph = InteractionGraph.from_train(tiny.train)
    model.on_epoch_start(1, np.random.default_rng(0))
    assert model._train_adj is not None
    assert model._train_adj.nnz < graph.norm_adj.nnz
    full = model(graph)
    torch.testing.assert_close(full[0], model._propagate(graph.norm_adj)[0])


def test_separation_flag_on_the_command_line():
    cfg = load_config(None, ["model.name=vbpr", "model.separation.alignment=infonce"])
    assert cfg.model_params["separation"]["alignment"]["name"] == "infonce"
    assert cfg.model_params["separation"]["distancing"] == {"name": "hsic", "max_rows": 512}
    with pytest.raises(ConfigError, match=r"model\.separation is a section"):
        load_config(None, ["model.name=vbpr", "model.separation=true"])
    with pytest.raises(ConfigError, match=r"moved to .model\.separation\.distancing\.q_steps."):
        load_config(None, ["model.name=vbpr", "model.q_steps=3"])
    assert load_config(None, ["model.name=vbpr"]).model_params["separation"] is None
    with pytest.raises(ConfigError, match="this model always separates"):
        load_config(None, ["model.name=sea", "model.separation=null"])
