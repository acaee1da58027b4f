"""Scale: kNN graph, one training epoch and a full evaluation on large synthetic data.

Items and modalities are fixed (200,000 items; image 64-d, text 48-d, audio 32-d); users
grow with the interactions (20 per user on average), so 20M interactions means 1M users.
Each size runs in a fresh process so that its peak resident memory is its own. The items
(and so the kNN graphs) do not depend on the number of users; ``--knn-cache DIR`` lets
later sizes load the graphs the first one built. An epoch
has a fixed number of steps (the batch grows with the data), because every step of SEA
(as of LightGCN) propagates over the whole graph: with a fixed batch an epoch would cost
steps x graph size, quadratic in interactions. Writes benchmarks/results/scale.{json,md}
(``--out DIR``: DIR/STEM.{json,md}). ``--device cuda`` trains and evaluates on the GPU (the
data, kNN graphs and resident-memory figures stay the CPU's) and adds its peak memory.

    python benchmarks/scale.py [--interactions 1e6 5e6 2e7] [--model sea] [--steps 20] \
        [--threads N] [--knn-method exact|hnsw] [--knn-cache DIR] [--cpu-memory reuse|release]
        [--embedding-dim D] [--recompute] [--huge-pages on|off] [--precision auto] [--epoch-only]
        [--device cpu|cuda] [--name STEM] [--out DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from searec.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def peak_rss_gb() -> float:
    """Peak resident memory in GiB (2**30 bytes; the keys say "gb" for short)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def scale_dataset(interactions: float, items: int, per_user: int) -> Dataset:
    """This benchmark's data: clustered synthetic, interactions / per_user users (>= 1,000)."""
    from searec.data import make_synthetic

    return make_synthetic(generator="clustered", n_users=max(1000, round(interactions / per_user)),
                          n_items=items, interactions_per_user=per_user, seed=0)


def _synchronized(device: torch.device) -> torch.device:
    """``device``, once the work queued on it has finished (GPU work runs asynchronously:
    a timer read before this would stop early)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return device


def peak_gpu_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(_synchronized(device)) / 1024**3


def huge_pages_env(on: bool) -> dict[str, str]:
    """This environment for a size's fresh process, with torch's huge pages asked for or
    turned off (torch reads the variable once, at the process's first large allocation)."""
    from searec.hugepages import ENV_VAR

    return {**os.environ, ENV_VAR: "1" if on else "0"}


def run_one(args: argparse.Namespace) -> dict:
    from searec.config import EvalConfig, TrainConfig
    from searec.graphs import InteractionGraph, mixed_knn_graph
    from searec.hugepages import huge_pages_active
    from searec.models import get_model_class
    from searec.training.memory import keep_freed_memory
    from searec.training.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.cpu_memory == "reuse":  # as `searec train` does on CPU by default
        keep_freed_memory()
    out: dict = {"target_interactions": int(args.one), "model": args.model,
                 "huge_pages": huge_pages_active(), "device": device.type}
    t = time.perf_counter()
    ds = scale_dataset(args.one, args.items, args.per_user)
    out["generate_s"] = time.perf_counter() - t
    st = ds.stats()
    out.update(users=st["users"], items=st["items"], interactions=st["interactions"],
               train=st["train"], test_users=st["test_users"])
    cls = get_model_class(args.model)
    given = {"knn_method": args.knn_method} if args.model in ("sea", "freedom") else {}
    if args.embedding_dim:
        given["embedding_dim"] = args.embedding_dim
    if args.recompute:
        given["recompute"] = True
    params = cls.Params.model_validate(given)
    out["embedding_dim"] = getattr(params, "embedding_dim", None)
    out["recompute"] = getattr(params, "recompute", None)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.knn_cache or tmp
        if args.knn_cache:
            Path(cache).mkdir(parents=True, exist_ok=True)
            out["knn_from_cache"] = any(Path(cache).iterdir())
        if hasattr(params, "knn_k"):
            t = time.perf_counter()
            mixed_knn_graph(ds.modalities, params.knn_k, params.knn_weights, cache,
                            params.knn_method)
            out["knn_s"] = time.perf_counter() - t
        out["rss_after_knn_gb"] = peak_rss_gb()
        t = time.perf_counter()
        torch.manual_seed(0)  # the same initial model at every size and setting
        model = cls.build(ds, params, cache)
        graph = InteractionGraph.from_train(ds.train)
        out["build_s"] = time.perf_counter() - t
    batch = math.ceil(st["train"] / args.steps)
    train_cfg = TrainConfig(epochs=1, batch_size=batch, lr=1e-3, progress=False, seed=0,
                            precision=args.precision)
    eval_cfg = EvalConfig(topk=[20], batch_size=args.eval_batch)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, ds, graph, train_cfg, eval_cfg, run_dir, device,
                          log=lambda _m: None)
        out["precision"] = trainer.precision
        _synchronized(device)
        t = time.perf_counter()
        losses = trainer.train_epoch(1)
        _synchronized(device)
        out["epoch_s"] = time.perf_counter() - t
        out["steps"] = args.steps
        out["batch_size"] = batch
        out["loss"] = losses["loss"]
        out["rss_after_epoch_gb"] = peak_rss_gb()
        if not args.epoch_only:
            t = time.perf_counter()
            metrics = trainer.evaluate("test")
            _synchronized(device)
            out["eval_s"] = time.perf_counter() - t
            out["test_recall@20"] = metrics["recall@20"]
            out["bare_eval_s"] = bare_scores_and_topk(model, ds, args.eval_batch)
    out["peak_rss_gb"] = peak_rss_gb()
    out["peak_gpu_gb"] = peak_gpu_gb(device)
    return out


