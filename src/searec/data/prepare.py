"""Raw interactions -> an MMRec folder: cleaning, k-core filtering, per-user split, id maps.

The steps follow MMRec's preprocessing, with its choices written down:

* rows missing a user or item are dropped; a (user, item) pair seen several times keeps its
  earliest row (MMRec keeps pairs with different timestamps, which its own loader then counts
  twice; our loader refuses duplicate pairs);
* k-core: users and items with fewer than k interactions are removed, repeatedly, until every
  remaining user and item has at least k;
* ids: users and items are numbered 0..n-1 in sorted order of their original ids;
* split, per user: with n interactions, ``int(n * (valid + test))`` are held out, the valid
  share ``int(held * valid / (valid + test))`` of them and the test share the rest, and at
  least one of each once n >= 3 (MMRec's rule for 8:1:1, which holds out 1 + 1 below 10
  interactions). n = 2 gives one train and one test interaction, n = 1 only train. The held-out
  interactions are the user's latest (``order="time"``) or a seeded random draw
  (``order="random"``, MMRec's choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from searec.data.cold import hold_out_items
from searec.data.idmap import ITEM_MAP_FILE, USER_MAP_FILE, IdMap
from searec.data.tables import one_line
from searec.errors import DataError
from searec.io import atomic_path, check_output_dir, write_json

ITEM_TEXT_FILE = "item_text.tsv"
SplitOrder = Literal["random", "time"]


@dataclass(frozen=True)
class SplitRatios:
    train: float = 0.8
    valid: float = 0.1
    test: float = 0.1

    @classmethod
    def parse(cls, text: str) -> SplitRatios:
        """'8:1:1', '0.8,0.1,0.1' or '80/10/10' -> normalised ratios."""
        parts = [p for p in text.replace(",", ":").replace("/", ":").split(":") if p.strip()]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DataError("--split", f"expected three numbers such as 8:1:1, got "
                            f"{text!r}") from None
        if len(values) != 3 or min(values) < 0 or values[0] <= 0 or sum(values) <= 0:
            raise DataError("--split", f"expected train:valid:test with train > 0 and no "
                            f"negative part, such as 8:1:1; got {text!r}") from None
        total = sum(values)
        return cls(*(v / total for v in values))


@dataclass
class PrepareReport:
    """What each step did, written to prepare.json next to the data."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, step: str, frame: pd.DataFrame, **extra: Any) -> None:
        self.steps.append({"step": step, "interactions": len(frame),
                           "users": int(frame["user"].nunique()),
                           "items": int(frame["item"].nunique()), **extra})


def clean_interactions(frame: pd.DataFrame, report: PrepareReport) -> pd.DataFrame:
    """Drop rows with an empty user/item and repeated (user, item) pairs, keeping the
    earliest (by timestamp when there is one, else the first in the file)."""
    frame = frame[(frame["user"] != "") & (frame["item"] != "")]
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    before = len(frame)
    frame = frame.drop_duplicates(subset=["user", "item"], keep="first")
    report.add("cleaned", frame, repeated_pairs_dropped=before - len(frame))
    return frame.reset_index(drop=True)


def kcore_filter(frame: pd.DataFrame, k_user: int, k_item: int) -> pd.DataFrame:
    """Remove users with < k_user and items with < k_item interactions until none is left."""
    while True:
        user_counts = frame["user"].map(frame["user"].value_counts())
        item_counts = frame["item"].map(frame["item"].value_counts())
        keep = (user_counts >= k_user) & (item_counts >= k_item)
        if keep.all():
            return frame
        frame = frame[keep.to_numpy()]


