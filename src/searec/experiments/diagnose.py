"""`searec diagnose RUN_DIR`: how well a trained model separated generic from unique.

Writes diagnostics.json (held-out MI from fresh critics and the linear-Gaussian index
between the parts at the best checkpoint, see :mod:`searec.separation.diagnostics`) and
figures/separation_projection.png: 2-D PCA views of item representations in the
alignment space (generic parts of every modality) and in each modality's distancing space
(its generic vs unique parts).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from searec.experiments.plots import plt, save_figure
from searec.io import write_json
from searec.separation.diagnostics import (
    heldout_separation_mi,
    planted_recovery,
    projection_panels,
    separation_diagnostics,
)
from searec.separation.heldout import HeldoutSettings

PROJECTION_PNG = "separation_projection.png"


def diagnose_run(run_dir: str | Path, max_items: int = 1000,
                 heldout: HeldoutSettings | None = None) -> dict[str, Any] | None:
    """Diagnostics of a finished run; None when its model has no separation component.

    ``heldout``: also estimate held-out MI with fresh critics (a minute or more); without
    it, estimates already in diagnostics.json are kept."""
    from searec.models.multimodal import MultimodalRecommender
    from searec.runs import load_run, run_config

    run_dir = Path(run_dir)
    # Decided from the config, so that runs without separation never load data or model.
    cfg = run_config(run_dir)
    if cfg.model_params.get("separation") is None:
        return None
    _, _, model = load_run(run_dir, cfg)
    assert isinstance(model, MultimodalRecommender) and model.separation is not None
    separation = model.separation
    model.eval()
    features = model.raw_features()
    mi = separation_diagnostics(separation, features)
    panels = projection_panels(separation, features, max_items)
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4),
                                 squeeze=False)
        for ax, (title, groups) in zip(axes[0], panels.items(), strict=True):
            for name, xy in groups.items():
                ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, label=name)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.legend(fontsize=7, markerscale=3)
        save_figure(fig, run_dir / "figures" / PROJECTION_PNG)
    result: dict[str, Any] = {"gaussian_mi_at_best": mi, "panels": list(panels),
                              "items_plotted": max_items}
    if cfg.data.path is None and cfg.data.synthetic.generator == "latent" \
            and not cfg.data.perturb and cfg.data.feature_norm == "none":
        # the embedded synthetic data: how well the parts recover the planted factors
        from searec.data.synthetic import planted_factors

        result["planted_recovery"] = planted_recovery(
            separation, features, planted_factors(cfg.data.synthetic))
    if heldout is not None:
        result["heldout_mi"] = heldout_separation_mi(separation, features, settings=heldout)
        result["heldout_settings"] = asdict(heldout)
    elif (run_dir / "diagnostics.json").is_file():
        earlier = json.loads((run_dir / "diagnostics.json").read_text())
        result.update({k: earlier[k] for k in ("heldout_mi", "heldout_settings")
                       if k in earlier})
    write_json(run_dir / "diagnostics.json", result)
    return result

