"""train.lr_schedule=plateau: the learning rate halves when validation stalls, and resumes."""

import pytest

from searec.cli import main
from searec.config import load_config
from searec.errors import ConfigError
from searec.io import read_csv_rows
from tests.conftest import SMALL

# BPR at a high rate on tiny data peaks within a few epochs, so validation stalls early
PLATEAU = ["--model", "bpr", "--seed", "3", "train.lr=0.2", "train.patience=100",
           "train.lr_schedule=plateau", "train.lr_patience=1", "train.lr_factor=0.5"]


def _history(run) -> list[dict[str, str]]:
    return read_csv_rows(run / "history.csv")


def _expected_lrs(scores: list[float], lr: float, factor: float, patience: int,
                  min_lr: float = 0.0) -> list[float]:
    """The rate each epoch trains with, by the rule the docs state."""
    lrs, best, bad = [], float("-inf"), 0
    for score in scores:
        lrs.append(lr)
        if score > best:
            best, bad = score, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = max(lr * factor, min_lr), 0
    return lrs


def test_plateau_halves_the_rate_exactly_when_validation_stalls(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *PLATEAU, *SMALL, "--epochs", "16", "--out", str(run)]) == 0
    rows = _history(run)
    scores = [float(r["valid_recall@20"]) for r in rows]
    lrs = [float(r["lr"]) for r in rows]
    assert lrs == pytest.approx(_expected_lrs(scores, 0.2, 0.5, 1), rel=1e-12)
    assert min(lrs) <= 0.05  # at least two decays happened, so the check had teeth


def test_plateau_never_goes_below_min_lr(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *PLATEAU, *SMALL, "train.lr_patience=0", "train.min_lr=0.1",
                 "--epochs", "16", "--out", str(run)]) == 0
    lrs = [float(r["lr"]) for r in _history(run)]
    assert min(lrs) == pytest.approx(0.1) and lrs[0] == pytest.approx(0.2)


def test_constant_schedule_writes_no_lr_column(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--model", "bpr", "--epochs", "2", *SMALL, "--out", str(run)]) == 0
    assert "lr" not in _history(run)[0]


def test_resume_restores_the_schedule(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", *PLATEAU, *SMALL, "--epochs", "18", "--out", str(full)]) == 0
    assert main(["train", *PLATEAU, *SMALL, "--epochs", "15", "--out", str(part)]) == 0
    before = _history(part)
    assert float(before[-1]["lr"]) < 0.2  # interrupted after a decay: state to restore
    cfg = (part / "config.yaml").read_text().replace("epochs: 15", "epochs: 18")
    (part / "config.yaml").write_text(cfg)
    assert main(["train", "--resume", str(part)]) == 0
    a, b = _history(full), _history(part)
    assert len(a) == len(b) == 18
    # the rates and validation scores match exactly; losses to float noise, because
    # multi-threaded CPU scatter-adds differ in the last bits from run to run
    exact = [k for k in a[0] if k == "lr" or k.startswith("valid_")]
    assert [[r[k] for k in exact] for r in a] == [[r[k] for k in exact] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert float(ra["loss"]) == pytest.approx(float(rb["loss"]), rel=1e-4)


@pytest.mark.parametrize("override, words", [
    ("train.lr_schedule=cosine", ["train.lr_schedule", "constant", "plateau"]),
    ("train.lr_factor=1", ["train.lr_factor", "less than 1"]),
    ("train.lr_patience=-1", ["train.lr_patience", "greater than or equal to 0"]),
])
def test_bad_schedule_settings_name_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    for word in words:
        assert word in str(err.value)
