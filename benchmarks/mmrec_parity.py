"""Parity with MMRec: the same model, data, seeds and hyper-parameters in MMRec and here.

MMRec (GitHub enoche/MMRec) is run from an unmodified checkout; everything it needs is
given from outside, and every such intervention is listed in PATCHES (and in
docs/models.md):

    python benchmarks/mmrec_parity.py pair --mmrec /work/mmrec --data ../shared/data/tiktok \
        --model bm3 --seed 1 --out runs/parity      # MMRec and searec side by side
    python benchmarks/mmrec_parity.py noisy --model lgmrec --seed 1 --out runs/parity  # see below
    python benchmarks/mmrec_parity.py equivalence --model lgmrec --mmrec /work/mmrec
    python benchmarks/mmrec_parity.py speed --model bm3 --out runs/parity   # nothing else running
    python benchmarks/mmrec_parity.py report --out runs/parity   # -> benchmarks/results/

``pair`` starts MMRec's run and searec's run of one (model, seed) at the same time, as two
processes with one thread each, so their epoch times are measured under the same machine
load; ``mmrec`` and ``ours`` run one side alone. Each side stops early on validation
recall@20 with patience 20 and reports test metrics at the best validation epoch, as MMRec
does. A finished side is not run again. ``noisy`` scores a finished searec LGMRec run as
MMRec's LGMRec scores (Gumbel noise kept at inference), which the report shows beside.
``equivalence`` gives MMRec's LGMRec and searec's the same weights and compares forward
pass, loss and gradients (benchmarks/results/mmrec_equivalence_lgmrec.json). ``speed`` is
``pair`` cut to ``--epochs`` (default 6) epochs, under OUT/speed/: the epoch-time ratio
measured with the two sides alone on the machine (pause everything else first).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("recall@20", "ndcg@20")

# searec model name -> (MMRec model name, MMRec hyper-parameters, searec overrides). The
# values are searec's defaults, which are the papers' and MMRec's (BM3's are the first of
# each list MMRec searches).
MODELS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "bm3": ("BM3", {"n_layers": 1, "dropout": 0.3, "reg_weight": 0.1, "cl_weight": 2.0},
            ["model.n_layers=1", "model.dropout=0.3", "model.reg_weight=0.1",
             "model.cl_weight=2.0"]),
    "lgmrec": ("LGMRec", {"cf_model": "lightgcn", "n_ui_layers": 2, "n_mm_layers": 2,
                          "n_hyper_layer": 1, "hyper_num": 4, "keep_rate": 0.5, "alpha": 0.3,
                          "cl_weight": 1e-4, "reg_weight": 1e-6},
               ["model.cf_model=lightgcn", "model.n_ui_layers=2", "model.n_mm_layers=2",
                "model.n_hyper_layers=1", "model.hyper_num=4", "model.keep_rate=0.5",
                "model.alpha=0.3", "model.cl_weight=1e-4", "model.reg_weight=1e-6"]),
}

# How the runs shared the machine (two CPU cores)
LOAD = ("one thread per run, and every run shared the two cores with exactly one other "
        "one-thread run: for BM3 its counterpart of the same seed (`pair`); for LGMRec the "
        "runs went through a two-worker queue, so a run's companion was another parity "
        "run or a grid run, and short tests ran beside them at times (for seed 3 the runs "
        "were paused instead while tests and benchmarks ran, which lengthens the epochs "
        "they paused in, not the median)")

# What is done to MMRec to run it here; nothing in its checkout is edited.
PATCHES = [
    "torchvision and lmdb, which MMRec imports at the top of its data module for raw "
    "images only (use_raw_features false never reaches them), are replaced by empty "
    "stand-in modules whose functions raise if called, rather than installing a second "
    "torch stack.",
    "np.float, removed in numpy 1.24, is set to float before MMRec is imported "
    "(its NDCG and MAP use it); numpy 2.4 / pandas 3.1 / torch 2.13 otherwise run it as is.",
    "Configuration passed as MMRec's config_dict (which overrides its YAML files): "
    "use_gpu false; data_path and the dataset's field names, inter file and feature files "
    "(image_feat.npy as its vision feature, audio_feat.npy as its text feature: MMRec "
    "knows two modalities by those names only); one value per hyper-parameter instead of "
    "its search lists; seed; save_recommended_topk false.",
    "scipy.sparse.dok_matrix._update (a private method MMRec's BM3 and LGMRec call to fill "
    "the adjacency, removed from scipy since) is given back as the plain dict update of "
    "the matrix's entries it was.",
    "torch.set_num_threads(threads) before the run (MMRec leaves torch's default).",
    "Trainer._train_epoch and Trainer.fit are wrapped from outside to time each training "
    "epoch (MMRec's own log drops the time when a model returns several losses) and to "
    "keep fit's return value (best validation result and the test result at that epoch).",
]


def install_stand_ins() -> None:
    """Empty torchvision / lmdb modules (see PATCHES): imported by MMRec, never called."""
    import types

    def unavailable(*_: Any, **__: Any) -> Any:
        raise RuntimeError("raw-image preprocessing is not available in the parity run")

    def stand_in(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return unavailable

    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "lmdb")
    for name in names:
        module = types.ModuleType(name)
        module.__getattr__ = stand_in  # type: ignore[method-assign]
        sys.modules.setdefault(name, module)
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]
    sys.modules["torchvision.transforms"].functional = (  # type: ignore[attr-defined]
        sys.modules["torchvision.transforms.functional"])


def prepare_mmrec(mmrec: Path, threads: int) -> None:
    """Make an unmodified MMRec checkout importable here (see PATCHES)."""
    import numpy as np
    import torch

    np.float = float  # type: ignore[attr-defined]  # see PATCHES
    install_stand_ins()
    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):  # see PATCHES
        sp.dok_matrix._update = lambda self, entries: self._dict.update(entries)
    torch.set_num_threads(threads)
    src = (mmrec / "src").resolve()
    os.chdir(src)  # MMRec reads its configs relative to the working directory
    sys.path.insert(0, str(src))


def mmrec_config(data: Path, model: str, seed: int, epochs: int | None = None
                 ) -> dict[str, Any]:
    """MMRec's config_dict for one run: the data, the shared protocol, the model's values."""
    data = data.resolve()
    return {
        "use_gpu": False, "gpu_id": 0, "seed": [seed], "hyper_parameters": ["seed"],
        "data_path": str(data.parent) + os.sep, "USER_ID_FIELD": "userID",
        "ITEM_ID_FIELD": "itemID", "TIME_FIELD": "timestamp",
        "inter_file_name": f"{data.name}.inter", "field_separator": "\t",
        "vision_feature_file": "image_feat.npy", "text_feature_file": "audio_feat.npy",
        "filter_out_cod_start_users": True, "save_recommended_topk": False,
        "embedding_size": 64, "feat_embed_dim": 64, "learning_rate": 1e-3,
        "train_batch_size": 2048, "stopping_step": 20, "epochs": epochs or 1000,
        **MODELS[model][1],
    }


def ours_overrides(model: str, seed: int) -> list[str]:
    """searec's overrides matching mmrec_config."""
    return [f"model.name={model}", *MODELS[model][2], f"train.seed={seed}", "train.lr=1e-3",
            "train.batch_size=2048", "train.patience=20", "model.embedding_dim=64"]


