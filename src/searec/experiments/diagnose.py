"""`searec diagnose RUN_DIR`: how well a trained model separated generic from unique.

Writes diagnostics.json (Gaussian MI between the parts at the best checkpoint, see
:mod:`searec.separation.diagnostics`) and figures/separation_projection.png: 2-D PCA views
of item representations in the alignment space (generic parts of every modality) and in
each modality's distancing space (its generic vs unique parts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from searec.experiments.plots import plt, save_figure
from searec.io import write_json
from searec.separation.diagnostics import projection_panels, separation_diagnostics

PROJECTION_PNG = "separation_projection.png"


def diagnose_run(run_dir: str | Path, max_items: int = 1000) -> dict[str, Any] | None:
    """Diagnostics of a finished run; None when its model has no separation component."""
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
    result = {"gaussian_mi_at_best": mi, "panels": list(panels), "items_plotted": max_items}
    write_json(run_dir / "diagnostics.json", result)
    return result

