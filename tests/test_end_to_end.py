"""Whole runs on synthetic data: learned models must clearly beat popularity."""

import json

from searec.cli import main
from searec.config import load_config
from searec.runs import train

SYNTH = ["data.synthetic.n_users=600", "data.synthetic.n_items=400", "train.progress=false"]


def _run(tmp_path, model, *extra):
    cfg = load_config(None, [f"model.name={model}", *SYNTH, *extra])
    return train(cfg, tmp_path / model, log=lambda _: None)


def test_lightgcn_clearly_beats_pop(tmp_path):
    pop = _run(tmp_path, "pop")
    lgcn = _run(tmp_path, "lightgcn", "train.lr=0.01", "train.epochs=30", "train.patience=5")
    assert lgcn["test"]["recall@20"] > 2.0 * pop["test"]["recall@20"]
    assert lgcn["test"]["ndcg@20"] > 2.0 * pop["test"]["ndcg@20"]
    assert pop["epochs_run"] == 0


SPARSE = ["data.synthetic.n_users=600", "data.synthetic.n_items=800",
          "data.synthetic.interactions_per_user=8", "train.progress=false", "train.lr=0.005",
          "train.epochs=60", "train.patience=10"]


def test_sea_clearly_beats_lightgcn_and_bpr_on_planted_signal(tmp_path):
    """Sparse interactions, informative modalities: separation of content must pay off."""

    def run(model, *extra):
        cfg = load_config(None, [f"model.name={model}", *SPARSE, *extra])
        return train(cfg, tmp_path / model, log=lambda _: None)["test"]

    sea = run("sea")  # its defaults
    lgcn = run("lightgcn")
    bpr = run("bpr")
    assert sea["recall@20"] > 1.5 * lgcn["recall@20"]
    assert sea["recall@20"] > 1.5 * bpr["recall@20"]
    assert sea["ndcg@20"] > 1.5 * lgcn["ndcg@20"]


def test_sea_history_logs_every_loss_part(tmp_path):
    cfg = load_config(None, ["model.name=sea", *SYNTH, "train.epochs=2",
                             "model.separation.distancing=club",
                             "model.separation.distancing.q_steps=2"])
    train(cfg, tmp_path / "sea", log=lambda _: None)
    header = (tmp_path / "sea" / "history.csv").read_text().splitlines()[0].split(",")
    for col in ("loss", "loss_bpr", "loss_align", "loss_distance", "loss_distance_image",
                "loss_distance_text", "loss_distance_audio", "loss_q_nll", "valid_recall@20"):
        assert col in header, col


def test_clustered_generator_is_seeded_linear_and_learnable(tmp_path):
    from searec.data import make_synthetic

    small = {"generator": "clustered", "n_users": 600, "n_items": 400, "n_clusters": 32}
    a, b = make_synthetic(**small), make_synthetic(**small)
    assert (a.train != b.train).nnz == 0 and (a.test != b.test).nnz == 0
    assert all((a.modalities[m] == b.modalities[m]).all() for m in a.modalities)
    more_users = make_synthetic(**{**small, "n_users": 900})
    assert all((a.modalities[m] == more_users.modalities[m]).all() for m in a.modalities)
    st = a.stats()
    # about interactions_per_user per user (repeated draws of a pair count once)
    assert 0.8 * 20 * 600 < st["interactions"] <= 1.05 * 20 * 600
    assert st["valid_users"] == st["test_users"] == 600 and st["cold_users"] == 0
    recall = {}
    for model in ("pop", "lightgcn"):
        main(["train", "--model", model, "--out", str(tmp_path / model),
              *[f"data.synthetic.{k}={v}" for k, v in small.items()],
              "train.epochs=30", "train.lr=0.01", "train.progress=false"])
        recall[model] = json.loads((tmp_path / model / "metrics.json").read_text())[
            "test"]["recall@20"]
    assert recall["lightgcn"] > 2 * recall["pop"]


def test_mi_losses_see_at_most_mi_max_items(tiny):
    import torch

    from searec.graphs import InteractionGraph
    from searec.models import create_model

    model = create_model("sea", tiny, {"separation": {"mi_max_items": 16, "mi_items": "all",
                                                    "distancing": {"name": "club", "q_steps": 1}}})
    seen = []
    original = model.separation.losses
    model.separation.losses = lambda p: seen.append(next(iter(p.values())).shape[0]) or \
        original(p)
    graph = InteractionGraph.from_train(tiny.train)
    users = torch.arange(8)
    model.loss(graph, users, torch.arange(8), torch.arange(8, 16))
    assert seen == [16]
