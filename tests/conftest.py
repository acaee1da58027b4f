from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from searec.data import Dataset, make_synthetic

HEADER = "userID\titemID\trating\ttimestamp\tx_label"


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
