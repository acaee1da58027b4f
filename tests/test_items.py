"""searec items add: new items scored from their features by the trained model, versioned in
the run folder, used by recommend and serve; bad additions change nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import searec
from searec.cli import main
from searec.config import load_config
from searec.errors import DataError, SearecError
from searec.inference.items import CatalogueError, add_items, current_version, load_catalogue
from searec.runs import load_run
from searec.training.checkpoint import LOCK

# planted-factor data: features carry the items' latent factors, so an item's features
# say which users want it
SMALL = ["data.synthetic.n_users=150", "data.synthetic.n_items=120",
         "data.synthetic.interactions_per_user=12", "data.synthetic.modalities={image: 24, "
         "text: 16}", "train.progress=false", "train.lr=0.01"]


def _train(root: Path, model: str, epochs: int, *extra: str) -> Path:
    run = root / model
    searec.train(load_config(None, [f"model.name={model}", f"train.epochs={epochs}",
                                    *SMALL, *extra]), run, log=lambda _m: None)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("items")
    return {"sea": _train(root, "sea", 30, "data.feature_norm=standardize"),
            "freedom": _train(root, "freedom", 30),
            "lightgcn": _train(root, "lightgcn", 2)}


def _snapshot(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != LOCK}


def _copies(run: Path, items: list[int]) -> dict[str, np.ndarray]:
    """Raw features of existing items (as in the data before feature_norm)."""
    cfg, _, _ = load_run(run)
    raw = searec.load_dataset(cfg.data.model_copy(update={"feature_norm": "none"}))
    return {m: f[items].copy() for m, f in raw.modalities.items()}


@pytest.mark.parametrize("model", ["sea", "freedom"])
def test_new_items_get_representations_from_their_features(runs, tmp_path, model):
    """Copies of existing items' features, added under new ids, are scored by users much as
    the originals' feature part is: their score vectors correlate with the originals'. The
    trained users and items keep their representations exactly."""
    run = tmp_path / model
    run.mkdir()
    for p in runs[model].iterdir():
        if p.is_file():
            (run / p.name).write_bytes(p.read_bytes())
    _, dataset, model_before = load_run(run)
    users_before, items_before = (t.clone() for t in model_before.representations())
    originals = list(range(0, 40, 2))
    manifest = add_items(run, _copies(run, originals), [f"new{i}" for i in originals],
                         log=lambda _m: None)
    assert manifest["version"] == 1 and manifest["items"] == dataset.n_items + 20
    assert current_version(run) == 1
    _, extended, served = load_catalogue(run)
    users_after, items_after = served.representations()
    assert extended.n_items == dataset.n_items + 20 and items_after.shape[0] == 140
    torch.testing.assert_close(users_after, users_before)
    torch.testing.assert_close(items_after[: dataset.n_items], items_before)
    scores = (users_after @ items_after.T).numpy()
    corr = [np.corrcoef(scores[:, i], scores[:, dataset.n_items + j])[0, 1]
            for j, i in enumerate(originals)]
    assert np.median(corr) > 0.5, corr
    # a second addition is a new version holding both batches
    add_items(run, _copies(run, [1, 3]), ["late1", "late3"], log=lambda _m: None)
    assert current_version(run) == 2
    _, again, _ = load_catalogue(run)
    assert list(again.item_map.originals[-3:]) == ["new38", "late1", "late3"]


def test_recommend_and_cli_use_the_current_item_table(runs, tmp_path):
    run = tmp_path / "sea"
    run.mkdir()
    for p in runs["sea"].iterdir():
        if p.is_file():
            (run / p.name).write_bytes(p.read_bytes())
    feats = _copies(run, [5, 6, 7])
    files = {}
    for m, rows in feats.items():
        files[m] = tmp_path / f"{m}.npy"
        np.save(files[m], rows)
    ids = tmp_path / "ids.txt"
    ids.write_text("fresh5\nfresh6\nfresh7\n")
    assert main(["items", "add", "--run", str(run), "--features", f"image={files['image']}",
                 "--features", f"text={files['text']}", "--ids", str(ids)]) == 0
    frame = searec.recommend(run, k=120)
    assert {"fresh5", "fresh6", "fresh7"} <= set(frame["item_id"].astype(str))
    assert list(frame.columns) == ["userID", "rank", "item_id", "score"]


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda f, i: ({**f, "audio": f["image"]}, i), CatalogueError,
     "modality 'audio' is not one the model reads"),
    (lambda f, i: ({"image": f["image"]}, i), CatalogueError,
     "no features for modality 'text'"),
    (lambda f, i: ({**f, "image": f["image"][:, :5]}, i), CatalogueError,
     "5 columns, but the run's 'image' features have 24"),
    (lambda f, i: ({**f, "image": np.where(np.arange(24) == 3, np.nan, f["image"])}, i),
     CatalogueError, "rows hold NaN or inf"),
    (lambda f, i: (f, ["a", "b", "a"]), CatalogueError, "'a' appears twice"),
    (lambda f, i: (f, ["a", "7", "c"]), CatalogueError, "'7' is already in the catalogue"),
    (lambda f, i: (f, ["a", "b"]), CatalogueError, r"expected shape \(2, 24\)"),
    (lambda f, i: (f, []), CatalogueError, "no new item ids"),
    (lambda f, i: (f, ["a", "b\nc", "d"]), CatalogueError, "holds a tab or line break"),
])
def test_bad_additions_are_clear_errors_and_change_nothing(runs, change, error, message):
    run = runs["sea"]
    before = _snapshot(run)
    feats, ids = change(_copies(run, [0, 1, 2]), ["a", "b", "c"])
    with pytest.raises(error, match=message):
        add_items(run, feats, ids, log=lambda _m: None)
    assert _snapshot(run) == before


def test_models_without_features_and_bad_files_are_refused(runs, tmp_path):
    with pytest.raises(CatalogueError, match="'lightgcn' scores items from interactions"):
        add_items(runs["lightgcn"], {}, ["x"], log=lambda _m: None)
    ids = tmp_path / "ids.txt"
    ids.write_text("x\n\ny\n")
    with pytest.raises(DataError, match=r"ids.txt, line 2: empty id"):
        add_items(runs["sea"], {}, ids, log=lambda _m: None)
    bad = tmp_path / "image.npy"
    np.save(bad, np.ones((2, 24), dtype=np.float32))
    ids.write_text("x\ny\nz\n")
    with pytest.raises(DataError, match="has 2 rows"):
        add_items(runs["sea"], {"image": bad, "text": bad}, ids, log=lambda _m: None)
    assert main(["items", "add", "--run", str(runs["sea"]), "--features", "image",
                 "--ids", str(ids)]) == 2
    with pytest.raises(SearecError):
        add_items(tmp_path / "nothing", {}, ["x"])


@pytest.mark.parametrize("name", sorted(n for n, c in searec.registry().items()))
def test_every_model_either_adds_items_or_says_it_cannot(tmp_path, name):
    """The contract of ``scores_new_items``: a model that claims it gets finite
    representations for new items, the trained ones unchanged; one that does not is
    refused with a clear error."""
    run = tmp_path / name
    searec.train(load_config(None, [f"model.name={name}", "train.epochs=1",
                                    "data.synthetic.n_users=60", "data.synthetic.n_items=40",
                                    "data.synthetic.interactions_per_user=8",
                                    "data.synthetic.modalities={image: 8, text: 6}",
                                    "train.progress=false"]), run, log=lambda _m: None)
    feats = _copies(run, [0, 1, 2])
    cls = searec.get_model_class(name)
    if not cls.scores_new_items:
        with pytest.raises(CatalogueError, match="scores items from interactions only"):
            add_items(run, feats, ["n0", "n1", "n2"], log=lambda _m: None)
        return
    _, _, before = load_run(run)
    trained_items = before.representations()[1].clone()
    add_items(run, feats, ["n0", "n1", "n2"], log=lambda _m: None)
    _, extended, served = load_catalogue(run)
    items = served.representations()[1]
    assert items.shape[0] == 43 and torch.isfinite(items).all()
    torch.testing.assert_close(items[:40], trained_items)
    ids, _ = served.recommend([0, 1], k=43, user_items=extended.train)
    assert ids.max() >= 40  # the new items are ranked with the rest
