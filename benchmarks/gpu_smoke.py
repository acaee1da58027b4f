"""GPU smoke check: the graph operators' propagation on the device against a float64
dense reference, every registered model trained briefly on a real dataset, one full
evaluation each, and one SEA training step at the 1M-interaction scale setting, with
wall times and peak device memory. Prepared for a borrowed accelerator; runs anywhere.

    python benchmarks/gpu_smoke.py [--data ../shared/data/tiktok] [--device cuda]
        [--epochs 2] [--models a,b,...] [--scale-interactions 1e6] [--out DIR]

A model that fails is recorded with the last lines of its error and the others still
run. Writes DIR/gpu_smoke.json and DIR/gpu_smoke.md (DIR: $OUT if set, else
benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 1024**3


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.cpu().double() - want).abs().max() / want.abs().max())


def operator_check(device: torch.device) -> list[dict]:
    """propagated_sum (3 layers) and its gradient on ``device``, for the user-item block
    operator and the general sparse one, float32 and bfloat16 inputs, row- and
    column-major, against dense float64 matrix powers on the CPU: the largest absolute
    error over the reference's largest magnitude (a bfloat16 gradient is rounded to
    bfloat16, about 4e-3 relative)."""
    import scipy.sparse as sp

    from searec.graphs import (
        BipartiteOperator,
        SparseOperator,
        bipartite_adjacency,
        propagated_sum,
    )
    from searec.graphs.operators import sym_normalize

    r = sp.random(300, 200, density=0.05, random_state=0, format="lil", dtype=np.float32)
    r[7, :] = 0  # a cold user and a cold item
    r[:, 11] = 0
    train = sp.csr_matrix(r)
    whole = sym_normalize(bipartite_adjacency(train))
    dense = torch.from_numpy(whole.toarray()).double()
    n, layers = dense.shape[0], 3
    powers = sum(torch.linalg.matrix_power(dense, k) for k in range(layers + 1))
    operators = {"bipartite": BipartiteOperator.normalized(train, device),
                 "sparse": SparseOperator.from_scipy(whole, device, symmetric=True)}
    gen = torch.Generator().manual_seed(0)
    x64, w64 = torch.randn(n, 16, generator=gen).double(), torch.randn(n, 16, generator=gen)
    rows = []
    for name, op in operators.items():
        for dtype in (torch.float32, torch.bfloat16):
            for layout in ("row", "column"):
                row: dict = {"operator": name, "input": str(dtype).removeprefix("torch."),
                             "layout": layout}
                try:
                    x_in = x64.to(dtype)
                    x = x_in.to(device, copy=True)
                    if layout == "column":
                        x = x.t().contiguous().t()
                    x.requires_grad_(True)
                    out = propagated_sum(op, x, layers)
                    (out * w64.to(device, out.dtype)).sum().backward()
                    want = powers @ x_in.double()
                    want_grad = powers.T @ w64.double()
                    row.update(
                        ok=True, device=out.device.type, out_dtype=str(out.dtype),
                        rel_err=_relative_error(out.detach(), want),
                        rel_grad_err=_relative_error(x.grad, want_grad))
                except Exception:  # recorded; the other cases still run
                    row.update(ok=False,
                               error=traceback.format_exc().strip().splitlines()[-3:])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def train_each_model(args: argparse.Namespace, device: torch.device) -> list[dict]:
    from searec.config import load_config
    from searec.models import registry
    from searec.runs import train

    names = args.models.split(",") if args.models else sorted(registry())
    rows = []
    for name in names:
        row: dict = {"model": name, "device": device.type}
        overrides = [f"model.name={name}", f"train.epochs={args.epochs}",
                     f"train.device={device.type}", "train.progress=false",
                     "data.cold_users=drop"]
        if args.data:
            overrides.append(f"data.path={args.data}")
        with tempfile.TemporaryDirectory() as out:
            try:
                cfg = load_config(None, overrides)
                _reset_peak(device)
                t = time.perf_counter()
                metrics = train(cfg, Path(out) / name, log=lambda _m: None)
                row.update(ok=True, wall_s=round(time.perf_counter() - t, 2),
                           precision=metrics["precision"],  # train.precision=auto resolved
                           train_s=metrics["train_seconds"], eval_s=metrics["eval_seconds"],
                           test_recall_at_20=metrics["test"]["recall@20"],
                           peak_gpu_gb=_peak_gb(device))
            except Exception:  # recorded; the other models still run
                row.update(ok=False, error=traceback.format_exc().strip().splitlines()[-3:])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def scale_step(args: argparse.Namespace, device: torch.device) -> dict:
    """One SEA step (batch = train / 20, as benchmarks/scale.py) at the scale setting."""
    from scale import scale_dataset

    from searec.config import EvalConfig, TrainConfig
    from searec.data.sampling import NegativeSampler
    from searec.graphs import InteractionGraph
    from searec.models import get_model_class
    from searec.training.trainer import Trainer

    out: dict = {"interactions": args.scale_interactions}
    try:
        t = time.perf_counter()
        ds = scale_dataset(args.scale_interactions, 200_000, 20)
        out["generate_s"] = round(time.perf_counter() - t, 2)
        cls = get_model_class("sea")
        params = cls.Params.model_validate({"knn_method": "hnsw"})
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as run:
            t = time.perf_counter()
            torch.manual_seed(0)
            model = cls.build(ds, params, cache)
            graph = InteractionGraph.from_train(ds.train)
            out["build_s"] = round(time.perf_counter() - t, 2)
            users, items = ds.train_pairs()
            batch = math.ceil(len(users) / 20)
            trainer = Trainer(model, ds, graph, TrainConfig(epochs=1, batch_size=batch,
                                                            lr=1e-3, progress=False),
                              EvalConfig(topk=[20]), run, device, log=lambda _m: None)
            neg = NegativeSampler(ds.train).sample(users[:batch], np.random.default_rng(0))
            _reset_peak(device)
            t = time.perf_counter()
            parts, _ = trainer.train_step((users[:batch], items[:batch], neg), 1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out.update(ok=True, step_s=round(time.perf_counter() - t, 3), batch=batch,
                       precision=trainer.precision,
                       loss=float(parts["loss"].detach()), peak_gpu_gb=_peak_gb(device))
    except Exception:
        out.update(ok=False, error=traceback.format_exc().strip().splitlines()[-3:])
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tiktok"),
                    help="MMRec folder ('' for the embedded synthetic data)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--models", default="", help="comma-separated (default: every model)")
    ap.add_argument("--scale-interactions", type=float, default=1e6)
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks"
                                                                   / "results"))
    args = ap.parse_args()
    device = torch.device(args.device)
    meta = {"device": args.device, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "data": args.data or "synthetic", "epochs": args.epochs}
    result = {"meta": meta, "operators": operator_check(device),
              "models": train_each_model(args, device),
              "scale_step": scale_step(args, device)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_smoke.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# GPU smoke ({meta['gpu'] or args.device}, torch {meta['torch']})", "",
             "| propagated sum | input | layout | ok | device | relative error | "
             "gradient's |",
             "|---|---|---|---|---|---|---|"]
    for r in result["operators"]:
        lines.append(f"| {r['operator']} | {r['input']} | {r['layout']} | {r['ok']} | "
                     f"{r.get('device', '')} | {r.get('rel_err', 0):.1e} | "
                     f"{r.get('rel_grad_err', 0):.1e} |")
    lines += ["", "| model | device | ok | precision | train s | eval s | peak GPU GiB | "
              "test R@20 |", "|---|---|---|---|---|---|---|---|"]
    for r in result["models"]:
        lines.append(f"| {r['model']} | {r['device']} | {r['ok']} | "
                     f"{r.get('precision', '')} | "
                     f"{r.get('train_s', '')} | "
                     f"{r.get('eval_s', '')} | {r.get('peak_gpu_gb') or ''} | "
                     f"{r.get('test_recall_at_20', '')} |")
    s = result["scale_step"]
    lines += ["", f"SEA step at {s['interactions']:.0e} interactions: ok {s['ok']}, "
              f"{s.get('step_s', '')} s in {s.get('precision', '')}, peak GPU "
              f"{s.get('peak_gpu_gb') or ''} GiB"]
    (out / "gpu_smoke.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
