"""Quality of generated small scales: overlap of Minkowski-functional bands (ForSE's metric).

Each patch is min-max rescaled to [-1, 1]; V0, V1, V2 are measured at ``thresholds`` levels
(32 by default, evenly spaced in [-1, 1]) with the native core (``forse.minkowski``); the score of
one functional is the overlap fraction (intersection over union of the mean +- 1 sigma bands over
patches) of generated against true small scales.
"""
from __future__ import annotations

import numpy as np

N_THRESHOLDS = 32


def minmax(images) -> np.ndarray:
    """Per-patch min-max rescaling to [-1, 1] (float64), NaN ignored."""
    a = np.asarray(images, dtype=np.float64)
    lo = np.nanmin(a, axis=(-2, -1), keepdims=True)
    hi = np.nanmax(a, axis=(-2, -1), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return 2.0 * (a - lo) / span - 1.0


def minkowski_curves(images, thresholds: int = N_THRESHOLDS):
    """``(v0, v1, v2)``, each ``(N, thresholds)``, of min-max rescaled ``(N, n, n)`` images."""
    from ..minkowski import functionals

    a = np.asarray(images)
    if a.ndim != 3:
        raise ValueError(f"`images` must be a stack (N, n, n), got shape {a.shape}")
    levels = np.linspace(-1.0, 1.0, int(thresholds))
    return functionals(minmax(a), levels)


def minkowski_overlap(generated, truth, thresholds: int = N_THRESHOLDS) -> dict:
    """``{"v0": f0, "v1": f1, "v2": f2, "score": mean}``: band overlap of generated vs true."""
    from ..minkowski import overlap_fraction

    g = np.asarray(generated)
    t = np.asarray(truth)
    if g.ndim != 3 or t.ndim != 3 or g.shape[1:] != t.shape[1:]:
        raise ValueError(f"`generated` and `truth` must be stacks (N, n, n) of the same patch size, "
                         f"got shapes {g.shape} and {t.shape}")
    cg = minkowski_curves(g, thresholds)
    ct = minkowski_curves(t, thresholds)
    out = {f"v{i}": float(overlap_fraction(ct[i], cg[i])) for i in range(3)}
    out["score"] = float(np.mean([out["v0"], out["v1"], out["v2"]]))
    return out