def bare_scores_and_topk(model: torch.nn.Module, ds: Dataset, batch: int) -> float:
    """Seconds for the least an evaluation must do, on the representations the
    evaluation just prepared: every test user's scores (a dense product) and their top
    20, in the evaluation's batches, each batch's scores freed before the next."""
    import numpy as np

    user_rep, item_rep = model.representations()
    device = _synchronized(item_rep.device)
    users = torch.from_numpy(np.flatnonzero(np.diff(ds.test.indptr) > 0)).to(device)
    t = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(users), batch):
            torch.topk(user_rep[users[s : s + batch]] @ item_rep.T, 20, dim=1)
    _synchronized(device)
    return time.perf_counter() - t


def markdown(rows: list[dict], meta: dict) -> str:
    base = rows[0]
    lines = [
        "# Scale benchmark", "",
        f"{meta['model']} (embedding_dim {meta.get('embedding_dim', 'default')}"
        f"{', recompute' if meta.get('recompute') else ''}) on clustered "
        f"synthetic data, {base['items']:,} items, 3 modalities "
        f"({meta.get('knn_method', 'exact')} kNN graphs), "
        f"{meta['per_user']} interactions per user on average; one epoch = {meta['steps']} "
        f"steps; full-ranking evaluation of every test user (eval batch "
        f"{meta['eval_batch']} users); train.cpu_memory={meta['cpu_memory']}; huge pages "
        f"{meta.get('huge_pages', 'on')} (asked; each row says whether the kernel gave them). "
        f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} threads"
        f"{'; trained and evaluated on ' + meta['gpu'] if meta.get('gpu') else ''}. "
        "One run per size.", "",
        "| interactions | users | huge pages | precision | kNN graph (s) | one epoch (s) | "
        "evaluation (s) | bare scores + top-20 (s) | evaluation / bare | generate (s) | "
        "peak RSS to the epoch's end (GiB) | peak RSS (GiB) | "
        "epoch / interactions vs smallest | eval / users vs smallest |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def figure(row: dict, key: str, digits: int = 1) -> str:
        # rows from --epoch-only runs have no evaluation; older rows no bare measurement
        return f"{row[key]:.{digits}f}" if key in row else "-"

    for r in rows:
        epoch_ratio = (r["epoch_s"] / r["interactions"]) / (base["epoch_s"] / base["interactions"])
        eval_ratio = (f"{(r['eval_s'] / r['users']) / (base['eval_s'] / base['users']):.2f}"
                      if "eval_s" in r and "eval_s" in base else "-")
        over_bare = (f"{r['eval_s'] / r['bare_eval_s']:.2f}"
                     if "bare_eval_s" in r and "eval_s" in r else "-")
        lines.append(
            f"| {r['interactions']:,} | {r['users']:,} | "
            f"{ {True: 'yes', False: 'no'}.get(r.get('huge_pages'), '-')} | "
            f"{r.get('precision', 'float32')} | {r.get('knn_s', float('nan')):.1f}"
            f"{' (cached)' if r.get('knn_from_cache') else ''} | "
            f"{r['epoch_s']:.1f} | {figure(r, 'eval_s')} | {figure(r, 'bare_eval_s')} | "
            f"{over_bare} | {r['generate_s']:.1f} | {figure(r, 'rss_after_epoch_gb', 2)} | "
            f"{r['peak_rss_gb']:.2f} | {epoch_ratio:.2f} | {eval_ratio} |")
    gpu_peaks = [f"{r['interactions']:,}: {r['peak_gpu_gb']:.2f} GiB" for r in rows
                 if r.get("peak_gpu_gb") is not None]
    if gpu_peaks:
        lines += ["", "Peak GPU memory (allocated by torch): " + "; ".join(gpu_peaks) + "."]
    lines += ["", "Ratios near 1 mean cost linear in interactions (epoch) and in users "
              "(evaluation); the kNN graph depends on the items only. The evaluation "
              "includes computing the representations (one forward pass); the bare "
              "measurement starts from them."]
    if meta.get("note"):
        lines += ["", meta["note"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--interactions", type=float, nargs="+", default=[1e6, 5e6, 2e7])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--per-user", type=int, default=20)
    ap.add_argument("--model", default="sea")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eval-batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--name", default="scale", help="results file stem")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--knn-cache", metavar="DIR",
                    help="keep the kNN graphs here: the items (and so the graphs) are the same "
                    "at every size, so later sizes load them (marked in the table)")
    ap.add_argument("--knn-method", choices=["exact", "hnsw"], default="exact",
                    help="hnsw: approximate kNN graphs (faiss), time ~ items log items")
    ap.add_argument("--cpu-memory", choices=["reuse", "release"], default="reuse",
                    help="train.cpu_memory: reuse freed memory between steps (faster, "
                    "higher peak RSS) or return it to the OS")
    ap.add_argument("--embedding-dim", type=int, default=None,
                    help="model.embedding_dim (default: the model's); the user tables, their "
                    "Adam state and the propagated activations grow with it")
    ap.add_argument("--recompute", action="store_true",
                    help="model.recompute=true: recompute each modality's propagation in the "
                    "backward pass instead of keeping its activations (less memory, more time)")
    ap.add_argument("--huge-pages", choices=["on", "off"], default="on",
                    help="THP_MEM_ALLOC_ENABLE for each size's process: torch's large CPU "
                    "blocks on transparent huge pages (searec's default) or 4 KiB pages")
    ap.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                    help="train.precision (auto, searec's default: bfloat16 where the CPU "
                    "has bf16 arithmetic); each row names the one it trained in")
    ap.add_argument("--epoch-only", action="store_true",
                    help="train the one epoch and stop: no evaluation, no bare measurement "
                    "(how the epoch grows with size, in a fraction of the time)")
    ap.add_argument("--note", default="", help="what else to record with the results "
                    "(code version, what shared the machine)")
    ap.add_argument("--one", type=float, help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    meta = {"model": args.model, "per_user": args.per_user, "steps": args.steps,
            "knn_method": args.knn_method, "cpu_memory": args.cpu_memory,
            "eval_batch": args.eval_batch, "embedding_dim": args.embedding_dim or "default",
            "recompute": args.recompute, "huge_pages": args.huge_pages,
            "epoch_only": args.epoch_only,
            "precision": args.precision, "machine": f"{platform.machine()}, "
            f"{os.cpu_count()} cores", "torch": torch.__version__,
            "threads": args.threads or torch.get_num_threads(), "python": platform.python_version(),
            "device": args.device, "note": args.note,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None}
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for n in args.interactions:
        cmd = [sys.executable, __file__, "--one", str(n), "--items", str(args.items),
               "--per-user", str(args.per_user), "--model", args.model, "--steps",
               str(args.steps), "--eval-batch", str(args.eval_batch), "--knn-method",
               args.knn_method, "--cpu-memory", args.cpu_memory, "--precision", args.precision,
               "--device", args.device]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.knn_cache:
            cmd += ["--knn-cache", args.knn_cache]
        if args.embedding_dim:
            cmd += ["--embedding-dim", str(args.embedding_dim)]
        if args.recompute:
            cmd.append("--recompute")
        if args.epoch_only:
            cmd.append("--epoch-only")
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env=huge_pages_env(args.huge_pages == "on"))
        if proc.returncode != 0:
            sys.exit(f"size {n:.0f} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
        # Rewritten after every size: a long run stopped part-way keeps the sizes it did.
        (args.out / f"{args.name}.json").write_text(
            json.dumps({"meta": meta, "runs": rows}, indent=2))
        (args.out / f"{args.name}.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
