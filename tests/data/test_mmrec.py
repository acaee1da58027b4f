import numpy as np
import pytest

from searec.config import DataConfig
from searec.data import load_mmrec, make_synthetic, save_mmrec
from searec.data.load import load_dataset
from searec.errors import DataError
from tests.conftest import HEADER, valid_rows


def test_valid_folder_loads(make_folder):
    ds = load_mmrec(make_folder())
    assert (ds.n_users, ds.n_items) == (3, 4)
    assert (ds.train.nnz, ds.valid.nnz, ds.test.nnz) == (6, 3, 3)
    assert ds.modality_names == ["image"]
    assert ds.modalities["image"].dtype == np.float32


def test_roundtrip_synthetic(tmp_path):
    ds = make_synthetic(n_users=50, n_items=40, seed=3)
    back = load_mmrec(save_mmrec(ds, tmp_path / "syn"))
    for split in ("train", "valid", "test"):
        assert (getattr(ds, split) != getattr(back, split)).nnz == 0
    for m in ds.modalities:
        np.testing.assert_array_equal(ds.modalities[m], back.modalities[m])


def rows_with(line_index: int, replacement: str) -> list[str]:
    rows = valid_rows()
    rows[line_index] = replacement
    return rows


BAD_INTER = [
    # (description, kwargs for make_folder, expected substring, expected line or None)
    ("empty file", {"raw": b""}, "file is empty", None),
    ("header only", {"lines": []}, "no interactions", None),
    ("missing header", {"header": None}, "missing header", 1),
    ("comma separated", {"raw": b"userID,itemID,rating,timestamp,x_label\n0,0,1,0,0\n"},
     "wrong separator", 1),
    ("missing x_label column", {"header": "userID\titemID\trating\ttimestamp"},
     "lacks column(s) x_label", 1),
    ("wrong field count", {"lines": rows_with(1, "0\t1\t1\t0")}, "expected 5 tab-separated", 3),
    ("space separated row", {"lines": rows_with(2, "0 2 1 0 1")}, "wrong separator?", 4),
    ("non-integer user", {"lines": rows_with(0, "abc\t0\t1\t0\t0")}, "userID must be an integer",
     2),
    ("float item id", {"lines": rows_with(0, "0\t0.5\t1\t0\t0")}, "itemID must be an integer", 2),
    ("negative id", {"lines": rows_with(4, "-1\t1\t1\t0\t0")}, "userID must be >= 0", 6),
    ("user ids with a gap", {"lines": [r.replace("2\t", "3\t", 1) if r.startswith("2\t") else r
                                       for r in valid_rows()]}, "not contiguous", None),
    ("duplicate interaction", {"lines": [*valid_rows(), "0\t0\t1\t0\t0"]},
     "duplicate interaction (user 0, item 0) also on line 2", 14),
    ("x_label out of range", {"lines": rows_with(3, "0\t3\t1\t0\t3")}, "x_label must be 0", 5),
    ("no test split", {"lines": [r[:-1] + "0" if r.endswith("2") else r for r in valid_rows()]},
     "test split is empty", None),
    ("no valid split", {"lines": [r[:-1] + "0" if r.endswith("1") else r for r in valid_rows()]},
     "valid split is empty", None),
    ("non-numeric rating", {"lines": rows_with(0, "0\t0\tgood\t0\t0")}, "rating must be a number",
     2),
    ("item id beyond feature rows", {"lines": [*valid_rows(), "0\t4\t1\t0\t0"]},
     "itemID 4 is out of range", 14),
    ("not UTF-8", {"raw": HEADER.encode() + b"\n\xff\xfe\t0\t1\t0\t0\n"}, "not UTF-8", None),
]


@pytest.mark.parametrize("case", BAD_INTER, ids=[c[0] for c in BAD_INTER])
def test_bad_interactions(make_folder, case):
    _, kwargs, expected, line = case
    folder = make_folder(**kwargs)
    with pytest.raises(DataError) as info:
        load_mmrec(folder)
    assert expected in str(info.value)
    assert info.value.path.name == "toy.inter"
    assert info.value.line == line


