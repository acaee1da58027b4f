"""Whole runs on synthetic data: learned models must clearly beat popularity."""

from searec.config import load_config
from searec.training import train

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
