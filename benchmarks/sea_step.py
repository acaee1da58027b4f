"""Where one SEA training step goes, part by part, beside LightGCN's whole step.

    python benchmarks/sea_step.py [--data ../shared/data/tiktok] [--repeats 15]
        [--threads 1] [--precision auto|float32|bfloat16] [--set KEY=VALUE ...]
        [--name sea_step] [--note TEXT]

Builds SEA and LightGCN with their defaults on the data (cold users dropped, as
benchmarks/zoo_cost.py), draws one batch of the trainer's size, and times with
``time.perf_counter`` (min and median over ``--repeats`` after one warm-up call), each
part forward and backward on its own: the modality encoders' MLPs over every item, the
normalisation of the (users + items) node rows, the propagation over the user-item
graph, the item-item kNN propagation, BPR, and the separation terms; then SEA's whole
loss, its whole trainer step (forward, backward, Adam, the auxiliary objectives) and
LightGCN's. The parts are timed apart, so their sum need not equal the step (autograd's
bookkeeping and the concatenations are in the step only; BPR applies the per-user
modality weights to the batch's rows, as SEA does). ``--precision`` (default auto, as
searec's train.precision) applies to both models; the table names what it resolved to.
``torch.profiler`` is not used: it inflates element-wise operators (docs/performance.md).
Writes benchmarks/results/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from searec.training.trainer import Trainer

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    """Milliseconds per call, min and median over ``repeats`` after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"min_ms": min(samples), "median_ms": statistics.median(samples)}


def trainer_for(model_name: str, data: str, threads: int, run_dir: str,
                precision: str = "auto", overrides: Sequence[str] = ()) -> Trainer:
    from searec.config import load_config
    from searec.data.load import load_dataset
    from searec.graphs import InteractionGraph
    from searec.runs import build_model
    from searec.training.trainer import Trainer

    cfg = load_config(None, [f"model.name={model_name}", f"data.path={data}",
                             "data.cold_users=drop", f"train.threads={threads}",
                             "train.progress=false", f"train.precision={precision}",
                             *overrides])
    dataset = load_dataset(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg, dataset)
    graph = InteractionGraph.from_train(dataset.train)
    return Trainer(model, dataset, graph, cfg.train, cfg.eval, run_dir, torch.device("cpu"),
                   log=lambda _m: None)


def first_batch(trainer: Trainer) -> Batch:
    from searec.data.sampling import bpr_batches

    rng = np.random.default_rng(0)
    return next(iter(bpr_batches(trainer.users, trainer.items, trainer.sampler,
                                 trainer.cfg.batch_size, rng)))


