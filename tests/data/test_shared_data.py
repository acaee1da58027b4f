"""Integration with the real datasets in ../shared/data (skipped when absent)."""

from pathlib import Path

import pytest

from searec.config import DataConfig
from searec.data.load import load_dataset
from searec.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def need(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    return path


def test_tiktok_statistics_match_its_readme():
    path = need("tiktok")
    with pytest.raises(DataError, match="10 users have valid/test interactions"):
        load_dataset(DataConfig(path=str(path)))
    st = load_dataset(DataConfig(path=str(path), cold_users="keep")).stats()
    assert (st["users"], st["items"], st["interactions"]) == (9308, 6710, 68722)
    assert (st["train"], st["valid"], st["test"]) == (59541, 3051, 6130)
    assert st["modalities"] == {"audio": 128, "image": 128}
    assert st["items_without_train"] == 465
    dropped = load_dataset(DataConfig(path=str(path), cold_users="drop")).stats()
    assert (dropped["valid"], dropped["test"]) == (3046, 6125)  # MMRec's filtered counts


def test_ml100k_statistics_match_its_readme():
    st = load_dataset(DataConfig(path=str(need("ml100k")))).stats()
    assert (st["users"], st["items"], st["train"], st["valid"], st["test"]) == (
        943, 1682, 33220, 33346, 33434)
    assert st["modalities"] == {"text": 384}
