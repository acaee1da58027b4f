from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searec.data import Dataset, make_synthetic

HEADER = "userID\titemID\trating\ttimestamp\tx_label"
# overrides for a quick command-line run on a small embedded synthetic dataset
SMALL = ["data.synthetic.n_users=150", "data.synthetic.n_items=90",
         "data.synthetic.interactions_per_user=12", "train.progress=false"]


@pytest.fixture(scope="session")
def tiny() -> Dataset:
    """A small synthetic dataset for fast model and contract tests."""
    return make_synthetic(n_users=120, n_items=80, interactions_per_user=10,
                          modalities={"image": 16, "text": 12}, seed=1)


def valid_rows() -> list[str]:
    """A well-formed 3-user, 4-item interaction table (every split non-empty)."""
    return [
        "0\t0\t1\t0\t0", "0\t1\t1\t0\t0", "0\t2\t1\t0\t1", "0\t3\t1\t0\t2",
        "1\t1\t1\t0\t0", "1\t2\t1\t0\t0", "1\t3\t1\t0\t1", "1\t0\t1\t0\t2",
        "2\t2\t1\t0\t0", "2\t3\t1\t0\t0", "2\t0\t1\t0\t1", "2\t1\t1\t0\t2",
    ]


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write an MMRec folder: make_folder(lines=None, feats={'image': array}, header=...)."""

    def _make(
        lines: list[str] | None = None,
        feats: dict[str, np.ndarray] | None = None,
        header: str | None = HEADER,
        raw: bytes | None = None,
        name: str = "toy",
    ) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        if raw is not None:
            (folder / f"{name}.inter").write_bytes(raw)
        else:
            body = valid_rows() if lines is None else lines
            text = "\n".join(([header] if header is not None else []) + body)
            (folder / f"{name}.inter").write_text(text + ("\n" if text else ""))
        if feats is None:
            feats = {"image": np.random.default_rng(0).random((4, 3)).astype(np.float32)}
        for m, arr in feats.items():
            np.save(folder / f"{m}_feat.npy", arr)
        return folder

    return _make


def write_raw_shop(raw: Path, n_users: int = 60, n_items: int = 40, seed: int = 0) -> Path:
    """Raw files of a small shop, as a user would bring them: Amazon-style reviews (2018
    JSON lines, gzipped) and metadata (2014 Python-literal lines), a generic ratings CSV with
    ISO dates, an item CSV with text columns, image vectors (parquet) for all but two items
    and a list of user ids. Users prefer one of four item groups, so there is signal."""
    import gzip
    import json

    import pandas as pd

    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    asins = [f"B{n:09d}" for n in range(n_items)]
    group = np.arange(n_items) % 4
    rows = []
    for u in range(n_users):
        liked = np.flatnonzero(group == u % 4)
        others = np.flatnonzero(group != u % 4)
        n = int(rng.integers(6, 12))
        picks = np.concatenate([rng.choice(liked, size=min(n - 2, len(liked)), replace=False),
                                rng.choice(others, size=2, replace=False)])
        for i in picks:
            rows.append((f"A{u:04d}Z", asins[i], float(rng.integers(1, 6)),
                         int(1_400_000_000 + rng.integers(0, 10_000_000))))
    with gzip.open(raw / "reviews_Shop.json.gz", "wt", encoding="utf-8") as fh:
        for user, asin, rating, t in rows:
            fh.write(json.dumps({"reviewerID": user, "asin": asin, "overall": rating,
                                 "unixReviewTime": t, "reviewText": "fine"}) + "\n")
    words = ["hiking boots", "tennis racket", "yoga mat", "camping stove"]
    with gzip.open(raw / "meta_Shop.json.gz", "wt", encoding="utf-8") as fh:
        for n, asin in enumerate(asins):
            fh.write(repr({"asin": asin, "title": f"{words[group[n]]} model {n}",
                           "brand": "Acme", "categories": [["Sports", words[group[n]]]],
                           "description": f"A {words[group[n]]}.\nSturdy."}) + "\n")
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "t"])
    frame["time"] = pd.to_datetime(frame["t"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    frame[["user", "item", "rating", "time"]].to_csv(raw / "ratings.csv", index=False)
    pd.DataFrame({"item": asins, "title": [f"{words[g]} model {n}" for n, g in
                                           enumerate(group)],
                  "description": [f"A {words[g]}" for g in group]}).to_csv(
        raw / "items.csv", index=False)
    vecs = rng.normal(size=(n_items, 16)) + np.eye(4)[group].repeat(4, axis=1) * 2
    image = pd.DataFrame(vecs[2:], columns=[f"v{j}" for j in range(16)])
    image.insert(0, "item", asins[2:])
    image.to_parquet(raw / "image_vectors.parquet", index=False)
    (raw / "users.txt").write_text("A0003Z\nA0010Z\n")
    return raw


@pytest.fixture
def raw_shop() -> Callable[..., Path]:
    """write_raw_shop(folder, ...) -> folder, for tests of the raw-data path."""
    return write_raw_shop