def split_labels(
    users: np.ndarray, sort_key: np.ndarray, ratios: SplitRatios
) -> np.ndarray:
    """x_label (0 train, 1 valid, 2 test) per row: each user's last rows by ``sort_key``
    are held out, sized by the rule in the module docstring."""
    order = np.lexsort((sort_key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    pos = np.arange(len(users)) - np.repeat(starts, counts)
    n = np.repeat(counts, counts)
    held_share = ratios.valid + ratios.test
    held = (n * held_share + 1e-9).astype(np.int64)
    n_valid = (held * (ratios.valid / held_share) + 1e-9).astype(np.int64) if held_share else 0
    n_test = held - n_valid
    big = n >= 3
    if ratios.valid > 0:
        n_valid = np.where(big, np.maximum(n_valid, 1), 0)
    if ratios.test > 0:
        n_test = np.where(big, np.maximum(n_test, 1), np.where(n == 2, 1, 0))
    from_end = n - pos  # 1 for the last row of a user
    labels_sorted = np.where(from_end <= n_test, 2, np.where(from_end <= n_test + n_valid, 1, 0))
    labels = np.empty(len(users), dtype=np.int64)
    labels[order] = labels_sorted
    return labels


@dataclass
class Prepared:
    """An indexed, split interaction table plus id maps and optional item texts."""

    table: pd.DataFrame  # userID, itemID, rating, timestamp, x_label
    user_map: IdMap
    item_map: IdMap
    item_text: np.ndarray | None  # str per item index, or None
    report: PrepareReport


def _check_id_text(values: pd.Series, what: str) -> None:
    bad = values.str.contains(r"[\t\r\n]", regex=True)
    if bad.any():
        raise DataError(what, f"original id {values[bad].iloc[0]!r} contains a tab or line "
                        "break; ids must be single-line text without tabs")


def prepare_interactions(
    frame: pd.DataFrame,
    *,
    k_core: int = 5,
    k_item: int | None = None,
    split: SplitRatios | None = None,
    order: SplitOrder = "random",
    seed: int = 0,
    item_texts: dict[str, str] | None = None,
    source: str = "interactions",
    item_column: str = "item_id",
    cold_items: float = 0.0,
) -> Prepared:
    """Clean, k-core filter, index and split a (user, item[, rating][, timestamp]) table.

    ``cold_items``: the cold-start protocol (searec.data.cold): that fraction of the items,
    drawn with ``seed``, moves every training interaction to valid/test.

    ``item_column`` names the original-id column of the item map (MMRec uses ``asin``)."""
    split = split or SplitRatios()
    report = PrepareReport(params={"k_core_users": k_core, "k_core_items": k_item or k_core,
                                   "split": [split.train, split.valid, split.test],
                                   "order": order, "seed": seed, "cold_items": cold_items})
    if order == "time" and "timestamp" not in frame.columns:
        raise DataError(source, "order=time needs a timestamp column; give one or use "
                        "order=random")
    report.add("read", frame)
    frame = frame.dropna(subset=["user", "item"])
    frame["user"] = frame["user"].astype(str).str.strip()
    frame["item"] = frame["item"].astype(str).str.strip()
    frame = clean_interactions(frame, report)
    frame = kcore_filter(frame, k_core, k_item or k_core)
    report.add("k-core", frame)
    if frame.empty:
        raise DataError(source, f"no interaction is left after {k_core}-core filtering; lower "
                        "--k-core")
    _check_id_text(frame["user"], source)
    _check_id_text(frame["item"], source)
    users = np.sort(frame["user"].unique())
    items = np.sort(frame["item"].unique())
    uidx = np.searchsorted(users, frame["user"].to_numpy())
    iidx = np.searchsorted(items, frame["item"].to_numpy())
    if order == "time":
        # clean_interactions sorted rows by timestamp (stable: ties keep file order)
        key = np.arange(len(frame))
    else:
        key = np.random.default_rng(seed).permutation(len(frame))
    labels = split_labels(uidx, key, split)
    if cold_items:
        labels, _ = hold_out_items(iidx, labels, len(items), cold_items, seed)
    table = pd.DataFrame({
        "userID": uidx, "itemID": iidx,
        "rating": frame["rating"].to_numpy() if "rating" in frame else 1,
        "timestamp": frame["timestamp"].to_numpy() if "timestamp" in frame else 0,
        "x_label": labels,
    }).sort_values(["userID", "x_label", "itemID"], kind="stable")
    for label, name, share in ((1, "valid", split.valid), (2, "test", split.test)):
        if share == 0:
            raise DataError("--split", f"the {name} share is 0; searec needs a {name} split "
                            "(validation for early stopping, test for the final metrics)")
        if not (labels == label).any():
            raise DataError(source, f"the {name} split came out empty: no user has enough "
                            "interactions to hold one out; lower the k-core or use more data")
    counts = np.bincount(labels, minlength=3)
    report.add("split", frame, train=int(counts[0]), valid=int(counts[1]), test=int(counts[2]))
    texts = None
    if item_texts is not None:
        texts = np.array([one_line(item_texts.get(i, "")) for i in items], dtype=object)
        report.params["items_without_text"] = int(sum(1 for t in texts if not t))
    return Prepared(table.reset_index(drop=True), IdMap(users.astype(object), "user_id"),
                    IdMap(items.astype(object), item_column), texts, report)


def prepare_folder(
    frame: pd.DataFrame,
    out: str | Path,
    *,
    name: str | None = None,
    min_rating: float | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Prepared:
    """Raw interactions -> an MMRec folder at ``out``: checks the folder first (nothing is
    written if it cannot be used), drops ratings below ``min_rating``, then
    :func:`prepare_interactions` with ``options`` and :func:`write_prepared`."""
    out = check_output_dir(out, overwrite, "folder")
    if min_rating is not None:
        if "rating" not in frame.columns:
            raise DataError(options.get("source", "interactions"), "a minimum rating needs "
                            "ratings in the input (--rating-col)")
        frame = frame[frame["rating"] >= min_rating]
    prepared = prepare_interactions(frame, **options)
    write_prepared(prepared, out, name)
    return prepared


def write_prepared(prepared: Prepared, folder: Path, name: str | None = None) -> Path:
    """Write <name>.inter, the id maps, item_text.tsv and prepare.json into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or folder.name
    with atomic_path(folder / f"{name}.inter") as tmp:
        prepared.table.to_csv(tmp, sep="\t", index=False)
    prepared.user_map.save(folder / USER_MAP_FILE, "userID")
    prepared.item_map.save(folder / ITEM_MAP_FILE, "itemID")
    if prepared.item_text is not None:
        frame = pd.DataFrame({"itemID": np.arange(len(prepared.item_map)),
                              prepared.item_map.column: prepared.item_map.originals,
                              "text": prepared.item_text})
        with atomic_path(folder / ITEM_TEXT_FILE) as tmp:
            # texts are one line without tabs; a text with a double quote is quoted (CSV rules)
            frame.to_csv(tmp, sep="\t", index=False)
    write_json(folder / "prepare.json", {"name": name, **prepared.report.params,
                                          "steps": prepared.report.steps})
    return folder


def summary_lines(prepared: Prepared) -> list[str]:
    lines = []
    for st in prepared.report.steps:
        extra = {k: v for k, v in st.items() if k not in ("step", "interactions", "users",
                                                            "items")}
        more = "".join(f", {k} {v:,}" for k, v in extra.items())
        lines.append(f"{st['step']:<8} {st['interactions']:>10,} interactions, "
                     f"{st['users']:,} users, {st['items']:,} items{more}")
    return lines