def run_mmrec(mmrec: Path, data: Path, model: str, seed: int, threads: int,
              out_json: Path, epochs: int | None = None) -> None:
    """One MMRec training run in this process; writes out_json."""
    prepare_mmrec(mmrec, threads)
    from common import trainer as trainer_module  # type: ignore[import-not-found]
    from utils.quick_start import quick_start  # type: ignore[import-not-found]

    mmrec_name = MODELS[model][0]
    epoch_seconds: list[float] = []
    fit_results: list[Any] = []
    train_epoch = trainer_module.Trainer._train_epoch
    fit = trainer_module.Trainer.fit

    def timed_train_epoch(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = train_epoch(self, *args, **kwargs)
        epoch_seconds.append(time.perf_counter() - start)
        return result

    def kept_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = fit(self, *args, **kwargs)
        fit_results.append(result)
        return result

    trainer_module.Trainer._train_epoch = timed_train_epoch
    trainer_module.Trainer.fit = kept_fit
    config = mmrec_config(data, model, seed, epochs)
    logging.getLogger().setLevel(logging.INFO)
    start = time.perf_counter()
    quick_start(model=mmrec_name, dataset=data.resolve().name, config_dict=config,
                save_model=False)
    wall = time.perf_counter() - start
    _, best_valid, test_at_best = fit_results[-1]
    result = {
        "side": "mmrec", "model": model, "seed": seed, "threads": threads,
        "valid": {m: float(best_valid[m]) for m in METRICS},
        "test": {m: float(test_at_best[m]) for m in METRICS},
        "epochs_run": len(epoch_seconds), "epoch_seconds": epoch_seconds,
        "wall_seconds": wall, "epoch_limit": epochs,
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))


