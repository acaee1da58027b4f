"""Run the README's "Use your own data" walk-through verbatim on raw files written here."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from searec.cli import main
from searec.data import load_mmrec

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough_commands() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- own-data:start -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lacks the own-data walk-through block"
    commands = [line.strip() for line in block.group(1).splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert all(c.startswith("searec ") for c in commands), commands
    return commands


def walkthrough_python() -> str:
    text = README.read_text()
    section = text[text.index("## Use your own data"):text.index("### The MMRec format")]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README's own-data section lacks its Python example"
    return block.group(1)


def test_readme_walkthrough_runs_verbatim(tmp_path: Path, monkeypatch, raw_shop) -> None:
    pytest.importorskip("sentence_transformers")
    raw_shop(tmp_path / "raw")
    monkeypatch.chdir(tmp_path)
    commands = walkthrough_commands()
    names = [c.split()[1] for c in commands]
    assert {"prepare", "features", "train", "recommend"} <= set(names)
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command

    ds = load_mmrec("data/shop")
    assert set(ds.modalities) == {"text", "image"}
    assert ds.modalities["text"].shape == (ds.n_items, 384)
    # the two items without an image vector got the mean, and are listed
    missing = (tmp_path / "data/shop/image_missing_items.txt").read_text().split()
    assert missing == ["B000000000", "B000000001"]
    np.testing.assert_allclose(ds.modalities["image"][0], ds.modalities["image"][2:].mean(0),
                               rtol=1e-5)
    csv_ds = load_mmrec("data/shop-csv")
    assert (csv_ds.n_users, csv_ds.n_items) == (ds.n_users, ds.n_items)

    recs = pd.read_parquet("recs.parquet")
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score"]
    assert len(recs) == ds.n_users * 10
    assert set(recs["user_id"]) == set(ds.user_map.originals)
    # training items are excluded, checked in original ids
    train = ds.train.tocoo()
    seen = set(zip(ds.user_map.to_original(train.row), ds.item_map.to_original(train.col),
                   strict=True))
    assert not any((u, i) in seen for u, i in zip(recs["user_id"], recs["item_id"],
                                                  strict=True))
    some = pd.read_csv("recs_some.csv", dtype={"user_id": str, "item_id": str})
    assert list(some["user_id"].unique()) == ["A0003Z", "A0010Z"]
    assert (some.groupby("user_id")["rank"].apply(list) == [list(range(1, 11))] * 2).all()

    # the Python example of the same section, on the run just trained
    namespace: dict = {}
    exec(walkthrough_python(), namespace)
    ids = namespace["ids"]
    assert ids.shape == (2, 10)
    first = some[some.user_id == "A0003Z"]["item_id"].tolist()
    assert ds.item_map.to_original(ids[0]).tolist() == first
    assert namespace["similar"].shape == (1, 5)
