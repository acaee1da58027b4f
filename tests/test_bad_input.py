"""Bad input through the command line: exit status 2, one clear line naming the file /
line / key, no traceback, and no run folder left behind."""

import math
import os

import numpy as np
import pytest

from searec.cli import main
from searec.io import read_csv_rows
from tests.data.test_mmrec import BAD_FEATURES, BAD_INTER

SMALL = ["train.progress=false", "train.epochs=1"]


def _assert_clean_failure(capsys, out, *expected):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("searec: error: ")
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not out.exists(), "a failed run must not leave a run folder"


@pytest.mark.parametrize("case", BAD_INTER, ids=[c[0] for c in BAD_INTER])
def test_bad_interaction_file(make_folder, tmp_path, capsys, case):
    _, kwargs, expected, line = case
    folder = make_folder(**kwargs)
    out = tmp_path / "run"
    assert main(["train", "--model", "bpr", "--data", str(folder), "--out", str(out), *SMALL]) == 2
    where = "toy.inter" + (f", line {line}" if line else "")
    _assert_clean_failure(capsys, out, where, expected)


@pytest.mark.parametrize("case", BAD_FEATURES, ids=[c[0] for c in BAD_FEATURES])
def test_bad_feature_file(make_folder, tmp_path, capsys, case):
    _, arr, expected = case
    folder = make_folder(feats={"image": arr})
    out = tmp_path / "run"
    assert main(["train", "--model", "sea", "--data", str(folder), "--out", str(out), *SMALL]) == 2
    _assert_clean_failure(capsys, out, expected)


@pytest.mark.parametrize("model", ["sea", "freedom", "vbpr"])
def test_items_without_features_in_a_modality_are_accepted(make_folder, tmp_path, capsys,
                                                            model):
    """A missing image (an all-zero row) passes data check and trains without NaN: data
    check and train run the same dataset checks."""
    rng = np.random.default_rng(0)
    image = rng.random((4, 3)).astype(np.float32)
    image[1] = 0.0
    folder = make_folder(feats={"image": image, "text": rng.random((4, 5)).astype(np.float32)})
    assert main(["data", "check", str(folder)]) == 0
    assert "image 1 (all-zero rows)" in capsys.readouterr().out
    out = tmp_path / "run"
    args = ["train", "--model", model, "--data", str(folder), "--out", str(out), *SMALL,
            f"cache_dir={tmp_path / 'cache'}", "train.valid_metric=recall@2", "eval.topk=[2]",
            "train.epochs=2"]
    if model != "sea":
        args.append("--separation=sea")
    assert main(args) == 0, capsys.readouterr().err
    rows = read_csv_rows(out / "history.csv")
    assert all(math.isfinite(float(v)) for r in rows for k, v in r.items() if v != "")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.patiense=3", "unknown config key 'train.patiense' (did you mean "
                             "'train.patience'?)"),
        ("train.epochs=many", "config key 'train.epochs'"),
        ("train.lr=-0.01", "config key 'train.lr': must be a number > 0"),
        ("eval.topk=[2, 500]", "config key 'eval.topk': K=500 is larger than the 4 items"),
        ("model.n_layer=2", "unknown config key 'model.n_layer' (did you mean 'model.n_layers'?)"),
        ("train.device=gpu", "config key 'train.device'"),
    ],
)
def test_bad_config(make_folder, tmp_path, capsys, override, expected):
    folder = make_folder()
    out = tmp_path / "run"
    args = ["train", "--model", "lightgcn", "--data", str(folder), "--out", str(out), *SMALL,
            "train.valid_metric=recall@2", "eval.topk=[1, 2]", override]
    assert main(args) == 2
    _assert_clean_failure(capsys, out, expected)


def test_bad_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lr: 0.01\n  batch: 12\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "c.yaml", "unknown config key 'train.batch' (did you "
                          "mean 'train.batch_size'?)")


def test_output_under_a_file(make_folder, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "run"
    assert main(["train", "--model", "pop", "--data", str(make_folder()), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "is a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(make_folder, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = locked / "run"
    assert main(["train", "--model", "pop", "--data", str(make_folder()), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "not writable")


def test_resume_without_checkpoint(tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(["train", "--resume", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "not a searec run directory" in err and "Traceback" not in err


def test_missing_dataset_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "dataset folder does not exist")


def test_users_only_in_valid_or_test(make_folder, tmp_path, capsys):
    from tests.conftest import valid_rows

    folder = make_folder(lines=[*valid_rows(), "3\t0\t1\t0\t2"])
    out = tmp_path / "run"
    assert main(["train", "--model", "bpr", "--data", str(folder), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "1 users have valid/test interactions but none in "
                          "training (first: user 3)", "data.cold_users=drop")


@pytest.mark.parametrize("damage", ["text", "truncated", "pickle"])
def test_feature_file_that_is_not_a_valid_npy(make_folder, tmp_path, capsys, damage):
    folder = make_folder()
    path = folder / "image_feat.npy"
    if damage == "text":
        path.write_text("0.1,0.2,0.3\n")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-7])
    else:
        np.save(path, np.array([{"a": 1}] * 4, dtype=object), allow_pickle=True)
    out = tmp_path / "run"
    assert main(["train", "--model", "sea", "--data", str(folder), "--out", str(out)]) == 2
    _assert_clean_failure(capsys, out, "image_feat.npy: not a readable .npy array")