def sea_parts(trainer: Trainer, batch: Batch, repeats: int) -> dict[str, dict[str, float]]:
    from searec.graphs import propagated_sum
    from searec.losses import bpr_indexed_loss
    from searec.ops import unit_rows_blocks

    model, graph = trainer.model, trainer.graph
    users, pos, neg = (torch.from_numpy(a) for a in batch)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16,
                              enabled=trainer.precision == "bfloat16")
    inputs = model.item_inputs()
    width = model.params.embedding_dim
    n_nodes = model.n_users + model.n_items
    gen = torch.Generator().manual_seed(0)

    def encoders() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            total = sum(enc.mlp[2](enc.mlp[1](inputs[m].through(enc.mlp[0]))).sum()
                        for m, enc in model.encoders.items())
        total.backward()  # type: ignore[union-attr]

    joint = width * len(model.names)
    blocks = [[torch.randn(n, width, generator=gen, requires_grad=True)
               for n in (model.n_users, model.n_items)] for _ in model.names]
    weights = torch.randn(n_nodes, joint, generator=gen)

    def normalise() -> None:  # every modality's block side by side, as SEA runs it
        unit_rows_blocks(blocks).backward(weights)

    nodes = torch.randn(n_nodes, joint, generator=gen, requires_grad=True)

    def user_item_propagation() -> None:  # one product per layer for all modalities
        propagated_sum(graph.norm_adj, nodes, model.params.n_layers).backward(weights)

    item_rep = torch.randn(model.n_items, joint, generator=gen, requires_grad=True)
    user_rep = torch.randn(model.n_users, joint, generator=gen, requires_grad=True)
    user_weights = torch.randn(model.n_users, len(model.names), generator=gen,
                               requires_grad=True)

    item_grad = torch.randn(model.n_items, joint, generator=gen)

    def knn_propagation() -> None:
        model.through_item_graph(item_rep).backward(item_grad)

    def bpr() -> None:  # on the unweighted user rows and their modality weights, as SEA
        bpr_indexed_loss(user_rep, item_rep, users, pos, neg,
                         user_weights=user_weights).backward()

    def separation() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            total = model.separation_losses(None, pos, neg).total
        total.backward()

    def loss() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            total = model.loss(graph, users, pos, neg).loss
        total.backward()

    return {
        "encoder MLPs over every item (all modalities)": timed(encoders, repeats),
        "normalise node rows (all modalities)": timed(normalise, repeats),
        "user-item propagation (all modalities)": timed(user_item_propagation, repeats),
        "item-item kNN propagation": timed(knn_propagation, repeats),
        "BPR": timed(bpr, repeats),
        "separation terms": timed(separation, repeats),
        "whole loss, forward + backward": timed(loss, repeats),
        "whole trainer step": timed(lambda: trainer.train_step(batch, 1), repeats),
    }


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tiktok"))
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                    help="train.precision for both models (auto, the default: bfloat16 "
                    "where the CPU has bf16 arithmetic): bfloat16 runs SEA's step, loss, "
                    "encoders and separation terms under autocast (sparse products stay "
                    "float32)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides for SEA, e.g. model.separation.distancing=club")
    ap.add_argument("--name", default="sea_step")
    ap.add_argument("--note", default="", help="code version, what else ran meanwhile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        sea = trainer_for("sea", args.data, args.threads, tmp, args.precision, args.set)
        sea.model.train()
        batch = first_batch(sea)
        parts = sea_parts(sea, batch, args.repeats)
        lightgcn = trainer_for("lightgcn", args.data, args.threads, tmp, args.precision)
        lightgcn.model.train()
        light_batch = first_batch(lightgcn)
        parts["LightGCN: whole trainer step"] = timed(
            lambda: lightgcn.train_step(light_batch, 1), args.repeats)
    sea_step = parts["whole trainer step"]["min_ms"]
    light_step = parts["LightGCN: whole trainer step"]["min_ms"]
    meta = {"data": args.data, "threads": args.threads, "repeats": args.repeats,
            "precision": args.precision, "precision_run": sea.precision,
            "overrides": args.set,
            "batch": len(batch[0]), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "note": args.note,
            "sea_over_lightgcn_step_min": sea_step / light_step}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "parts": parts}, indent=1) + "\n")
    lines = [f"# One SEA training step, part by part, on `{Path(args.data).name}`", "",
             f"Defaults (train.precision={args.precision}"
             f"{f': {sea.precision}' if args.precision == 'auto' else ''}"
             f"{''.join(', ' + o for o in args.set)}), batch {meta['batch']:,}, "
             f"{args.threads} thread(s), torch "
             f"{meta['torch']}, {meta['cpus']} CPUs ({meta['processor']}); ms per call, min / "
             f"median of {args.repeats} after a warm-up; parts timed apart (forward + "
             "backward)." + (f" {args.note}" if args.note else ""), "",
             "| part | ms (min / median) | share of SEA's step (min) |", "|---|---|---|"]
    for name, t in parts.items():
        share = f"{t['min_ms'] / sea_step:.0%}" if not name.startswith("LightGCN") else ""
        lines.append(f"| {name} | {t['min_ms']:.1f} / {t['median_ms']:.1f} | {share} |")
    lines += ["", f"SEA's step / LightGCN's step (min): {meta['sea_over_lightgcn_step_min']:.1f}x."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
