"""HEALPix pixel bookkeeping shared by the stitching and the validation."""
from __future__ import annotations

import numpy as np


def parents(nside: int, low: int, start: int = 0, stop: int | None = None, *,
            backend: str = "auto") -> np.ndarray:
    """RING index at Nside ``low`` of the parent of the RING pixels ``start:stop`` (default: all)
    at ``nside`` (int64). ``backend`` as everywhere (``forse._dispatch``): "cpu" (what "auto"
    picks when built) uses the native ring2nest/nest2ring, ~10x faster than healpy's at Nside
    2048; "numpy" uses healpy's. The pixel indices are host arrays, so "cuda" means "cpu"."""
    import healpy as hp

    from . import _dispatch

    name = _dispatch.resolve("cpu" if backend == "cuda" else backend)
    r2n, n2r = ((_dispatch._core.ring2nest, _dispatch._core.nest2ring) if name == "cpu"
                else (hp.ring2nest, hp.nest2ring))
    shift = 2 * int(round(np.log2(nside // low)))
    stop = 12 * nside * nside if stop is None else stop
    return n2r(low, r2n(nside, np.arange(start, stop)) >> shift)
