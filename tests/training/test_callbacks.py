"""Trainer callbacks: every epoch's row and every validation score reach them, in order,
after the epoch is checkpointed; a callback that raises stops training there."""

from __future__ import annotations

import pytest

import searec
from searec.config import load_config
from searec.training import Callback
from searec.training.checkpoint import LAST

SMALL = ["model.name=bpr", "data.synthetic.n_users=60", "data.synthetic.n_items=40",
         "data.synthetic.interactions_per_user=8", "train.progress=false",
         "train.eval_every=2"]


class Recorder(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, object]] = []

    def on_epoch_end(self, trainer, epoch, row):
        assert (trainer.run_dir / LAST).is_file()  # checkpointed before the hooks run
        self.seen.append(("epoch", epoch, sorted(row)))

    def on_evaluation(self, trainer, epoch, score):
        self.seen.append(("eval", epoch, score))


def test_callbacks_see_every_epoch_and_every_evaluation(tmp_path):
    recorder = Recorder()
    metrics = searec.train(load_config(None, [*SMALL, "train.epochs=4"]), tmp_path / "run",
                           log=lambda _m: None, callbacks=[recorder])
    kinds = [(kind, epoch) for kind, epoch, _ in recorder.seen]
    assert kinds == [("epoch", 1), ("epoch", 2), ("eval", 2), ("epoch", 3), ("epoch", 4),
                     ("eval", 4)]
    assert "loss" in recorder.seen[0][2] and "valid_recall@20" in recorder.seen[1][2]
    scores = [score for kind, _, score in recorder.seen if kind == "eval"]
    assert max(scores) == metrics["valid"]["recall@20"]


def test_a_callback_that_raises_stops_training_resumably(tmp_path):
    class Stop(Callback):
        def on_evaluation(self, trainer, epoch, score):
            raise KeyboardInterrupt

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        searec.train(load_config(None, [*SMALL, "train.epochs=6"]), run,
                     log=lambda _m: None, callbacks=[Stop()])
    assert (run / LAST).is_file() and not (run / "metrics.json").exists()
    assert searec.resume(run, log=lambda _m: None)["epochs_run"] == 6
