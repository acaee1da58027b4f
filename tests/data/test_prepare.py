"""Raw data -> MMRec folder: split rule, k-core, dedup, Amazon/CSV readers, id maps,
feature alignment, text features and recommendations in original ids."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from searec.cli import main
from searec.data import load_mmrec
from searec.data.amazon import item_text, read_amazon_meta, read_amazon_reviews
from searec.data.idmap import IdMap, read_id_map
from searec.data.prepare import SplitRatios, kcore_filter, prepare_interactions, split_labels
from searec.errors import DataError
from searec.features import align_vectors, read_vectors


def labels_for(n: int, ratios: SplitRatios | None = None) -> list[int]:
    users = np.zeros(n, dtype=np.int64)
    return split_labels(users, np.arange(n), ratios or SplitRatios()).tolist()


@pytest.mark.parametrize(("n", "valid", "test"), [
    (1, 0, 0), (2, 0, 1), (3, 1, 1), (9, 1, 1), (10, 1, 1), (15, 1, 2), (20, 2, 2),
    (29, 2, 3), (100, 10, 10),
])
def test_split_sizes_follow_mmrec_rule(n: int, valid: int, test: int) -> None:
    labels = labels_for(n)
    assert labels.count(1) == valid and labels.count(2) == test
    # the held-out rows are the last by the sort key: train, then valid, then test
    assert labels == sorted(labels)


def test_split_ratios_parse_and_custom_ratio() -> None:
    assert SplitRatios.parse("8:1:1") == SplitRatios(0.8, 0.1, 0.1)
    r = SplitRatios.parse("70,0,30")
    assert r.valid == 0 and labels_for(10, r).count(2) == 3 and labels_for(10, r).count(1) == 0
    for bad in ("8:1", "a:b:c", "0:1:1", "-1:1:1"):
        with pytest.raises(DataError, match="--split"):
            SplitRatios.parse(bad)


def test_split_is_per_user_and_follows_the_key() -> None:
    users = np.array([1, 0, 1, 0, 0, 1, 0])
    key = np.array([5, 3, 1, 9, 0, 2, 4])  # user 0 rows by key: 4 (0), 1 (3), 6 (4), 3 (9)
    labels = split_labels(users, key, SplitRatios())
    assert labels.tolist() == [2, 0, 0, 2, 0, 1, 1]


def test_kcore_is_iterative() -> None:
    # user c has 2 interactions; removing c leaves item z with 1 -> removed -> b drops to 1
    frame = pd.DataFrame({"user": list("aaabbcc"), "item": list("xyzxzyz")})
    out = kcore_filter(frame, 2, 2)
    assert sorted(zip(out["user"], out["item"], strict=True)) == [
        ("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "z"), ("c", "y"), ("c", "z")]
    out = kcore_filter(frame, 3, 2)
    assert out.empty  # a alone is left with 3 items of 1 interaction each, then nothing


def test_repeated_pairs_keep_the_earliest_and_ids_are_sorted() -> None:
    frame = pd.DataFrame({"user": ["u2", "u1", "u1", "u1", "u2", "u2", "u1"],
                          "item": ["i3", "i1", "i2", "i1", "i1", "i2", "i3"],
                          "rating": [5, 4, 3, 1, 2, 2, 2],
                          "timestamp": [10, 50, 20, 5, 1, 2, 3]})
    p = prepare_interactions(frame, k_core=1, order="time")
    assert p.report.steps[1]["repeated_pairs_dropped"] == 1
    assert p.user_map.originals.tolist() == ["u1", "u2"]
    assert p.item_map.originals.tolist() == ["i1", "i2", "i3"]
    t = p.table.set_index(["userID", "itemID"])
    assert t.loc[(0, 0), "rating"] == 1 and t.loc[(0, 0), "timestamp"] == 5  # earliest kept
    # time order, u1 has i3@3, i1@5, i2@20: 3 rows -> train i3, valid i1, test i2
    assert [t.loc[(0, i), "x_label"] for i in (2, 0, 1)] == [0, 1, 2]


def test_random_split_is_seeded() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 600).astype(str),
                          "item": rng.integers(0, 40, 600).astype(str)})
    a = prepare_interactions(frame, seed=1).table
    b = prepare_interactions(frame, seed=1).table
    c = prepare_interactions(frame, seed=2).table
    assert a.equals(b) and not a.equals(c)


def test_time_split_needs_timestamps() -> None:
    frame = pd.DataFrame({"user": ["a"] * 5, "item": list("vwxyz")})
    with pytest.raises(DataError, match="order=time needs a timestamp"):
        prepare_interactions(frame, k_core=1, order="time")
    with pytest.raises(DataError, match="no interaction is left"):
        prepare_interactions(frame, k_core=6)


def write_lines(path: Path, lines: list[str], gz: bool = True) -> Path:
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def test_amazon_2014_and_2018_metadata_texts() -> None:
    rec14 = {"asin": "A1", "title": "Tent", "brand": "Acme", "description": "Two\tperson\n",
             "categories": [["Sports", "Camping"], ["Sale"]]}
    rec18 = {"asin": "A2", "title": "Tent", "brand": "Acme", "category": ["Sports", "Camping"],
             "description": ["Two", "person"]}
    assert item_text(rec14) == "Tent Acme Sports Camping Two person"
    assert item_text(rec18) == "Tent Acme Sports Camping Two person"
    assert item_text({"asin": "A3"}) == ""


def test_item_texts_with_quotes_and_tabs_survive_the_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user": ["u"] * 3, "item": ["a", "b", "c"]})
    texts = {"a": '"Best" shoes', "b": "tab\there, new\nline", "c": "'single' \"x"}
    p = prepare_interactions(frame, k_core=1, item_texts=texts)
    from searec.data.prepare import write_prepared

    write_prepared(p, tmp_path / "ds")
    assert main(["features", "text", "--items", str(tmp_path / "ds" / "item_text.tsv"),
                 "--out", str(tmp_path / "x.npy"), "--model", str(tmp_path / "nomodel")]) == 2
    back = pd.read_csv(tmp_path / "ds" / "item_text.tsv", sep="\t", keep_default_na=False)
    assert back["text"].tolist() == ['"Best" shoes', "tab here, new line", "'single' \"x"]


def test_amazon_readers(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "r.json.gz", [
        json.dumps({"reviewerID": "U1", "asin": "A1", "overall": 5.0, "unixReviewTime": 7}),
        "", json.dumps({"reviewerID": "U2", "asin": "A2", "overall": 3.0,
                        "unixReviewTime": 9})])
    frame = read_amazon_reviews(reviews)
    assert frame.to_dict("list") == {"user": ["U1", "U2"], "item": ["A1", "A2"],
                                     "rating": [5.0, 3.0], "timestamp": [7, 9]}
    meta = write_lines(tmp_path / "m.json", [repr({"asin": "A1", "title": "x"}),
                                              json.dumps({"asin": "A9", "title": "y"})],
                       gz=False)
    assert read_amazon_meta(meta, {"A1", "A2"}) == {"A1": "x"}
    ratings = tmp_path / "ratings_Shop.csv"
    ratings.write_text("U1,A1,5.0,100\nU2,A1,4.0,200\n")
    assert read_amazon_reviews(ratings)["timestamp"].tolist() == [100, 200]


@pytest.mark.parametrize(("lines", "match", "line"), [
    (['{"reviewerID": "U1", "asin": "A1"}', "{not json"], "not a JSON object", 2),
    (['{"reviewerID": "U1"}'], "lacks the field 'asin'", 1),
    (["[1, 2]"], "one object per line", 1),
])
def test_amazon_bad_reviews_name_the_line(tmp_path: Path, lines, match, line) -> None:
    path = write_lines(tmp_path / "r.json.gz", lines)
    with pytest.raises(DataError, match=match) as err:
        read_amazon_reviews(path)
    assert err.value.line == line and str(path) in str(err.value)


def test_amazon_not_gzip_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{"reviewerID": "\xff\xfe"}\n')
    with pytest.raises(DataError, match="UTF-8"):
        read_amazon_reviews(path)


def test_prepare_csv_cli_with_dates_and_errors(tmp_path: Path, raw_shop, capsys) -> None:
    raw = raw_shop(tmp_path / "raw")
    out = tmp_path / "ds"
    args = ["prepare", "csv", "--interactions", str(raw / "ratings.csv"), "--time-col",
            "time", "--order", "time", "--items", str(raw / "items.csv"), "--text-cols",
            "title,description", "--out", str(out)]
    assert main(args) == 0
    ds = load_mmrec(out)
    assert ds.user_map.column == "user_id" and ds.item_map.originals[0] == "B000000000"
    inter = pd.read_csv(out / "ds.inter", sep="\t")
    # time order: every user's test interactions are at least as late as their train ones
    last_train = inter[inter.x_label == 0].groupby("userID")["timestamp"].max()
    first_test = inter[inter.x_label == 2].groupby("userID")["timestamp"].min()
    assert (first_test >= last_train.loc[first_test.index]).all()
    texts = pd.read_csv(out / "item_text.tsv", sep="\t")
    assert texts["text"][0] == "hiking boots model 0 A hiking boots"
    # a second run into the same folder is refused without --overwrite
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--user-col", "customer"]) == 2
    err = capsys.readouterr().err
    assert "no column 'customer' (--user-col)" in err and "user, item, rating, time" in err


def test_prepare_csv_bad_values_name_the_row(tmp_path: Path, capsys) -> None:
    path = tmp_path / "x.csv"
    path.write_text("user,item,when\na,b,2020-01-01\na,c,yesterday-ish\n")
    assert main(["prepare", "csv", "--interactions", str(path), "--time-col", "when",
                 "--out", str(tmp_path / "o")]) == 2
    assert "line 3: column 'when' must be a number or a date/time" in capsys.readouterr().err


def test_empty_tables_are_clear_errors(tmp_path: Path, capsys) -> None:
    for name, text, why in (("e.csv", "", "cannot read table"),
                            ("h.csv", "user,item\n", "header but no rows")):
        (tmp_path / name).write_text(text)
        assert main(["prepare", "csv", "--interactions", str(tmp_path / name), "--out",
                     str(tmp_path / "o")]) == 2
        assert why in capsys.readouterr().err


def test_parquet_interactions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame({"u": rng.integers(0, 20, 300), "i": rng.integers(0, 15, 300)}).to_parquet(
        tmp_path / "x.parquet")
    assert main(["prepare", "csv", "--interactions", str(tmp_path / "x.parquet"),
                 "--user-col", "u", "--item-col", "i", "--out", str(tmp_path / "o")]) == 0
    ds = load_mmrec(tmp_path / "o")
    assert ds.user_map.originals[0] == "0" and ds.n_users == 20


def test_id_map_roundtrip_and_errors(tmp_path: Path) -> None:
    m = IdMap(np.array(["b", "a", "c"], dtype=object), "asin")
    assert m.to_index(["c", "b"]).tolist() == [2, 0]
    with pytest.raises(KeyError, match="'zz'"):
        m.to_index(["a", "zz"])
    m.save(tmp_path / "i.csv", "itemID")
    assert read_id_map(tmp_path / "i.csv", "itemID", 3).originals.tolist() == ["b", "a", "c"]
    with pytest.raises(DataError, match=r"every itemID 0\.\.3"):
        read_id_map(tmp_path / "i.csv", "itemID", 4)
    (tmp_path / "j.csv").write_text("asin\titemID\nx\t0\ny\tone\n")
    with pytest.raises(DataError, match="line 3: itemID must be an integer"):
        read_id_map(tmp_path / "j.csv", "itemID", 2)


def test_align_vectors_formats_and_missing(tmp_path: Path) -> None:
    item_map = IdMap(np.array(["a", "b", "c"], dtype=object), "item_id")
    vecs = np.array([[1, 2], [3, 4], [9, 9]], dtype=np.float32)
    np.save(tmp_path / "v.npy", vecs)
    (tmp_path / "ids.txt").write_text("c\na\nzz\n")
    names, got = read_vectors(tmp_path / "v.npy", tmp_path / "ids.txt")
    with pytest.raises(DataError, match="1 of 3 dataset items have no vector"):
        align_vectors(names, got, item_map)
    feats, imputed, unused = align_vectors(names, got, item_map, "mean")
    np.testing.assert_array_equal(feats, [[3, 4], [2, 3], [1, 2]])
    assert imputed.tolist() == [1] and unused == 1
    feats, _, _ = align_vectors(names, got, item_map, "zero")
    assert feats[1].tolist() == [0, 0]
    # a table keyed by id, and Amazon's binary format
    pd.DataFrame({"id": ["b", "a", "c"], "x": [1.0, 2, 3], "y": [4.0, 5, 6]}).to_csv(
        tmp_path / "v.csv", index=False)
    feats, _, _ = align_vectors(*read_vectors(tmp_path / "v.csv"), item_map)
    assert feats.tolist() == [[2, 5], [1, 4], [3, 6]]
    record = np.dtype([("asin", "S10"), ("vec", "<f4", (2,))])
    raw = np.array([(b"c".ljust(10), [7, 8]), (b"a".ljust(10), [1, 1]),
                    (b"b".ljust(10), [0, 2])], dtype=record)
    raw.tofile(tmp_path / "img.b")
    names, got = read_vectors(tmp_path / "img.b", dim=2)
    assert [n.strip() for n in names] == ["c", "a", "b"]
    with pytest.raises(DataError, match="is --dim right"):
        read_vectors(tmp_path / "img.b", dim=3)


def test_align_vector_errors(tmp_path: Path) -> None:
    item_map = IdMap(np.array(["a", "b"], dtype=object), "item_id")
    with pytest.raises(DataError, match="pass --ids"):
        np.save(tmp_path / "v.npy", np.zeros((2, 2)))
        read_vectors(tmp_path / "v.npy")
    with pytest.raises(DataError, match="'a' has two vectors"):
        align_vectors(np.array(["a", "a"], dtype=object), np.zeros((2, 2)), item_map)
    with pytest.raises(DataError, match="no dataset item has a vector"):
        align_vectors(np.array(["x"], dtype=object), np.zeros((1, 2)), item_map, "mean")
    (tmp_path / "v.csv").write_text("id,x\na,1\nb,oops\n")
    with pytest.raises(DataError, match="line 3: column 'x' must be numeric"):
        read_vectors(tmp_path / "v.csv")
    (tmp_path / "n.csv").write_text("id,x\na,1\nb,\n")
    with pytest.raises(DataError, match="1 vectors hold NaN"):
        read_vectors(tmp_path / "n.csv")


def test_text_features_are_offline_and_meaningful() -> None:
    pytest.importorskip("sentence_transformers")
    from searec.features import encode_texts

    emb = encode_texts(["a warm winter jacket", "a thick coat for cold weather",
                        "a stainless steel frying pan"], progress=False)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2


def test_features_text_cli_errors(tmp_path: Path, capsys) -> None:
    (tmp_path / "t.tsv").write_text("itemID\ttext\n0\tx\n2\ty\n")
    assert main(["features", "text", "--items", str(tmp_path / "t.tsv"), "--out",
                 str(tmp_path / "t.npy")]) == 2
    assert "itemID must run 0, 1, 2" in capsys.readouterr().err
    (tmp_path / "u.tsv").write_text("id\tname\n0\tx\n")
    assert main(["features", "text", "--items", str(tmp_path / "u.tsv"), "--out",
                 str(tmp_path / "t.npy")]) == 2
    assert "expected columns itemID and text" in capsys.readouterr().err
    assert not (tmp_path / "t.npy").exists()


def test_recommend_users_file_errors(tmp_path: Path, raw_shop, capsys) -> None:
    raw = raw_shop(tmp_path / "raw")
    ds_dir, run = tmp_path / "ds", tmp_path / "run"
    assert main(["prepare", "amazon", "--reviews", str(raw / "reviews_Shop.json.gz"),
                 "--out", str(ds_dir)]) == 0
    assert main(["train", "--data", str(ds_dir), "--model", "pop", "--out", str(run)]) == 0
    (tmp_path / "u.txt").write_text("A0003Z\nnobody\n")
    out = tmp_path / "r.csv"
    assert main(["recommend", "--run", str(run), "--users", str(tmp_path / "u.txt"),
                 "--out", str(out)]) == 2
    assert "u.txt, line 2: user 'nobody' is not in the dataset" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "i.txt").write_text("3\n")
    assert main(["recommend", "--run", str(run), "--users", str(tmp_path / "i.txt"),
                 "--index-ids", "--k", "3", "--out", str(out)]) == 0
    recs = pd.read_csv(out)
    assert list(recs.columns) == ["userID", "rank", "itemID", "score"]
    assert recs["userID"].tolist() == [3, 3, 3]
