"""A loss term that turns NaN stops the run with a message naming it, keeping last.pt."""

import re

import torch

from searec.cli import main
from searec.models.base import LossResult
from searec.models.lightgcn import LightGCN


def test_nan_loss_term_is_named_and_last_checkpoint_kept(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    original = LightGCN.loss

    def diverging(self, graph, users, pos, neg):
        result = original(self, graph, users, pos, neg)
        calls["n"] += 1
        if calls["n"] > 10:  # a few epochs in
            reg = result.parts["reg"] * torch.tensor(float("nan"))
            result = LossResult(result.parts["bpr"] + reg, {**result.parts, "reg": reg})
        return result

    monkeypatch.setattr(LightGCN, "loss", diverging)
    out = tmp_path / "run"
    code = main(["train", "--model", "lightgcn", "--out", str(out), "--epochs", "20",
                 "data.synthetic.n_users=100", "data.synthetic.n_items=60",
                 "train.batch_size=512", "train.progress=false"])
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(r"loss term 'reg' became nan in epoch 3;", err), err
    assert "Traceback" not in err
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert not (out / "metrics.json").exists()
    saved = torch.load(out / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