def run_ours(data: Path, model: str, seed: int, threads: int, run_dir: Path,
             out_json: Path, epochs: int | None = None) -> None:
    """One searec training run (resumed if interrupted); writes out_json."""
    import csv

    from searec.config import load_config
    from searec.runs import resume, train

    if (run_dir / "last.pt").is_file() and not (run_dir / "metrics.json").is_file():
        resume(run_dir)
    elif not (run_dir / "metrics.json").is_file():
        overrides = ours_overrides(model, seed) + ([f"train.epochs={epochs}"] if epochs else [])
        extra = {"data": {"path": str(data.resolve()), "cold_users": "drop"},
                 "train": {"threads": threads, "progress": False}}
        train(load_config(None, overrides, extra), run_dir, overwrite=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv", newline="") as handle:
        epoch_seconds = [float(row["train_seconds"]) for row in csv.DictReader(handle)]
    result = {
        "side": "searec", "model": model, "seed": seed, "threads": threads,
        "valid": {m: metrics["valid"][m] for m in METRICS},
        "test": {m: metrics["test"][m] for m in METRICS},
        "epochs_run": metrics["epochs_run"], "epoch_seconds": epoch_seconds,
        "wall_seconds": metrics["train_seconds"] + metrics["eval_seconds"],
        "epoch_limit": epochs,
    }
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2))


def noisy_inference(run_dir: Path, draws: int, out_json: Path) -> None:
    """Test metrics of a finished searec LGMRec run scored as MMRec scores it: Gumbel noise
    kept in the hyperedge memberships at inference (dropout off), one draw per evaluation;
    ``draws`` evaluations with seeds 0..draws-1. Separates what MMRec's noisy inference
    costs from what training does."""
    import torch
    import torch.nn.functional as F

    from searec.evaluation import evaluate_model
    from searec.graphs import InteractionGraph
    from searec.runs import load_run

    cfg, dataset, model = load_run(run_dir)
    tau = model.params.temperature  # type: ignore[attr-defined]
    graph = InteractionGraph.from_train(dataset.train)
    clean = evaluate_model(model, graph, dataset, "test", cfg.eval)
    model._memberships = lambda logits: F.gumbel_softmax(logits, tau, dim=1)  # type: ignore[method-assign]
    noisy = []
    for draw in range(draws):
        torch.manual_seed(draw)  # evaluate_model recomputes the representations
        noisy.append(evaluate_model(model, graph, dataset, "test", cfg.eval))
    result = {"run": str(run_dir), "draws": draws,
              "test": {m: clean[m] for m in METRICS},
              "test_noisy": {m: [r[m] for r in noisy] for m in METRICS}}
    out_json.write_text(json.dumps(result, indent=2))


