"""searec.recommend: the Python API behind `searec recommend`, the same rows either way."""

import numpy as np
import pandas as pd
import pytest
import torch

import searec
from searec.cli import main
from searec.config import load_config
from searec.errors import DataError, SearecError
from searec.inference.recommend import read_user_ids, user_indices, write_recommendations
from searec.runs import load_run

SMALL = ["data.synthetic.n_users=60", "data.synthetic.n_items=40",
         "data.synthetic.interactions_per_user=8", "train.progress=false", "train.epochs=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "run"
    searec.train(load_config(None, ["model.name=bpr", *SMALL]), out, log=lambda _m: None)
    return out


def test_python_and_command_line_give_the_same_rows(run, tmp_path):
    frame = searec.recommend(run, k=5)
    assert list(frame.columns) == ["userID", "rank", "itemID", "score"]  # no id maps
    assert len(frame) == 60 * 5 and frame["rank"].tolist()[:5] == [1, 2, 3, 4, 5]
    _, dataset, _ = load_run(run)
    for user, items in frame.groupby("userID")["itemID"]:
        assert not set(items) & set(dataset.train[user].indices)  # training items excluded
    out = tmp_path / "top.csv"
    assert main(["recommend", "--run", str(run), "--k", "5", "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), frame, check_dtype=False, atol=1e-5)
    seen = searec.recommend(run, users=[0, 3], k=5, include_seen=True)
    assert seen["userID"].unique().tolist() == [0, 3]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_written_formats_read_back(run, tmp_path, suffix):
    frame = searec.recommend(run, users=["1", "2"], k=3)
    path = write_recommendations(frame, tmp_path / f"r{suffix}")
    back = (pd.read_parquet(path) if suffix == ".parquet"
            else pd.read_csv(path, sep="," if suffix == ".csv" else "\t"))
    np.testing.assert_array_equal(back["itemID"], frame["itemID"])


def test_bad_requests_are_clear_errors(run, tmp_path):
    _, dataset, _ = load_run(run)
    with pytest.raises(SearecError, match=r"expected a user index in 0\.\.59, got '60'"):
        user_indices(["60"], dataset)
    with pytest.raises(SearecError, match="k must be at least 1"):
        searec.recommend(run, k=0)
    with pytest.raises(SearecError, match="unknown output format"):
        write_recommendations(pd.DataFrame(), tmp_path / "r.json")
    ids = tmp_path / "users.txt"
    ids.write_text("user\n1\nbob\n")
    with pytest.raises(DataError, match=r"users.txt, line 3: expected a user index"):
        read_user_ids(ids, dataset)


def test_score_users_writes_into_a_matching_buffer():
    """``score_users(users, out=...)`` fills and returns the buffer when its device and
    dtype match the representations', and otherwise returns scores of its own."""
    from searec.models import get_model_class

    model = get_model_class("bpr")(6, 5)
    gen = torch.Generator().manual_seed(0)
    model.use_representations(torch.randn(6, 4, generator=gen), torch.randn(5, 4, generator=gen))
    users = torch.tensor([4, 0, 2])
    expected = model.score_users(users)
    out = torch.empty(3, 5)
    assert model.score_users(users, out=out) is out
    torch.testing.assert_close(out, expected)
    wide = torch.empty(3, 5, dtype=torch.float64)
    got = model.score_users(users, out=wide)
    assert got is not wide and got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    ids, _ = model.recommend([4, 0, 2], k=5)
    assert (ids == torch.argsort(expected, dim=1, descending=True, stable=True).numpy()).all()
