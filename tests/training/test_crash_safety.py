"""A run killed with SIGKILL mid-epoch resumes to exactly the uninterrupted result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ARGS = ["train", "--model", "sea", "--epochs", "5", "--seed", "11",
        "data.synthetic.n_users=150", "data.synthetic.n_items=90",
        "data.synthetic.interactions_per_user=12", "train.batch_size=32", "train.lr=0.002",
        "model.separation.distancing=club", "model.separation.distancing.q_steps=2",
        "model.separation.mi_items=batch",
        "train.progress=false", "train.threads=1"]


def _searec(*args: str) -> list[str]:
    return [sys.executable, "-m", "searec", *args]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_epoch_then_resume_gives_identical_metrics(tmp_path):
    env = {**os.environ, "SEAREC_CACHE": str(tmp_path / "cache")}
    full, part = tmp_path / "full", tmp_path / "part"
    subprocess.run(_searec(*ARGS, "--out", str(full)), check=True, env=env,
                   capture_output=True, timeout=300)

    proc = subprocess.Popen(_searec(*ARGS, "--out", str(part)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = part / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline:
        if history.exists() and len(history.read_text().splitlines()) >= 3:  # 2 epochs done
            break
        if proc.poll() is not None:
            pytest.fail("training finished before it could be killed")
        time.sleep(0.02)
    time.sleep(0.25)  # into the third epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (part / "metrics.json").exists()
    done = len(history.read_text().splitlines()) - 1
    assert done < 5, "the kill came too late to test anything"

    subprocess.run(_searec("train", "--resume", str(part)), check=True, env=env,
                   capture_output=True, timeout=300)
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((part / "metrics.json").read_text())
    assert a["valid"] == b["valid"] and a["test"] == b["test"]
    assert a["best_epoch"] == b["best_epoch"] and b["epochs_run"] == 5
    assert (full / "history.csv").read_text().count("\n") == history.read_text().count("\n")
    assert not list(part.glob(".*.tmp"))  # temporary files a kill left behind are cleared
