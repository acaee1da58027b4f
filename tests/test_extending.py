"""docs/extending.md's worked examples, run as written: each file is loaded as a plugin,
passes the shared contract suite and works from the command line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from searec.cli import main
from searec.data import make_synthetic
from searec.data.tables import read_table
from searec.errors import DataError
from searec.io import read_csv_rows
from searec.testing import check_distancing, check_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
SMALL = ["data.synthetic.n_users=80", "data.synthetic.n_items=50",
         "data.synthetic.interactions_per_user=8", "train.progress=false", "train.epochs=2"]


def example(name: str) -> str:
    """The code block under ``<!-- example: name -->`` in docs/extending.md."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```",
                      DOC.read_text(), re.S)
    assert found, f"docs/extending.md has no example {name}"
    return found.group(1)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Write a docs example to a file, with every registry restored after the test."""
    from contextlib import ExitStack

    from searec.data.tables import FORMATS
    from searec.models.base import MODELS
    from searec.separation import ALIGNMENTS, DISTANCINGS

    scopes = ExitStack()
    for registry in (MODELS, FORMATS, ALIGNMENTS, DISTANCINGS):
        scopes.enter_context(registry.scoped())

    def write(name: str) -> Path:
        path = tmp_path / name
        path.write_text(example(name))
        monkeypatch.delitem(sys.modules, f"searec_plugin_{path.stem}", raising=False)
        return path

    with scopes:
        yield write
    for key in [k for k in sys.modules if k.startswith("searec_plugin_")]:
        del sys.modules[key]


def test_the_backbone_example(plugin, tmp_path, capsys):
    from searec.models import get_model_class, registry
    from searec.plugins import load_plugin

    path = plugin("feature_gcn.py")
    load_plugin(str(path))
    assert "feature_gcn" in registry()
    dataset = make_synthetic(n_users=100, n_items=60, interactions_per_user=10,
                             modalities={"image": 12, "text": 8}, seed=3)
    check_model("feature_gcn", {}, dataset, tmp_path)
    check_model("feature_gcn", {"separation": {"distancing": {"name": "club", "q_steps": 2}}},
                dataset, tmp_path)
    assert get_model_class("feature_gcn").summary().startswith("LightGCN over ID")
    run = tmp_path / "run"
    assert main(["--plugin", str(path), "train", "--model", "feature_gcn", "--separation",
                 "sea", "--out", str(run), *SMALL]) == 0, capsys.readouterr().err
    columns = read_csv_rows(run / "history.csv")[0]
    # the default distancing (hsic) fits nothing beside the loss: no q_nll column
    assert {"loss_bpr", "loss_align", "loss_distance"} <= set(columns)
    assert "loss_q_nll" not in columns


def test_the_estimator_example(plugin, tmp_path, capsys):
    from searec.plugins import load_plugin
    from searec.separation import distancing_registry

    path = plugin("cross_correlation.py")
    load_plugin(str(path))
    check_distancing(distancing_registry()["cross_correlation"])
    run = tmp_path / "run"
    assert main(["--plugin", str(path), "train", "--out", str(run), *SMALL,
                 "model.separation.distancing=cross_correlation",
                 "model.separation.distancing.eps=1e-5"]) == 0, capsys.readouterr().err
    assert "eps: 1.0e-05" in (run / "config.yaml").read_text()
    assert main(["--plugin", str(path), "train", "--out", str(tmp_path / "typo"), *SMALL,
                 "model.separation.distancing=cross_correlation",
                 "model.separation.distancing.esp=1e-5"]) == 2
    assert "did you mean 'eps'?" in capsys.readouterr().err
    rows = read_csv_rows(run / "history.csv")
    assert all(0.0 <= float(r["loss_distance"]) <= 1.0 for r in rows)
    assert "loss_q_nll" not in rows[0]  # nothing of its own to fit


def test_the_data_format_example(plugin, tmp_path, capsys):
    path = plugin("movielens_dat.py")
    rng = np.random.default_rng(0)
    lines = [f"{u}::{i}::{rng.integers(1, 6)}::{978300000 + 60 * n}"
             for n, (u, i) in enumerate((u, i) for u in range(1, 41)
                                        for i in rng.choice(30, 12, replace=False) + 1)]
    ratings = tmp_path / "ratings.dat"
    ratings.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ml"
    assert main(["--plugin", str(path), "prepare", "csv", "--interactions", str(ratings),
                 "--rating-col", "rating", "--time-col", "timestamp", "--out", str(out)]) == 0
    inter = pd.read_csv(out / "ml.inter", sep="\t")
    assert len(inter) == len(lines) and set(inter["x_label"]) == {0, 1, 2}
    # the format's contract: text columns back, a bad file is a DataError naming it
    frame = read_table(ratings)
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame["user"].map(type).eq(str).all() and frame.iloc[0]["user"] == "1"
    broken = tmp_path / "broken.dat"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match=r"broken\.dat"):
        read_table(broken)
    capsys.readouterr()
    # without the plugin, the extension is unknown, and the error lists what is known
    from searec.data.tables import FORMATS

    del FORMATS.entries[".dat"]  # scoped: the fixture restores the registry
    assert main(["prepare", "csv", "--interactions", str(ratings), "--out",
                 str(tmp_path / "x")]) == 2
    assert "unknown table format '.dat'" in capsys.readouterr().err
