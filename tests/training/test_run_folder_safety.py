"""A run folder from elsewhere runs no code, and one process writes a run folder at a time.

A checkpoint that would run code when unpickled is refused by every command that reads
one (recommend, serve, items add, train --resume) and the code never runs; a damaged
checkpoint is an error naming the file; a received config's cache folder is not
followed. Training, resuming and adding items hold the run folder's lock: a second
writer gets a clear error and deletes nothing, and what an interrupted writer left is
cleaned up by the next one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import searec
from searec.cli import main
from searec.config import load_config
from searec.errors import RunDirError
from searec.inference.items import CURRENT, ITEMS_DIR, add_items, current_version
from searec.training.checkpoint import BEST, LAST, LOCK, read_checkpoint

SMALL = ["data.synthetic.n_users=80", "data.synthetic.n_items=50",
         "data.synthetic.interactions_per_user=8", "data.synthetic.modalities={image: 8, "
         "text: 6}", "train.progress=false", "train.threads=1"]


class Planted:
    """Unpickled, it writes a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("safety") / "run"
    # CLUB: its q and q's optimiser make the checkpoint hold every kind of state
    searec.train(load_config(None, ["model.name=sea", "train.epochs=2",
                                    "model.separation.distancing=club", *SMALL]), run,
                 log=lambda _m: None)
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _plant(path: Path, marker: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["note"] = Planted(marker)
    torch.save(ckpt, path)


def _new_items(run: Path, tmp_path: Path, names: list[str]) -> list[str]:
    """CLI arguments adding ``names`` as copies of the first items' features."""
    rng = np.random.default_rng(0)
    args = []
    for m, width in (("image", 8), ("text", 6)):
        path = tmp_path / f"{m}-{names[0]}.npy"
        np.save(path, rng.normal(size=(len(names), width)).astype(np.float32))
        args += ["--features", f"{m}={path}"]
    ids = tmp_path / f"ids-{names[0]}.txt"
    ids.write_text("\n".join(names) + "\n")
    return ["items", "add", "--run", str(run), *args, "--ids", str(ids)]


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(run, tmp_path, capsys):
    marker = tmp_path / "marker"
    for name in (BEST, LAST):
        _plant(run / name, marker)
    # the planted payload is live: an unsafe load would run it
    torch.load(run / BEST, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()

    commands = {
        "recommend": ["recommend", "--run", str(run), "--out", str(tmp_path / "r.csv")],
        "serve": ["serve", "--run", str(run), "--port", "0"],
        "items add": _new_items(run, tmp_path, ["n1", "n2"]),
        "resume": ["train", "--resume", str(run)],
    }
    for what, argv in commands.items():
        capsys.readouterr()
        assert main(argv) == 2, what
        err = capsys.readouterr().err
        assert "refused: the checkpoint holds objects other than tensors" in err, (what, err)
        assert "(exec)" in err and "nothing in it was run" in err, (what, err)
        assert not marker.exists(), what
    assert not (tmp_path / "r.csv").exists() and current_version(run) is None


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
     "not a readable checkpoint (truncated or corrupt"),
    (lambda p: p.write_bytes(b""), "not a readable checkpoint (truncated or corrupt"),
    (lambda p: p.write_text("hello"), "not a readable checkpoint (truncated or corrupt"),
    (lambda p: torch.save({"format": 2, "model": {"x": 1}}, p), "has no model state"),
    (lambda p: torch.save([1, 2], p), "not a searec checkpoint of format 2"),
    (lambda p: torch.save({"format": 2, "model": {"nope": torch.zeros(2)}}, p),
     "does not fit the model of this run"),
])
def test_a_damaged_checkpoint_is_an_error_naming_the_file(run, tmp_path, capsys, damage,
                                                          message):
    damage(run / BEST)
    assert main(["recommend", "--run", str(run), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{run / BEST}: " in err and message in err, err
    assert "Traceback" not in err


def test_resume_refuses_a_damaged_training_state(run, capsys):
    ckpt = read_checkpoint(run / LAST)
    ckpt["state"] = {"epoch": "two"}
    torch.save(ckpt, run / LAST)
    assert main(["train", "--resume", str(run)]) == 2
    assert "has no training state to resume from" in capsys.readouterr().err


def test_a_received_configs_cache_folder_is_not_followed(run, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere" / "deep"
    monkeypatch.setenv("SEAREC_CACHE", str(tmp_path / "mine"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["cache_dir"] = str(elsewhere)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["recommend", "--run", str(run), "--out", str(tmp_path / "r.csv")]) == 0
    assert main(_new_items(run, tmp_path, ["n1"])) == 0
    assert not (tmp_path / "elsewhere").exists()
    assert list((tmp_path / "mine").glob("knn-*.npz"))  # the user's own cache instead


# ---------------------------------------------------------------- one writer at a time
@contextmanager
def held_by_another_process(run: Path) -> Iterator[subprocess.Popen]:
    """Another process holding ``run``'s writer lock until the block ends."""
    code = ("import sys\nfrom searec.training.checkpoint import run_lock\n"
            "with run_lock(sys.argv[1], 'a test holding the lock'):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def _listing(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_size for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != LOCK}


def test_a_second_writer_gets_a_clear_error_and_deletes_nothing(run, tmp_path, capsys):
    before = _listing(run)
    with held_by_another_process(run):
        for argv in (["train", "--out", str(run), "--overwrite", "--epochs", "1", *SMALL],
                     ["train", "--resume", str(run)],
                     _new_items(run, tmp_path, ["n1"])):
            capsys.readouterr()
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert "another searec process is writing this run folder" in err, err
            assert "a test holding the lock" in err and "nothing was changed" in err
            assert _listing(run) == before
        # readers need no lock
        assert main(["recommend", "--run", str(run), "--out", str(tmp_path / "r.csv")]) == 0
    # following the advice (waiting) works
    assert main(_new_items(run, tmp_path, ["n1"])) == 0
    assert current_version(run) == 1


def test_overwrite_keeps_the_lock_and_replaces_the_rest(run):
    (run / "notes.txt").write_text("old")
    searec.train(load_config(None, ["model.name=bpr", "train.epochs=1", *SMALL]), run,
                 overwrite=True, log=lambda _m: None)
    names = {p.name for p in run.iterdir()}
    assert "notes.txt" not in names and {LOCK, BEST, "metrics.json"} <= names
    with pytest.raises(RunDirError, match="exists and is not empty"):
        searec.train(load_config(None, ["model.name=bpr", "train.epochs=1", *SMALL]), run,
                     log=lambda _m: None)


def test_what_an_interrupted_addition_left_is_cleaned_up(run, tmp_path, capsys):
    """A kill mid-write leaves a temporary .v1.* folder; a kill between publishing the
    folder and CURRENT leaves an unpublished v<N>. The next addition removes both, says
    so, and the run keeps working."""
    assert main(_new_items(run, tmp_path, ["a1", "a2"])) == 0
    items = run / ITEMS_DIR
    shutil.copytree(items / "v1", items / "v2")  # complete, never published
    (items / ".v2.x7k2").mkdir()  # half-written
    (items / ".v2.x7k2" / "ids.txt").write_text("half\n")
    (items / f".{CURRENT}.abc.tmp").write_text("2")
    capsys.readouterr()
    assert main(["recommend", "--run", str(run), "--out", str(tmp_path / "r.csv")]) == 0
    assert current_version(run) == 1  # readers follow CURRENT only
    log: list[str] = []
    add_items(run, {"image": np.ones((1, 8), np.float32), "text": np.ones((1, 6), np.float32)},
              ["b1"], log=log.append)
    assert any("never published" in line and "v2" in line for line in log), log
    assert any(".v2.x7k2" in line for line in log), log
    assert current_version(run) == 2
    assert sorted(p.name for p in items.iterdir()) == [CURRENT, "v1", "v2"]
    assert (items / "v2" / "ids.txt").read_text().split() == ["a1", "a2", "b1"]
    frame = searec.recommend(run, k=53)
    assert {"a1", "a2", "b1"} <= set(frame["item_id"].astype(str))


@pytest.mark.parametrize("content", ["7", "seven", ""])
def test_a_damaged_item_pointer_says_what_to_do_and_the_advice_works(run, tmp_path, capsys,
                                                                    content):
    assert main(_new_items(run, tmp_path, ["a1"])) == 0
    (run / ITEMS_DIR / CURRENT).write_text(content)
    capsys.readouterr()
    out = tmp_path / "r.csv"
    assert main(["recommend", "--run", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "items/CURRENT" in err and "delete" in err, err
    shutil.rmtree(run / ITEMS_DIR)  # the advice: back to the trained catalogue
    assert main(["recommend", "--run", str(run), "--out", str(out)]) == 0


@pytest.mark.skipif(os.name != "posix", reason="run-folder locks are POSIX file locks")
def test_two_additions_at_once_leave_a_consistent_catalogue(run, tmp_path):
    """Two `searec items add` processes started together: each adds its items or is told
    another writer holds the folder; whatever happened, CURRENT names a complete version
    holding exactly the successful additions, and recommend serves them."""
    env = {**os.environ, "SEAREC_CACHE": str(tmp_path / "cache")}
    batches = [["p1", "p2"], ["q1", "q2", "q3"]]
    procs = [subprocess.Popen([sys.executable, "-m", "searec",
                               *_new_items(run, tmp_path, names)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for names in batches]
    results = [p.communicate(timeout=300) for p in procs]
    added = []
    for proc, names, (_, err) in zip(procs, batches, results, strict=True):
        if proc.returncode == 0:
            added += names
        else:
            assert proc.returncode == 2 and "another searec process is writing" in err, err
    assert added, "neither addition succeeded"
    version = current_version(run)
    assert version is not None
    ids = (run / ITEMS_DIR / f"v{version}" / "ids.txt").read_text().split()
    assert sorted(ids) == sorted(added)
    assert not [p for p in (run / ITEMS_DIR).iterdir() if p.name.startswith(".")]
    frame = searec.recommend(run, k=50 + len(added))
    assert set(added) <= set(frame["item_id"].astype(str))


def test_a_run_folder_from_before_the_estimator_sections_still_loads(run, tmp_path):
    """searec 0.2 wrote each MI estimator's settings flat in model.separation; such a run
    folder reads into the sections and recommends exactly as before."""
    before = tmp_path / "before.csv"
    assert main(["recommend", "--run", str(run), "--out", str(before)]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    sep = cfg["model"]["separation"]
    alignment, distancing = sep.pop("alignment"), sep.pop("distancing")
    sep.update(alignment=alignment["name"], distancing=distancing["name"],
               temperature=alignment["temperature"], align_hidden=alignment["head_hidden"],
               align_out=alignment["head_out"], distance_dim=distancing["dim"],
               **{k: v for k, v in distancing.items() if k.startswith("q_")})
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    after = tmp_path / "after.csv"
    assert main(["recommend", "--run", str(run), "--out", str(after)]) == 0
    assert after.read_text() == before.read_text()


def test_a_checkpoint_from_before_the_loss_result_resumes(run):
    """searec 0.2's last.pt has no term_hints in its training state; it resumes."""
    ckpt = read_checkpoint(run / LAST)
    del ckpt["state"]["term_hints"]
    ckpt["state"]["stopped_early"] = False
    torch.save(ckpt, run / LAST)
    searec.resume(run, log=lambda _m: None)
    assert (run / "metrics.json").is_file()
