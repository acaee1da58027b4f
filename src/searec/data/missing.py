"""Items without a modality: an all-zero feature row means "this item has no image (text,
audio) yet". ``data.missing_fill`` decides what such a row becomes before a model reads it:

- ``none``: it stays zero (no neighbours in that modality's kNN graph);
- ``mean``: the mean row of the items that have the modality (what MMRec's preprocessing
  imputes);
- ``cross``: predicted from the item's other modalities by a ridge regression fitted on
  the items that have every modality (items missing more than one modality, or whose
  other modalities are all missing too, get the mean).

SEA can instead fill the missing part inside the model, from the other modalities'
aligned generic parts (``model.separation.fill_missing``; searec.separation.component).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MissingFill = Literal["none", "mean", "cross"]
RIDGE = 0.01  # ridge strength, relative to the inputs' mean sum of squares (per column)


def missing_rows(features: np.ndarray) -> np.ndarray:
    """Boolean mask of the all-zero rows (items without this modality)."""
    return ~np.any(features != 0, axis=1)


def fill_missing(modalities: dict[str, np.ndarray], method: MissingFill,
                 fit_rows: int | None = None) -> dict[str, np.ndarray]:
    """``modalities`` with their missing rows filled by ``method``; statistics and the
    regression come from the first ``fit_rows`` rows only (all by default: new items are
    filled with what the trained catalogue says)."""
    if method == "none":
        return modalities
    n = len(next(iter(modalities.values())))
    fit = np.zeros(n, dtype=bool)
    fit[: n if fit_rows is None else fit_rows] = True
    missing = {m: missing_rows(f) for m, f in modalities.items()}
    out = {}
    for m, x in modalities.items():
        gaps = missing[m]
        if not gaps.any():
            out[m] = x
            continue
        present = fit & ~gaps
        filled = x.astype(np.float32, copy=True)
        mean = x[present].mean(axis=0) if present.any() else np.zeros(x.shape[1], np.float32)
        filled[gaps] = mean
        others = [o for o in modalities if o != m]
        if method == "cross" and others:
            complete = fit & ~np.any([missing[o] for o in [m, *others]], axis=0)
            # items missing only m: every other modality is there to predict it from
            only_m = gaps & ~np.any([missing[o] for o in others], axis=0)
            if complete.sum() > 1 and only_m.any():
                filled[only_m] = _ridge_predict(
                    np.concatenate([modalities[o] for o in others], axis=1),
                    x, complete, only_m)
        out[m] = filled
    return out


def _ridge_predict(inputs: np.ndarray, target: np.ndarray, fit: np.ndarray,
                   predict: np.ndarray) -> np.ndarray:
    """Ridge regression of ``target`` on ``inputs`` over the ``fit`` rows (centred), applied
    to the ``predict`` rows."""
    x = inputs[fit].astype(np.float64)
    y = target[fit].astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    gram = xc.T @ xc
    strength = RIDGE * max(float(np.trace(gram)) / gram.shape[0], 1e-12)
    weights = np.linalg.solve(gram + strength * np.eye(gram.shape[0]), xc.T @ (y - y_mean))
    return ((inputs[predict] - x_mean) @ weights + y_mean).astype(np.float32)