def lgmrec_equivalence(mmrec: Path, data: Path, seed: int, out_json: Path) -> None:
    """MMRec's LGMRec and searec's with the same weights: the largest differences of each
    part of the forward pass, of the loss on one batch and of every parameter's gradient.
    Gumbel noise and membership dropout are off in both (their draws cannot be shared),
    and searec's modalities are given in MMRec's order (image, then audio as its "text"),
    which fixes the direction of the asymmetric contrastive loss."""
    import torch
    import torch.nn.functional as F

    prepare_mmrec(mmrec, 1)
    from utils.configurator import Config  # type: ignore[import-not-found]
    from utils.dataloader import TrainDataLoader  # type: ignore[import-not-found]
    from utils.dataset import RecDataset  # type: ignore[import-not-found]
    from utils.utils import get_model, init_seed  # type: ignore[import-not-found]

    from searec.config import load_config
    from searec.data.load import load_dataset
    from searec.graphs import InteractionGraph, propagate, propagated_mean
    from searec.runs import build_model

    config = Config("LGMRec", data.resolve().name, mmrec_config(data, "lgmrec", seed), False)
    for key, value in MODELS["lgmrec"][1].items():  # quick_start sets these per grid point
        config[key] = value
    config["seed"] = seed
    dataset = RecDataset(config)
    str(dataset)  # MMRec counts the interactions while describing a dataset
    train_split = dataset.split()[0]
    str(train_split)
    init_seed(seed)
    theirs = get_model("LGMRec")(config, TrainDataLoader(config, train_split, batch_size=2048))
    cfg = load_config(None, ours_overrides("lgmrec", seed), {"data": {
        "path": str(data.resolve()), "cold_users": "drop", "modalities": ["image", "audio"]}})
    ours_data = load_dataset(cfg.data)
    ours: Any = build_model(cfg, ours_data)
    graph = InteractionGraph.from_train(ours_data.train)
    same_train = float(abs(theirs.interaction_matrix.tocsr() - ours_data.train).sum())
    # (MMRec parameter, searec parameter, transposed?)
    params = {"user embeddings": (theirs.user_embedding.weight, ours.user_emb, False),
              "item embeddings": (theirs.item_id_embedding.weight, ours.item_emb, False),
              "image transform": (theirs.item_image_trs, ours.transforms["image"].weight, True),
              "image hyperedges": (theirs.v_hyper, ours.hyperedges["image"].weight, True),
              "audio transform": (theirs.item_text_trs, ours.transforms["audio"].weight, True),
              "audio hyperedges": (theirs.t_hyper, ours.hyperedges["audio"].weight, True)}
    with torch.no_grad():
        for theirs_p, ours_p, transposed in params.values():
            ours_p.copy_(theirs_p.T if transposed else theirs_p)

    def gap(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
        return {"max_abs_diff": float((a - b).abs().max()), "max_abs": float(a.abs().max())}

    out: dict[str, Any] = {"seed": seed, "training_matrix_abs_diff": same_train}
    gumbel = F.gumbel_softmax
    F.gumbel_softmax = lambda logits, tau=1, hard=False, dim=-1: torch.softmax(logits / tau, dim)  # type: ignore[assignment]
    try:
        theirs.eval()
        ours.eval()
        with torch.no_grad():
            ego = torch.cat([ours.user_emb, ours.item_emb])
            out["collaborative"] = gap(theirs.cge(), propagated_mean(graph.norm_adj, ego, 2))
            items = ours.item_inputs()["image"].through(ours.transforms["image"])
            modal = propagate(graph.norm_adj, torch.cat([graph.user_mean(items), items]), 2)[-1]
            out["image graph embedding"] = gap(theirs.mge("v"), modal)
            their_users, their_items, _ = theirs.forward()
            our_users, our_items, _ = ours._embeddings(graph)
            out["final users"] = gap(their_users, our_users)
            out["final items"] = gap(their_items, our_items)
        g = torch.Generator().manual_seed(seed)
        users = torch.randint(0, ours_data.n_users, (2048,), generator=g)
        pos = torch.randint(0, ours_data.n_items, (2048,), generator=g)
        neg = torch.randint(0, ours_data.n_items, (2048,), generator=g)
        their_loss = theirs.calculate_loss([users, pos, neg])
        our_loss = ours.ranking_loss(graph, users, pos, neg)["loss"]
        out["loss"] = {"mmrec": their_loss.item(), "searec": our_loss.item()}
        their_loss.backward()
        our_loss.backward()
        out["gradients"] = {
            name: gap(t.grad, o.grad.T if transposed else o.grad)
            for name, (t, o, transposed) in params.items()}
    finally:
        F.gumbel_softmax = gumbel
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def side_paths(out: Path, side: str, model: str, seed: int) -> tuple[Path, Path]:
    base = out / side / model
    return base / f"seed{seed}.json", base / f"seed{seed}"


def pair(args: argparse.Namespace, out: Path | None = None) -> None:
    """Both sides of one (model, seed) at once, each in its own process (under ``out``,
    default args.out)."""
    out = out or args.out
    procs = []
    for side in ("mmrec", "ours"):
        result_json, _ = side_paths(out, side, args.model, args.seed)
        if result_json.is_file():
            continue
        log = (out / side / args.model / f"seed{args.seed}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, side, "--data", str(args.data), "--model", args.model,
               "--seed", str(args.seed), "--threads", str(args.threads), "--out",
               str(out.resolve()), "--mmrec", str(args.mmrec)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        with open(log, "w") as handle:
            procs.append((side, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT),
                          log))
    for side, proc, log in procs:
        if proc.wait() != 0:
            raise SystemExit(f"{side} run failed (exit {proc.returncode}); see {log}")


def speed_rows(out: Path) -> list[dict[str, Any]]:
    """The ``speed`` runs under ``out``: per model and seed, each side's min / median
    seconds over its training epochs after the first, and MMRec's median over ours."""
    rows = []
    for model in MODELS:
        for theirs_json in sorted((out / "mmrec" / model).glob("seed*.json")):
            ours_json = out / "ours" / model / theirs_json.name
            if not ours_json.is_file():
                continue
            row: dict[str, Any] = {"model": model, "seed": int(theirs_json.stem[4:])}
            for side, path in (("mmrec", theirs_json), ("searec", ours_json)):
                later = json.loads(path.read_text())["epoch_seconds"][1:]
                row[side] = {"epochs": len(later), "min": min(later),
                             "median": statistics.median(later)}
            row["mmrec_over_searec"] = row["mmrec"]["median"] / row["searec"]["median"]
            rows.append(row)
    return rows


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(args: argparse.Namespace) -> None:
    import torch
    from scipy import stats

    rows: list[dict[str, Any]] = []
    for model in MODELS:
        sides: dict[str, list[dict[str, Any]]] = {}
        for side in ("mmrec", "ours"):
            files = sorted((args.out / side / model).glob("seed*.json"))
            sides[side] = [json.loads(f.read_text()) for f in files]
            cut = [f for f, r in zip(files, sides[side], strict=True) if r.get("epoch_limit")]
            if cut:  # a run stopped by --epochs is no parity result
                raise SystemExit(f"{cut[0]} was cut at --epochs; parity runs go to early "
                                 "stopping (cut runs belong under OUT/speed/)")
        seeds = sorted({r["seed"] for r in sides["mmrec"]} & {r["seed"] for r in sides["ours"]})
        if not seeds:
            continue
        by_seed = {side: {r["seed"]: r for r in runs} for side, runs in sides.items()}
        row: dict[str, Any] = {"model": model, "seeds": seeds}
        for metric in METRICS:
            theirs = [by_seed["mmrec"][s]["test"][metric] for s in seeds]
            ours = [by_seed["ours"][s]["test"][metric] for s in seeds]
            t_mean, t_std = mean_std(theirs)
            o_mean, o_std = mean_std(ours)
            welch = (float(stats.ttest_ind(ours, theirs, equal_var=False).pvalue)
                     if len(seeds) > 1 else float("nan"))
            row[metric] = {
                "mmrec": theirs, "searec": ours, "mmrec_mean": t_mean, "mmrec_std": t_std,
                "searec_mean": o_mean, "searec_std": o_std, "welch_p": welch,
                # "within the seed-to-seed spread of theirs": our mean inside MMRec's
                # range over the seeds
                "within_mmrec_range": min(theirs) <= o_mean <= max(theirs),
                "within_mmrec_2std": abs(o_mean - t_mean) <= 2 * t_std,
            }
        medians = {
            side: [statistics.median(by_seed[side][s]["epoch_seconds"]) for s in seeds]
            for side in ("mmrec", "ours")}
        row["epoch_seconds"] = medians
        row["epochs_run"] = {side: [by_seed[side][s]["epochs_run"] for s in seeds]
                             for side in ("mmrec", "ours")}
        row["mmrec_over_searec_epoch_time"] = [
            theirs / ours for theirs, ours in zip(medians["mmrec"], medians["ours"],
                                                  strict=True)]
        noisy = [json.loads(f.read_text())
                 for f in sorted((args.out / "ours" / model).glob("noisy-seed*.json"))]
        if noisy:  # searec's checkpoints scored with MMRec's noisy inference
            row["searec_noisy_inference"] = {
                metric: mean_std([statistics.mean(r["test_noisy"][metric]) for r in noisy])
                for metric in METRICS} | {"seeds": [int(Path(r["run"]).name[4:])
                                                    for r in noisy]}
        rows.append(row)
    payload = {
        "hardware": {"machine": platform.machine(), "processor": platform.processor(),
                     "cpus": os.cpu_count()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "threads": LOAD,
        "data": str(args.data), "patches": PATCHES, "models": rows,
        "speed_alone": speed_rows(args.out / "speed"),
    }
    results = args.results
    results.mkdir(parents=True, exist_ok=True)
    (results / "mmrec_parity.json").write_text(json.dumps(payload, indent=2))
    lines = ["# Parity with MMRec", "",
             f"Data: `{args.data}`; {LOAD}. Test metrics at the best validation "
             "recall@20 (patience 20), mean ± std over seeds.", "",
             "| model | seeds | metric | MMRec | searec | Welch p | ours in MMRec's range |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        for metric in METRICS:
            m = row[metric]
            lines.append(
                f"| {row['model']} | {','.join(map(str, row['seeds']))} | test {metric} | "
                f"{m['mmrec_mean']:.4f} ± {m['mmrec_std']:.4f} | "
                f"{m['searec_mean']:.4f} ± {m['searec_std']:.4f} | {m['welch_p']:.2f} | "
                f"{'yes' if m['within_mmrec_range'] else 'no'} |")
    for row in rows:
        if "searec_noisy_inference" in row:
            n = row["searec_noisy_inference"]
            lines += ["", f"{row['model']}: searec's best checkpoints (seeds "
                      f"{','.join(map(str, n['seeds']))}) scored as MMRec scores them, Gumbel "
                      "noise kept in the hyperedge memberships at inference (mean of "
                      "the draws per seed): " + "; ".join(
                          f"test {m} {n[m][0]:.4f} ± {n[m][1]:.4f}" for m in METRICS)]
    lines += ["", "| model | MMRec s/epoch | searec s/epoch | MMRec / searec | epochs run "
              "(MMRec; searec) |", "|---|---|---|---|---|"]
    for row in rows:
        es = row["epoch_seconds"]
        lines.append(
            f"| {row['model']} | {statistics.median(es['mmrec']):.2f} | "
            f"{statistics.median(es['ours']):.2f} | "
            f"{min(row['mmrec_over_searec_epoch_time']):.2f}-"
            f"{max(row['mmrec_over_searec_epoch_time']):.2f} | "
            f"{row['epochs_run']['mmrec']}; {row['epochs_run']['ours']} |")
    if payload["speed_alone"]:
        lines += ["", "Side by side with nothing else on the machine (`speed`: both sides "
                  "of a seed started together, one thread each, every other job paused; "
                  "seconds per training epoch over the epochs after the first, min / "
                  "median):", "",
                  "| model | seed | epochs timed | MMRec s/epoch | searec s/epoch | "
                  "MMRec / searec (medians) |", "|---|---|---|---|---|---|"]
        for r in payload["speed_alone"]:
            lines.append(
                f"| {r['model']} | {r['seed']} | {r['mmrec']['epochs']} | "
                f"{r['mmrec']['min']:.2f} / {r['mmrec']['median']:.2f} | "
                f"{r['searec']['min']:.2f} / {r['searec']['median']:.2f} | "
                f"{r['mmrec_over_searec']:.2f} |")
    lines += ["", "What was done to MMRec to run it here:", ""] + [f"- {p}" for p in PATCHES]
    (results / "mmrec_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command",
                        choices=["mmrec", "ours", "pair", "speed", "noisy", "equivalence",
                                 "report"])
    parser.add_argument("--mmrec", type=Path, default=Path("/work/mmrec"),
                        help="an MMRec checkout (GitHub enoche/MMRec)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/tiktok")
    parser.add_argument("--model", choices=sorted(MODELS), default="bm3")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/parity"))
    parser.add_argument("--epochs", type=int, default=None,
                        help="stop each side after this many epochs (speed: default 6)")
    parser.add_argument("--draws", type=int, default=5,
                        help="noisy: evaluations with Gumbel noise kept (lgmrec only)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="report: where mmrec_parity.{json,md} go")
    args = parser.parse_args()
    if args.command == "mmrec":
        result_json, _ = side_paths(args.out, "mmrec", args.model, args.seed)
        run_mmrec(args.mmrec, args.data, args.model, args.seed, args.threads, result_json,
                  args.epochs)
    elif args.command == "ours":
        result_json, run_dir = side_paths(args.out, "ours", args.model, args.seed)
        run_ours(args.data, args.model, args.seed, args.threads, run_dir, result_json,
                 args.epochs)
    elif args.command == "noisy":
        if args.model != "lgmrec":
            raise SystemExit("noisy inference applies to lgmrec only")
        _, run_dir = side_paths(args.out, "ours", args.model, args.seed)
        noisy_inference(run_dir, args.draws, run_dir.parent / f"noisy-seed{args.seed}.json")
    elif args.command == "equivalence":
        if args.model != "lgmrec":
            raise SystemExit("the equivalence check is written for lgmrec")
        lgmrec_equivalence(args.mmrec, args.data, args.seed,
                           args.results / "mmrec_equivalence_lgmrec.json")
    elif args.command == "pair":
        if args.epochs:
            raise SystemExit("pair runs to early stopping; `speed` runs a cut pair")
        pair(args)
    elif args.command == "speed":
        args.epochs = args.epochs or 6
        pair(args, args.out / "speed")
    else:
        report(args)


if __name__ == "__main__":
    main()
