"""Quality of generated small scales: the names training and the benches use for
:mod:`forse.minkowski`'s one metric (no second implementation here).

``minkowski_overlap(generated, truth, variant="nu")`` is :func:`forse.minkowski.score`: V0, V1, V2
of each patch standardized to ``nu = (x - mean) / std`` at 32 thresholds in [-3, 3] (the headline;
``variant="minmax"`` is ForSE's min-max variant), and the overlap fraction of the mean +- 1 sigma
bands of generated against true patches. :func:`ceiling` is the same overlap between the two
halves of the true patches.
"""
from __future__ import annotations

from ..stats.minkowski import N_THRESHOLDS, VARIANTS, ceiling, curves, minmax, score, standardize, thresholds  # noqa: F401

minkowski_overlap = score

__all__ = ["N_THRESHOLDS", "VARIANTS", "ceiling", "curves", "minkowski_overlap", "minmax", "score",
           "standardize", "thresholds"]
