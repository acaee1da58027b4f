"""Peak memory and time of SEA training steps at scale: ``model.recompute`` off and on, or
``train.cpu_memory`` release and reuse, or huge pages off and on (``--compare``).

The same synthetic data as benchmarks/scale.py (clustered, 200,000 items, image/text/audio
64/48/32-d, 20 interactions per user) and the same batch (the training pairs / 20, as one
of scale.py's 20-step epochs), but only the first ``--train-steps`` steps and no
evaluation: what a training step needs at a size, in minutes instead of hours. Each
setting runs in a fresh process, so its peak resident memory is its own (GiB, 2**30
bytes). Adam's state exists from the end of the first step, so take the peak over two
steps or more. ``--compare recompute`` (the default) keeps glibc's default allocation
(``release``, as the scale runs in docs/performance.md used); ``--compare cpu_memory``
runs without recompute; ``--compare huge_pages`` runs ``release`` without recompute, with
torch's large blocks on 4 KiB pages and then on transparent huge pages (searec's
default, searec/hugepages.py); ``--compare scale`` runs only scale.py's setting (release,
huge pages, no recompute): with ``--train-steps 20``, one whole epoch of scale.py, step by
step, where its full evaluation would take hours more; ``--compare precision`` runs that
setting in float32 and in bfloat16. Elsewhere ``--precision`` (default auto, as searec's
train.precision) applies; each row names the precision it ran in.
Writes benchmarks/results/step_memory.{json,md}.

    python benchmarks/step_memory.py [--compare recompute|cpu_memory|huge_pages|scale|precision] \
        [--interactions 5e6] [--embedding-dim 128] [--train-steps 2] [--threads 1] \
        [--knn-method hnsw] [--knn-cache DIR] [--precision auto] [--name STEM]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# scale.py beside this file: its data and its peak-memory reading, so both measure alike
_spec = importlib.util.spec_from_file_location("scale", Path(__file__).with_name("scale.py"))
assert _spec is not None and _spec.loader is not None
scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale)


SETTINGS = {"recompute": [{"recompute": False, "cpu_memory": "release"},
                           {"recompute": True, "cpu_memory": "release"}],
            "cpu_memory": [{"recompute": False, "cpu_memory": "release"},
                           {"recompute": False, "cpu_memory": "reuse"}],
            "huge_pages": [{"recompute": False, "cpu_memory": "release", "huge_pages": False},
                           {"recompute": False, "cpu_memory": "release", "huge_pages": True}],
            "scale": [{"recompute": False, "cpu_memory": "release", "huge_pages": True}],
            "precision": [{"recompute": False, "cpu_memory": "release", "huge_pages": True,
                           "precision": "float32"},
                          {"recompute": False, "cpu_memory": "release", "huge_pages": True,
                           "precision": "bfloat16"}]}


def run_one(args: argparse.Namespace, recompute: bool, cpu_memory: str = "release",
            huge_pages: bool | None = None, precision: str | None = None) -> dict:
    from searec.config import EvalConfig, TrainConfig
    from searec.data.sampling import bpr_batches
    from searec.graphs import InteractionGraph
    from searec.hugepages import huge_pages_active
    from searec.models import get_model_class
    from searec.training.memory import keep_freed_memory
    from searec.training.trainer import Trainer

    # as the trainer does for train.cpu_memory=reuse, before the large allocations
    if cpu_memory == "reuse" and not keep_freed_memory():
        raise RuntimeError("cpu_memory=reuse needs glibc")
    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    ds = scale.scale_dataset(args.interactions, args.items, per_user=20)
    generate_s = time.perf_counter() - t
    cls = get_model_class("sea")
    params = cls.Params.model_validate({"knn_method": args.knn_method, "recompute": recompute,
                                        "embedding_dim": args.embedding_dim})
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = cls.build(ds, params, args.knn_cache or tmp)
    batch = math.ceil(ds.stats()["train"] / 20)
    # the trainer's own step (fused Adam, gradients cleared before the forward pass, q steps)
    train_cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-3, progress=False, seed=0,
                            precision=precision or args.precision)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, ds, InteractionGraph.from_train(ds.train), train_cfg,
                          EvalConfig(), run_dir, torch.device("cpu"), log=lambda _m: None)
        rss_before = scale.peak_rss_gb()
        step_s, losses = [], []
        batches = bpr_batches(trainer.users, trainer.items, trainer.sampler, batch,
                              np.random.default_rng(0))
        for _, arrays in zip(range(args.train_steps), batches, strict=False):
            t = time.perf_counter()
            parts, _logged = trainer.train_step(arrays, epoch=1)
            step_s.append(time.perf_counter() - t)
            losses.append(float(parts["loss"].detach()))
    return {"interactions": int(ds.stats()["interactions"]), "users": ds.n_users,
            "items": ds.n_items, "batch_size": batch, "recompute": recompute,
            "cpu_memory": cpu_memory, "precision": trainer.precision,
            # asked for through the environment by the parent (torch reads it once, at
            # start); what the kernel gave, from the process itself
            "huge_pages_asked": huge_pages, "huge_pages": huge_pages_active(),
            "embedding_dim": params.embedding_dim, "generate_s": generate_s,
            "step_s": step_s, "losses": losses, "peak_rss_before_steps_gib": rss_before,
            "peak_rss_gib": scale.peak_rss_gb()}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Training-step memory", "",
        f"SEA ({meta['embedding_dim']}-d embeddings) on clustered synthetic data as in "
        f"scale.py: {rows[0]['users']:,} users, {rows[0]['items']:,} items, "
        f"{rows[0]['interactions']:,} interactions, batch {rows[0]['batch_size']:,} (one of 20 "
        f"steps per epoch); the first {meta['train_steps']} steps, no evaluation. "
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} threads.", "",
        "| model.recompute | train.cpu_memory | huge pages | precision | step times (s) | "
        "all steps (s) | peak RSS before the steps (GiB) | peak RSS (GiB) | losses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {str(r['recompute']).lower()} | {r.get('cpu_memory', 'release')} | "
            f"{ {True: 'yes', False: 'no'}.get(r.get('huge_pages'), '-')} | "
            f"{r.get('precision', 'float32')} | "
            f"{', '.join(f'{s:.1f}' for s in r['step_s'])} | {sum(r['step_s']):.1f} | "
            f"{r['peak_rss_before_steps_gib']:.2f} | {r['peak_rss_gib']:.2f} | "
            f"{', '.join(f'{x:.5f}' for x in r['losses'])} |")
    lines += ["", "Equal losses: recompute changes what is kept for the backward pass, "
              "cpu_memory where freed memory goes and huge pages how it is mapped, not what "
              "is computed (precision does change it: bfloat16 losses agree to about 2 "
              "digits)."]
    if meta.get("note"):
        lines += ["", meta["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", choices=sorted(SETTINGS), default="recompute",
                    help="the settings to run (two; scale: one), each in a fresh process")
    ap.add_argument("--interactions", type=float, default=5e6)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--embedding-dim", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--knn-method", choices=["exact", "hnsw"], default="hnsw")
    ap.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                    help="train.precision where the setting names none (auto, searec's "
                    "default: bfloat16 where the CPU has bf16 arithmetic)")
    ap.add_argument("--knn-cache", metavar="DIR", help="as in scale.py: reuse its kNN graphs")
    ap.add_argument("--name", default="step_memory", help="results file stem")
    ap.add_argument("--note", default="", help="what else to record (what shared the machine)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child: the setting as JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args, **json.loads(args.one))))
        return
    meta = {"compare": args.compare, "embedding_dim": args.embedding_dim,
            "train_steps": args.train_steps,
            "threads": args.threads, "knn_method": args.knn_method,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "python": platform.python_version(), "note": args.note}
    rows = []
    for setting in SETTINGS[args.compare]:
        cmd = [sys.executable, __file__, "--one", json.dumps(setting)]
        for flag in ("interactions", "items", "embedding_dim", "train_steps", "threads",
                     "knn_method", "knn_cache", "precision"):
            value = getattr(args, flag)
            if value is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(value)]
        # huge pages asked for (searec's default) unless the setting says otherwise; each
        # row records what the kernel gave
        env = scale.huge_pages_env(setting.get("huge_pages") is not False)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"{setting} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
    (RESULTS / f"{args.name}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
