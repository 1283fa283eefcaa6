"""HEALPix pixel bookkeeping shared by the stitching and the validation."""
from __future__ import annotations

import numpy as np


def parents(nside: int, low: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """RING index at Nside ``low`` of the parent of the RING pixels ``start:stop`` (default: all)
    at ``nside`` (int64). Uses the native ring2nest/nest2ring when built (healpy's are ~10x
    slower at Nside 2048)."""
    import healpy as hp

    from ._dispatch import _core

    r2n, n2r = (_core.ring2nest, _core.nest2ring) if _core is not None else \
        (hp.ring2nest, hp.nest2ring)
    shift = 2 * int(round(np.log2(nside // low)))
    stop = 12 * nside * nside if stop is None else stop
    return n2r(low, r2n(nside, np.arange(start, stop)) >> shift)
