"""The command line end to end: run folders, data check, clear errors, resume."""

import json

import numpy as np
import pytest

from searec.cli import main
from tests.conftest import SMALL, valid_rows


def test_train_writes_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", "lightgcn", "--out", str(out), "--epochs", "3",
                 "--seed", "7", *SMALL])
    assert code == 0
    for name in ("config.yaml", "history.csv", "best.pt", "last.pt", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        for m in ("recall", "ndcg", "precision", "map", "hit"):
            for k in (10, 20, 50):
                assert 0.0 <= metrics[split][f"{m}@{k}"] <= 1.0
    assert metrics["epochs_run"] == 3 and 1 <= metrics["best_epoch"] <= 3
    assert metrics["train_seconds"] > 0 and metrics["eval_seconds"] > 0
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,loss_bpr,loss_reg,train_seconds,valid_recall@10")
    assert len(history) == 4
    assert "seed: 7" in (out / "config.yaml").read_text()
    printed = capsys.readouterr().out
    assert "recall@20" in printed and "test" in printed
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


def test_existing_run_dir_is_refused_then_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "something").write_text("x")
    assert main(["train", "--model", "pop", "--out", str(out), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "run directory exists and is not empty" in err and "--overwrite" in err
    assert "Traceback" not in err
    assert main(["train", "--model", "pop", "--out", str(out), "--overwrite", *SMALL]) == 0
    assert not (out / "something").exists()


def test_resume_continues_to_the_same_result(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["train", "--model", "bpr", "--seed", "3", *SMALL, "train.lr=0.01"]
    assert main([*args, "--out", str(full), "--epochs", "4"]) == 0
    assert main([*args, "--out", str(part), "--epochs", "2"]) == 0
    # Pretend the run was meant to last 4 epochs and was interrupted after 2.
    cfg = (part / "config.yaml").read_text().replace("epochs: 2", "epochs: 4")
    (part / "config.yaml").write_text(cfg)
    assert main(["train", "--resume", str(part)]) == 0
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((part / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["valid"] == b["valid"]
    assert b["epochs_run"] == 4


def test_same_seed_same_metrics(tmp_path):
    args = ["train", "--model", "lightgcn", "--epochs", "2", "--seed", "5", *SMALL]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["test"] == b["test"]


def test_data_check_prints_statistics(make_folder, capsys):
    folder = make_folder()
    assert main(["data", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "users" in out and "3" in out and "image (3-d)" in out and out.rstrip().endswith("ok")


def test_data_check_bad_input_is_one_clear_line(make_folder, capsys):
    rows = valid_rows()
    rows[2] = "0\t2\t1\t0\t7"
    folder = make_folder(lines=rows)
    assert main(["data", "check", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "toy.inter, line 4: x_label must be 0 (train), 1 (valid) or 2 (test), got 7" in err


def test_debug_shows_traceback(make_folder):
    folder = make_folder(raw=b"")
    from searec.errors import DataError

    with pytest.raises(DataError):
        main(["--debug", "data", "check", str(folder)])


def test_bad_config_key_on_command_line(tmp_path, capsys):
    code = main(["train", "--model", "bpr", "--out", str(tmp_path / "r"), "train.lr=-1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.lr" in err and "> 0" in err
    assert not (tmp_path / "r").exists()


def test_data_synth_writes_loadable_folder(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["data", "synth", "--out", str(out), "n_users=60", "n_items=40"]) == 0
    assert main(["data", "check", str(out)]) == 0
    feats = sorted(p.name for p in out.glob("*_feat.npy"))
    assert feats == ["audio_feat.npy", "image_feat.npy", "text_feat.npy"]
    assert np.load(out / "image_feat.npy").shape == (40, 64)


def test_config_show_and_docs(capsys):
    assert main(["config", "show", "--model", "lightgcn", "model.n_layers=3"]) == 0
    assert "n_layers: 3" in capsys.readouterr().out
    assert main(["config", "docs"]) == 0
    assert "| `train.patience` |" in capsys.readouterr().out


def test_recommend_from_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "lightgcn", "--out", str(run), "--epochs", "2",
                 *SMALL]) == 0
    users = tmp_path / "users.txt"
    users.write_text("userID\n3\n0\n7\n")
    out = tmp_path / "recs.csv"
    assert main(["recommend", "--run", str(run), "--k", "5", "--users", str(users),
                 "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "userID,rank,itemID,score"
    assert len(lines) == 1 + 3 * 5
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows[::5]] == ["3", "0", "7"]
    from searec.runs import load_run

    _, dataset, model = load_run(run)
    expected, _ = model.recommend([3, 0, 7], k=5, user_items=dataset.train)
    assert [int(r[2]) for r in rows] == expected.ravel().tolist()
    seen = set(dataset.train[3].indices)
    assert not seen & {int(r[2]) for r in rows[:5]}


def test_recommend_rejects_bad_user_file(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "pop", "--out", str(run), *SMALL]) == 0
    users = tmp_path / "users.txt"
    users.write_text("1\n99999\n")
    assert main(["recommend", "--run", str(run), "--users", str(users),
                 "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "users.txt, line 2: expected a user index in 0..149" in err
    assert not (tmp_path / "r.csv").exists()


def test_data_check_counts_cold_users_under_each_policy(make_folder, capsys):
    from tests.conftest import valid_rows

    folder = make_folder(lines=[*valid_rows(), "3\t0\t1\t0\t2"])
    assert main(["data", "check", str(folder)]) == 2
    assert "1 users have valid/test interactions" in capsys.readouterr().err
    assert main(["data", "check", str(folder), "--cold-users", "drop"]) == 0
    out = capsys.readouterr().out
    assert "1 (left out of evaluation)" in out and "3 / 3" in out  # test users after drop
    assert main(["data", "check", str(folder), "--cold-users", "keep"]) == 0
    out = capsys.readouterr().out
    assert "1 (scored)" in out and "3 / 4" in out


def test_models_and_config_doc_list_a_user_model_without_docstring(capsys, monkeypatch):
    from searec.models import base
    from searec.models.pop import Pop

    class Mine(Pop):
        name = "mine"

    monkeypatch.setitem(base.MODELS.entries, "mine", Mine)
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "mine" in listing.split() and "pop " in listing
    assert main(["config", "docs"]) == 0
    assert "**model = mine** | | |  |" in capsys.readouterr().out


def test_the_package_version_is_the_distributions():
    from pathlib import Path

    import tomllib

    import searec

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml")
                            .read_text())["project"]
    assert searec.__version__ == project["version"]


def test_help_and_version_import_neither_torch_nor_the_data_stack():
    """``searec --help``, ``--version`` and every subcommand's ``--help`` answer without
    importing torch, pandas, scipy or optuna (a behaviour check; benchmarks/cli_startup.py
    times it). Run in a fresh interpreter: this test process has imported them all."""
    import subprocess
    import sys

    from searec.cli import command_paths

    commands = [["--help"], ["--version"], *([*p, "--help"] for p in command_paths())]
    assert len(commands) > 20
    script = (
        "import json, sys\n"
        "from searec.cli import main\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (argv, exc.code)\n"
        "    else:\n"
        "        raise AssertionError(f'{argv}: did not exit')\n"
        "heavy = sorted({'torch', 'pandas', 'scipy', 'optuna', 'numpy'} & set(sys.modules))\n"
        "print(json.dumps(heavy))\n")
    out = subprocess.run([sys.executable, "-c", script, json.dumps(commands)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_package_root_imports_its_api_on_first_use():
    import subprocess
    import sys

    script = ("import sys, searec\n"
              "assert 'torch' not in sys.modules\n"
              "assert callable(searec.train) and searec.graphs.InteractionGraph\n"
              "assert 'torch' in sys.modules\n"
              "try:\n"
              "    searec.no_such_name\n"
              "except AttributeError:\n"
              "    pass\n"
              "else:\n"
              "    raise AssertionError('no AttributeError')\n"
              "assert set(searec.__all__) == set(searec._EXPORTS) <= set(dir(searec))\n")
    subprocess.run([sys.executable, "-c", script], check=True)
