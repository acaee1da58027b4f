"""`searec report RUN_DIR|EXPERIMENT_DIR`: a self-contained Markdown report with PNG plots.

For a run: the metrics table, learning curves (every loss part) and the validation metric
per epoch. For an experiment: the summary table and, per metric, a bar chart of mean ±
std over seeds for every variant. Plots are written beside report.md in ``figures/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from searec.errors import RunDirError
from searec.experiments.diagnose import PROJECTION_PNG, diagnose_run
from searec.experiments.plots import plt, save_figure
from searec.io import read_csv_rows, write_text


def _floats(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in rows]


def run_report(run_dir: Path) -> Path:
    history = read_csv_rows(run_dir / "history.csv")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = [int(r["epoch"]) for r in history]
    figs = run_dir / "figures"
    lines = [f"# Run report: {metrics.get('model', '?')} on {metrics.get('dataset', '?')}", "",
             f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']}; train "
             f"{metrics['train_seconds']:.1f} s, eval {metrics['eval_seconds']:.1f} s.", "",
             "| split | " + " | ".join(metrics["valid"]) + " |",
             "|---|" + "---|" * len(metrics["valid"])]
    for split in ("valid", "test"):
        if split in metrics:
            lines.append(f"| {split} | " + " | ".join(f"{metrics[split][k]:.4f}"
                                                      for k in metrics["valid"]) + " |")
    loss_cols = [c for c in history[0] if c == "loss" or c.startswith("loss_")]
    if loss_cols and epochs and epochs[-1] > 0:
        fig, axes = plt.subplots(1, len(loss_cols), figsize=(3.2 * len(loss_cols), 2.8),
                                 squeeze=False)
        for ax, col in zip(axes[0], loss_cols, strict=True):
            ax.plot(epochs, _floats(history, col))
            ax.set_title(col, fontsize=9)
            ax.set_xlabel("epoch")
        save_figure(fig, figs / "losses.png")
        lines += ["", "## Losses per epoch", "", "![losses](figures/losses.png)"]
    valid_cols = [c for c in history[0] if c.startswith("valid_recall@")
                  or c.startswith("valid_ndcg@")]
    if valid_cols and len(epochs) > 1:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for col in valid_cols:
            ax.plot(epochs, _floats(history, col), label=col[6:])
        ax.axvline(metrics["best_epoch"], color="grey", linestyle=":", label="best")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        save_figure(fig, figs / "valid_metrics.png")
        lines += ["", "## Validation metrics per epoch", "",
                  "![validation metrics](figures/valid_metrics.png)"]
    diag_cols = [c for c in history[0] if c.startswith("diag_mi_")]
    if diag_cols and len(epochs) > 1:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        _plot_columns(ax, epochs, history, diag_cols, "diag_mi_", dashed="generic_unique")
        ax.set_ylabel("linear-Gaussian index (nats)")
        save_figure(fig, figs / "separation_mi.png")
        lines += ["", "## Separation over training", "",
                  "Linear-Gaussian MI between generic and unique parts of each modality "
                  "(solid) and between modalities' generic / unique parts (dashed), on a "
                  "fixed item sample at every evaluation: an index of linear dependence "
                  "(exact only for Gaussian parts; it grows without bound as parts become "
                  "collinear), not the MI. Held-out estimates: `searec diagnose`.", "",
                  "![MI](figures/separation_mi.png)"]
    heldout_cols = [c for c in history[0] if c.startswith(("diag_heldout_infonce_",
                                                           "diag_heldout_nwj_"))]
    if heldout_cols:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), squeeze=False)
        for ax, name in zip(axes[0], ("infonce", "nwj"), strict=True):
            prefix = f"diag_heldout_{name}_"
            _plot_columns(ax, epochs, history, [c for c in heldout_cols if c.startswith(prefix)],
                          prefix, dashed="generic_unique", marker="o")
            ax.set_title(f"held-out {name} (nats)", fontsize=9)
        save_figure(fig, figs / "heldout_mi.png")
        lines += ["", "## Held-out MI over training", "",
                  "Held-out MI between each modality's generic and unique parts (solid) and "
                  "between modalities' generic parts (dashed), lower bounds from fresh "
                  "critics every `train.thorough_diagnostics_every` validations.", "",
                  "![held-out MI](figures/heldout_mi.png)"]
    lines += _term_section(history, epochs, metrics, figs)
    diag = diagnose_run(run_dir)
    if diag is not None:
        lines += ["", "## Generic and unique item representations (best checkpoint)", ""]
        if "heldout_mi" in diag:
            folds = diag.get("heldout_settings", {}).get("folds", "?")
            lines += [f"Held-out MI (nats, mean ± std over {folds} folds; critics fitted on "
                      "the other folds' items): InfoNCE and NWJ are lower bounds, CLUB an "
                      "upper bound where its Gaussian q fits.", "",
                      "| parts | InfoNCE | NWJ | CLUB |", "|---|---|---|---|",
                      *[f"| {k} | " + " | ".join(f"{e[n]['mean']:.3f} ± {e[n]['std']:.3f}"
                                                 for n in ("infonce", "nwj", "club")) + " |"
                        for k, e in diag["heldout_mi"].items()], ""]
        lines += ["| linear-Gaussian index | nats |", "|---|---|",
                  *[f"| {k} | {v:.3f} |" for k, v in diag["gaussian_mi_at_best"].items()]]
        if diag["panels"]:
            lines += ["", "2-D PCA of items in the alignment space (generic parts of every "
                      "modality, pulled together) and in each modality's distancing space "
                      "(generic vs unique, pushed apart).", "",
                      f"![projection](figures/{PROJECTION_PNG})"]
    out = run_dir / "report.md"
    write_text(out, "\n".join(lines) + "\n")
    return out


def _plot_columns(ax: plt.Axes, epochs: list[int], history: list[dict[str, str]],
                  cols: list[str], prefix: str, dashed: str | None = None,
                  marker: str = "") -> None:
    """One line per history column over the epochs that have a value in it (a column
    measured every few epochs is one line, not isolated points), labelled without
    ``prefix``; columns without ``dashed`` in their name are drawn dashed when it is
    given."""
    for col in cols:
        style = marker + ("--" if dashed is not None and dashed not in col else "-")
        points = [(e, v) for e, v in zip(epochs, _floats(history, col), strict=True)
                  if not math.isnan(v)]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=col[len(prefix):])
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)


def _term_section(history: list[dict[str, str]], epochs: list[int], metrics: dict,
                  figs: Path) -> list[str]:
    """What each separately measured loss term did per epoch: its share of the gradient,
    how often its bound was clamped, how well a fitted q fits; and the inert ones."""
    panels = {
        "share of the gradient on shared parameters": "term_grad_share_",
        "share of steps with the bound clamped at 0": "term_clamped_",
        "q's NLL minus a diagonal Gaussian's (nats; < 0: q uses the generic part)":
            "term_q_nll_excess_",
    }
    columns = {title: (prefix, [c for c in history[0] if c.startswith(prefix)])
               for title, prefix in panels.items()}
    shown = {title: pc for title, pc in columns.items() if pc[1]}
    lines: list[str] = []
    if shown and len(epochs) > 1:
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.2),
                                 squeeze=False)
        for ax, (title, (prefix, cols)) in zip(axes[0], shown.items(), strict=True):
            _plot_columns(ax, epochs, history, cols, prefix)
            ax.set_title(title, fontsize=8)
        save_figure(fig, figs / "loss_terms.png")
        lines += ["", "## What each loss term did", "",
                  "Per epoch: each measured term's share of the gradient on the parameters it "
                  "shares with the rest of the loss (one batch), the share of steps in which "
                  "its bound was clamped at 0 (no gradient), and how well CLUB's q fits.", "",
                  "![loss terms](figures/loss_terms.png)"]
    inert = metrics.get("inert_terms") or []
    if inert:
        lines += ["", "Inert terms:", "", "| term | why | try |", "|---|---|---|",
                  *[f"| {t['term']} | {t['why']} | {t.get('try', '')} |" for t in inert]]
    return lines


def experiment_report(exp_dir: Path) -> Path:
    summary = read_csv_rows(exp_dir / "summary.csv")
    figs = exp_dir / "figures"
    lines = ["# Experiment report", "", (exp_dir / "summary.md").read_text()]
    for ds in dict.fromkeys(r["dataset"] for r in summary):
        for metric in dict.fromkeys(r["metric"] for r in summary):
            rows = [r for r in summary if r["dataset"] == ds and r["metric"] == metric]
            fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows)), 3.2))
            ax.bar([r["variant"] for r in rows], [float(r["mean"]) for r in rows],
                   yerr=[float(r["std"]) for r in rows], capsize=4, color="#4c72b0")
            ax.set_ylabel(f"test {metric}")
            ax.set_title(f"{ds}: mean ± std over seeds", fontsize=9)
            ax.tick_params(axis="x", rotation=30, labelsize=8)
            name = f"{ds}_{metric.replace('@', '_at_')}.png"
            save_figure(fig, figs / name)
            lines += ["", f"## {ds}: test {metric}", "", f"![{metric}](figures/{name})"]
    out = exp_dir / "report.md"
    write_text(out, "\n".join(lines) + "\n")
    return out


def write_report(path: str | Path) -> Path:
    path = Path(path)
    if (path / "summary.csv").is_file():
        return experiment_report(path)
    if (path / "metrics.json").is_file() and (path / "history.csv").is_file():
        return run_report(path)
    raise RunDirError(f"{path}: neither a finished run (metrics.json, history.csv) nor an "
                      "experiment folder (summary.csv)")