def _save_raw(path, content: bytes) -> None:
    path.write_bytes(content)


BAD_FEATURES = [
    ("wrong row count", np.zeros((5, 3), np.float32) + 1, "feature files have 5 rows"),
    ("1-D array", np.ones(4, np.float32), "expected a 2-D array"),
    ("3-D array", np.ones((4, 2, 2), np.float32), "expected a 2-D array"),
    ("NaN", np.array([[1, 2], [np.nan, 1], [1, 1], [1, 1]], np.float32),
     "NaN or inf (first: row 1)"),
    ("inf", np.array([[1, 2], [1, 1], [1, np.inf], [1, 1]], np.float32),
     "NaN or inf (first: row 2)"),
    ("strings", np.array([["a"], ["b"], ["c"], ["d"]]), "expected a numeric array"),
    ("zero columns", np.ones((4, 0), np.float32), "0 columns"),
]


@pytest.mark.parametrize("case", BAD_FEATURES, ids=[c[0] for c in BAD_FEATURES])
def test_bad_features(make_folder, case):
    _, arr, expected = case
    folder = make_folder(feats={"image": arr})
    with pytest.raises(DataError) as info:
        load_mmrec(folder)
    assert expected in str(info.value)


def test_feature_file_not_npy(make_folder):
    folder = make_folder(feats={})
    (folder / "image_feat.npy").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"image_feat.npy: not a readable .npy array"):
        load_mmrec(folder)


def test_truncated_npy(make_folder):
    folder = make_folder()
    data = (folder / "image_feat.npy").read_bytes()
    (folder / "image_feat.npy").write_bytes(data[: len(data) - 10])
    with pytest.raises(DataError, match=r"not a readable \.npy array"):
        load_mmrec(folder)


def test_modalities_disagree_on_rows(make_folder):
    folder = make_folder(feats={"image": np.ones((4, 2), np.float32),
                                "text": np.ones((5, 2), np.float32)})
    with pytest.raises(DataError, match="every modality needs one row per item"):
        load_mmrec(folder)


def test_requested_modality_missing(make_folder):
    with pytest.raises(DataError, match=r"modality 'audio' not found \(found: image\)"):
        load_mmrec(make_folder(), modalities=["audio"])


def test_missing_folder_and_ambiguous_inter(tmp_path, make_folder):
    with pytest.raises(DataError, match="does not exist"):
        load_mmrec(tmp_path / "nope")
    folder = make_folder()
    (folder / "other.inter").write_text("x")
    (folder / "toy.inter").rename(folder / "third.inter")
    with pytest.raises(DataError, match=r"several \.inter files"):
        load_mmrec(folder)


def test_items_without_interactions_allowed_when_features_cover_them(make_folder):
    rows = [r.replace("\t3\t", "\t4\t") for r in valid_rows()]  # item 3: features only
    ds = load_mmrec(make_folder(lines=rows, feats={"image": np.ones((5, 2), np.float32)}))
    assert ds.n_items == 5
    assert ds.train[:, 3].nnz == 0


def test_without_features_item_ids_must_be_contiguous(make_folder):
    rows = [r.replace("\t3\t", "\t4\t") for r in valid_rows()]
    with pytest.raises(DataError, match="itemIDs are not contiguous"):
        load_mmrec(make_folder(lines=rows, feats={}))


def test_cold_user_policy(make_folder):
    folder = make_folder(lines=[*valid_rows(), "3\t0\t1\t0\t2"])
    with pytest.raises(DataError, match="1 users have valid/test interactions but none in"):
        load_dataset(DataConfig(path=str(folder)))
    dropped = load_dataset(DataConfig(path=str(folder), cold_users="drop"))
    assert dropped.test[3].nnz == 0 and dropped.test.nnz == 3
    kept = load_dataset(DataConfig(path=str(folder), cold_users="keep"))
    assert kept.test[3].nnz == 1
