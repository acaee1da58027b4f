"""The ``searec`` command line: argument parsing only; the work lives in the library."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from searec import __version__
from searec.errors import SearecError


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
    if getattr(args, "separation", None) == "sea":
        extra.setdefault("model", {})["separation"] = True
    for flag, key in (("seed", "seed"), ("epochs", "epochs"), ("device", "device")):
        value = getattr(args, flag, None)
        if value is not None:
            extra.setdefault("train", {})[key] = value
    return load_config(args.config, args.overrides, extra)


def cmd_train(args: argparse.Namespace) -> int:
    from searec.training.run import format_metrics, resume, train

    if args.resume:
        if args.overrides or args.config or args.data or args.model:
            raise SearecError("--resume continues a run with its own config.yaml; do not pass "
                              "--config, --data, --model or overrides with it")
        metrics = resume(args.resume, log=_log)
        out = Path(args.resume)
    else:
        cfg = _config_from_args(args)
        if args.out is None:
            data = Path(cfg.data.path).name if cfg.data.path else "synthetic"
            out = Path("runs") / f"{cfg.model.name}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"
        else:
            out = Path(args.out)
        metrics = train(cfg, out, overwrite=args.overwrite, log=_log)
    print(format_metrics(metrics))
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; "
          f"train {metrics['train_seconds']:.1f}s, eval {metrics['eval_seconds']:.1f}s; "
          f"run folder: {out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from searec.config import DataConfig
    from searec.training.run import load_dataset

    # Load keeping cold users so they can be counted, then apply the requested policy.
    policy = "error" if args.cold_users == "error" else "keep"
    cfg = DataConfig(path=str(args.dir), name=args.name, modalities=args.modalities,
                     cold_users=policy)
    ds = load_dataset(cfg)
    cold = ds.cold_users()
    if args.cold_users == "drop":
        ds = ds.without_users_in_eval(cold)
    st = ds.stats()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    mods = ", ".join(f"{m} ({d}-d)" for m, d in st["modalities"].items()) or "none"
    rows = [
        ("dataset", f"{st['name']} ({args.dir})"),
        ("users", f"{st['users']:,}"),
        ("items", f"{st['items']:,}"),
        ("interactions", f"{st['interactions']:,}"),
        ("train / valid / test", f"{st['train']:,} / {st['valid']:,} / {st['test']:,}"),
        ("density", f"{st['density']:.5f}"),
        ("users in valid / test", f"{st['valid_users']:,} / {st['test_users']:,}"),
        ("cold users (valid/test, no train)",
         f"{len(cold):,}" + {"drop": " (left out of evaluation)", "keep": " (scored)"}.get(
             args.cold_users, "")),
        ("items without train interactions", f"{st['items_without_train']:,}"),
        ("modalities", mods),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("ok")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from searec.config import SyntheticConfig, parse_overrides
    from searec.data import make_synthetic, save_mmrec

    tree = parse_overrides(args.overrides)
    from pydantic import ValidationError

    from searec.config import _format_validation_error, _known_keys
    from searec.errors import ConfigError

    try:
        cfg = SyntheticConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, _known_keys(SyntheticConfig),
                                                   "overrides")) from None
    ds = make_synthetic(cfg)
    save_mmrec(ds, args.out, name=Path(args.out).name)
    print(f"wrote {args.out}: {ds.n_users} users, {ds.n_items} items, "
          f"{ds.train.nnz + ds.valid.nnz + ds.test.nnz} interactions, "
          f"modalities {list(ds.modalities)}")
    return 0


def _read_user_ids(path: Path, n_users: int) -> np.ndarray:
    from searec.errors import DataError

    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise DataError(path, f"cannot read user list ({exc.strerror})") from None
    if lines and not lines[0].lstrip("-").isdigit():  # a header line such as "userID"
        lines = lines[1:]
    users = []
    for i, tok in enumerate(lines):
        if not tok.isdigit() or int(tok) >= n_users:
            raise DataError(path, f"expected a user id in 0..{n_users - 1}, got {tok!r}",
                            i + 1)
        users.append(int(tok))
    return np.asarray(users, dtype=np.int64)


def cmd_recommend(args: argparse.Namespace) -> int:
    from searec.io import atomic_path
    from searec.training.run import load_run

    _, dataset, model = load_run(args.run)
    users = (_read_user_ids(args.users, dataset.n_users) if args.users
             else np.arange(dataset.n_users))
    exclude = None if args.include_seen else dataset.train
    ids, scores = model.recommend(users, k=args.k, user_items=exclude)
    out = Path(args.out)
    rows = len(users) * ids.shape[1]
    user_col = np.repeat(users, ids.shape[1])
    rank_col = np.tile(np.arange(1, ids.shape[1] + 1), len(users))
    if out.suffix == ".parquet":
        try:
            import pandas as pd
        except ImportError:
            raise SearecError("writing .parquet needs pandas and pyarrow "
                              "(pip install pandas pyarrow); or use a .csv file") from None
        frame = pd.DataFrame({"userID": user_col, "rank": rank_col,
                              "itemID": ids.ravel(), "score": scores.ravel()})
        with atomic_path(out) as tmp:
            frame.to_parquet(tmp, index=False)
    elif out.suffix in (".csv", ".tsv"):
        sep = "," if out.suffix == ".csv" else "\t"
        with atomic_path(out) as tmp, open(tmp, "w") as fh:
            fh.write(sep.join(["userID", "rank", "itemID", "score"]) + "\n")
            for u, r, i, s in zip(user_col, rank_col, ids.ravel(), scores.ravel(),
                                  strict=True):
                fh.write(f"{u}{sep}{r}{sep}{i}{sep}{s:.6g}\n")
    else:
        raise SearecError(f"{out}: unknown output format; use .csv, .tsv or .parquet")
    print(f"wrote {rows:,} recommendations ({len(users):,} users x top {ids.shape[1]}) to {out}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from searec.experiments import run_experiment

    out = Path(args.out) if args.out else Path("runs") / Path(args.file).stem
    run_experiment(args.file, out, log=_log)
    print((out / "summary.md").read_text(), end="")
    print(f"per-run results: {out / 'results.csv'}; summary: {out / 'summary.csv'}")
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
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:<10} {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="searec", description="Multimodal recommendation with separate learning (SEA).")
    parser.add_argument("--version", action="version", version=f"searec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
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
                   help="sea: add SEA's separation to a backbone (vbpr, freedom); same as "
                   "model.separation=true")
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
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("experiment", help="run a declared grid of runs (datasets x variants "
                       "x seeds), resumable, with a multi-seed summary and paired tests")
    p.add_argument("file", type=Path, help="experiment YAML (see docs/experiments.md)")
    p.add_argument("--out", metavar="DIR", help="experiment folder (default: runs/<file stem>)")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("report", help="Markdown report with plots for a run or experiment")
    p.add_argument("dir", type=Path, metavar="RUN_DIR|EXPERIMENT_DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list available models")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
