"""The SEA model: what each loss reaches, modality handling, the kNN mix."""

import warnings

import numpy as np
import pytest
import torch

from searec.config import load_config
from searec.data import make_synthetic
from searec.errors import ConfigError
from searec.graphs import InteractionGraph
from searec.models import create_model
from searec.separation import SeparationParams
from searec.training import main_parameters


def _sea(dataset, tmp_path, **params):
    """SEA with ``params``; separation keys go to its nested section (2 q steps)."""
    torch.manual_seed(0)
    sep = {"distancing": {"name": "club", "q_steps": 2}} | {
        k: v for k, v in params.items() if k in SeparationParams.model_fields}
    own = {k: v for k, v in params.items() if k not in SeparationParams.model_fields}
    return create_model("sea", dataset, {**own, "separation": sep}, cache_dir=str(tmp_path))


def _batch(dataset, n=64):
    users, items = dataset.train_pairs()
    idx = np.random.default_rng(0).choice(len(users), n, replace=False)
    neg = np.random.default_rng(1).integers(0, dataset.n_items, n)
    return torch.from_numpy(users[idx]), torch.from_numpy(items[idx]), torch.from_numpy(neg)


def _touched(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


def test_each_loss_reaches_what_it_should(tiny, tmp_path):
    model = _sea(tiny, tmp_path)
    graph = InteractionGraph.from_train(tiny.train)
    parts = model.loss(graph, *_batch(tiny)).logged()
    bpr = _touched(model, parts["bpr"])
    assert any(n.startswith("encoders.") for n in bpr)
    assert "user_modality_weight" in bpr
    assert any(n.startswith("separation.split.") for n in bpr)
    assert not any(n.startswith(("separation.alignment", "separation.distancing")) for n in bpr)
    align = _touched(model, parts["align"])
    assert align
    assert all(n.startswith(("separation.split.", "separation.alignment.")) for n in align)
    dist = _touched(model, parts["distance"])
    assert dist
    assert all(n.startswith(("separation.split.", "separation.distancing.")) for n in dist)
    assert not any(".q." in n for n in bpr | align | dist)  # q is trained by its own optimiser
    (objective,) = model.auxiliary_objectives()
    main = {id(p) for p in main_parameters(model, [objective])}
    assert objective.parameters and all(id(p) not in main for p in objective.parameters)


def test_single_modality_runs_with_alignment_off(tmp_path):
    ds = make_synthetic(n_users=60, n_items=50, modalities={"text": 8}, seed=2)
    with pytest.warns(UserWarning, match="alignment across modalities is off"):
        model = _sea(ds, tmp_path)
    parts = model.loss(InteractionGraph.from_train(ds.train), *_batch(ds, 32)).logged()
    assert "align" not in parts and "distance_text" in parts


def test_three_modalities_without_warnings(tmp_path):
    ds = make_synthetic(n_users=60, n_items=50, seed=2)
    assert len(ds.modalities) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = _sea(ds, tmp_path, embedding_dim=24)
    user_rep, item_rep = model(InteractionGraph.from_train(ds.train))
    assert user_rep.shape == (60, 3 * 24) and item_rep.shape == (50, 3 * 24)


def test_knn_weights_must_name_every_modality(tiny, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown \['audio'\], missing \['text'\]"):
        _sea(tiny, tmp_path, knn_weights={"image": 0.1, "audio": 0.9})
    model = _sea(tiny, tmp_path, knn_weights={"image": 0.1, "text": 0.9})
    # Rows of the mixed, normalised graph: each kNN row sums to 1 before the mix.
    assert model.item_graph.shape == (tiny.n_items, tiny.n_items)


def test_dataset_without_features_is_refused(tmp_path):
    ds = make_synthetic(n_users=40, n_items=30, modalities={}, seed=0)
    with pytest.raises(ConfigError, match="needs at least 1 modality"):
        create_model("sea", ds, {})


def test_reference_preset_loads_and_differs_where_documented():
    ref = load_config("preset:reference", ["model.knn_weights={image: 0.1, audio: 0.9}"])
    default = load_config(None, ["model.name=sea"])
    diff = {k for k, v in ref.model_params.items() if default.model_params[k] != v}
    assert diff == {"separation", "bpr_log2", "knn_weights", "embedding_dim"}
    ref_sep, default_sep = ref.model_params["separation"], default.model_params["separation"]
    assert {k for k, v in ref_sep.items() if default_sep[k] != v} == {
        "pair_order", "distance_weight", "mi_max_items", "mi_items", "distancing"}
    # the authors' CLUB, where searec's default distancing is HSIC
    assert ref_sep["distancing"]["name"] == "club" and default_sep["distancing"]["name"] == "hsic"
    club = load_config(None, ["model.name=sea", "model.separation.distancing=club"])
    club_defaults = club.model_params["separation"]["distancing"]
    assert {k for k, v in ref_sep["distancing"].items() if club_defaults[k] != v} == {
        "q_pairs", "q_steps"}
    assert ref_sep["alignment"] == default_sep["alignment"]
    assert ref_sep["pair_order"] == ["text", "image"]  # the authors' directions
    assert ref.model_params["embedding_dim"] == 64 and default.model_params["embedding_dim"] == 128
    assert ref.train.lr == 1e-4 and default.train.lr == 3e-4


@pytest.mark.parametrize("proj_dim", [None, 4])
def test_first_layer_through_the_projection_equals_the_two_layers(tiny, tmp_path, proj_dim):
    # With MI losses on the batch's items, layer(Linear(f)) is computed as one linear map
    # of f (when that is cheaper): same values and gradients as the two products.
    model = _sea(tiny, tmp_path, proj_dim=proj_dim)
    layers = {m: enc.mlp[0] for m, enc in model.encoders.items()}
    params = [p for m in model.names
              for p in (*layers[m].parameters(), *model.separation.split[m].parameters())]
    inputs = model.item_inputs()
    assert all(x.projected is None for x in inputs.values())  # folded, p_m never built
    got = {m: inputs[m].through(layers[m]) for m in model.names}
    grads_got = torch.autograd.grad(sum(x.pow(2).sum() for x in got.values()), params)
    want = {m: layers[m](x) for m, x in model.modality_inputs().items()}
    grads_want = torch.autograd.grad(sum(x.pow(2).sum() for x in want.values()), params)
    for m in model.names:
        torch.testing.assert_close(got[m], want[m], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_got, grads_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_separation_losses_on_batch_items_need_no_full_projection(tiny, tmp_path):
    model = _sea(tiny, tmp_path, alignment="infonce", distancing="neg_l2")  # deterministic
    _, pos, neg = _batch(tiny)
    from_features = model.separation_losses(None, pos, neg)
    from_all = model.separation_losses(model.modality_inputs(), pos, neg)
    for name, value in from_all.parts.items():
        torch.testing.assert_close(from_features.parts[name], value)
    torch.testing.assert_close(from_features.total, from_all.total)
    everything = _sea(tiny, tmp_path, mi_items="all")
    p = everything.item_inputs()["image"].projected
    assert p is not None and p.shape[0] == tiny.n_items


def test_recompute_gives_the_same_loss_and_gradients(tiny, tmp_path):
    # recompute only changes what is kept for the backward pass, not what is computed;
    # it also encodes modality by modality, so this checks the default side-by-side
    # propagation (one product for every modality) against the per-modality one
    users, pos, neg = _batch(tiny)
    graph = InteractionGraph.from_train(tiny.train)
    results = []
    for recompute in (False, True):
        model = _sea(tiny, tmp_path, alignment="infonce", distancing="neg_l2",
                     recompute=recompute)
        loss = model.loss(graph, users, pos, neg).loss
        model.zero_grad(set_to_none=True)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()
                                        if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and any("user_pref" in n for n in grads_a)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, msg=name)


def test_bpr_reads_the_weighted_users_it_never_forms(tiny, tmp_path):
    # training weights only the batch's user rows inside BPR; the loss and every
    # gradient must equal BPR on the formed representations that inference uses
    from searec.losses import bpr_dot_loss

    users, pos, neg = _batch(tiny)
    graph = InteractionGraph.from_train(tiny.train)
    model = _sea(tiny, tmp_path)
    got = model.ranking_loss(graph, users, pos, neg)["bpr"]
    user_rep, item_rep = model(graph)
    want = bpr_dot_loss(user_rep[users], item_rep[pos], item_rep[neg])
    torch.testing.assert_close(got, want)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(got, params, allow_unused=True)
    wanted = torch.autograd.grad(want, params, allow_unused=True)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(g is not None for n, g in zip(names, grads, strict=True)
               if n == "user_modality_weight")
    for name, a, b in zip(names, grads, wanted, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, msg=name)


@pytest.mark.filterwarnings("ignore:only one modality")
def test_reference_preset_on_one_modality_is_a_config_error(make_folder, tmp_path, capsys):
    """The reference's shared q is fitted to pairs across modalities: with one modality the
    preset stops with a config error that says what to change (it used to fail with an
    AttributeError at the first batch)."""
    from searec.cli import main

    rng = np.random.default_rng(0)
    folder = make_folder(feats={"image": rng.random((4, 3)).astype(np.float32)})
    out = tmp_path / "run"
    args = ["train", "--config", "preset:reference", "--data", str(folder), "--out", str(out),
            "model.knn_weights={image: 1.0}", "train.progress=false", "train.epochs=1",
            "train.valid_metric=recall@2", "eval.topk=[2]", f"cache_dir={tmp_path / 'c'}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "config key 'model.separation.distancing.q_pairs'" in err, err
    assert "q_pairs=within" in err, err
    assert not out.exists()
    assert main([*args, "model.separation.distancing.q_pairs=within"]) == 0
