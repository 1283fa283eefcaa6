"""Rescaling of patches for the network and normalization of generated patches to physical units.

Conventions:

* A *patch* is the last two axes of an array: ``(n, n)`` is one patch, ``(N, n, n)`` a stack,
  ``(N, k, n, n)`` a stack of ``k``-channel patches. Per-patch quantities (``lo``, ``hi``) have
  shape ``x.shape[:-2]``.
* NaN pixels (missing sky) are ignored in every statistic and stay NaN in every output.
* Floating inputs keep their dtype (float32 stays float32); integer inputs become float64.
  Statistics are accumulated in float64.

``rescale`` maps each patch's range ``[lo, hi]`` linearly onto ``[-1, 1]`` (the tanh range of the
generator). ForSE used the plain min-max range (``robust=False``); one bright compact source then
sets ``hi`` and squashes the rest of the patch towards -1. ``robust=True`` (the default) uses the
``percentiles`` of the patch instead and clips the few pixels outside to [-1, 1], so a source
occupying fewer pixels than the upper tail fraction does not change the range of the rest.
"""
from __future__ import annotations

import numpy as np

from ._checks import float_array

__all__ = ["rescale", "rescale_back"]


def _float(x, name: str) -> np.ndarray:
    a = float_array(x, name)
    if a.ndim < 2:
        raise ValueError(f"`{name}` must have at least 2 dimensions (patch rows, columns), "
                         f"got shape {a.shape}")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return a


def _patch_name(name: str, flat_index: int, batch_shape: tuple) -> str:
    """'`x` patch 3' for a stack, '`x` patch (3, 1)' for deeper stacks, '`x`' for one patch."""
    if not batch_shape:
        return f"`{name}`"
    idx = tuple(int(i) for i in np.unravel_index(flat_index, batch_shape))
    return f"`{name}` patch {idx[0] if len(idx) == 1 else idx}"


def rescale(x, *, robust: bool = True, percentiles=(0.5, 99.5)):
    """Map each patch linearly so that ``[lo, hi]`` becomes ``[-1, 1]``.

    Parameters
    ----------
    x : array_like, shape (..., n, m)
        Patches; the last two axes are the pixels.
    robust : bool
        True: ``lo, hi`` are the ``percentiles`` of the patch's finite pixels and the output is
        clipped to [-1, 1]. False: ``lo, hi`` are the patch minimum and maximum (ForSE).
    percentiles : (float, float)
        Lower and upper percentiles in [0, 100] used when ``robust`` is True.

    Returns
    -------
    y : ndarray, shape and float dtype of ``x``
        ``2 (x - lo) / (hi - lo) - 1``; NaN where ``x`` is NaN.
    lo, hi : ndarray, shape ``x.shape[:-2]``, dtype of ``y``
        The per-patch range, for :func:`rescale_back`.

    Raises
    ------
    ValueError
        If a patch has no finite pixel or zero range (``hi == lo``): the index of the first such
        patch is named, since dividing by zero would silently produce NaN.
    """
    a = _float(x, "x")
    if robust:
        p = np.asarray(percentiles, dtype=np.float64)
        if p.shape != (2,) or not np.all(np.isfinite(p)) or not 0 <= p[0] < p[1] <= 100:
            raise ValueError(f"`percentiles` must be two increasing numbers in [0, 100], "
                             f"got {percentiles!r}")
    batch = a.shape[:-2]
    flat = a.reshape((-1,) + a.shape[-2:]).astype(np.float64, copy=False).reshape(
        -1, a.shape[-2] * a.shape[-1])
    finite = np.isfinite(flat)
    empty = ~finite.any(axis=1)
    if empty.any():
        k = int(np.flatnonzero(empty)[0])
        raise ValueError(f"{_patch_name('x', k, batch)} has no finite pixel; "
                         "expected at least two distinct finite values per patch")
    if robust:
        lo, hi = np.nanpercentile(flat, p, axis=1)
    else:
        lo, hi = np.nanmin(flat, axis=1), np.nanmax(flat, axis=1)
    lo = lo.astype(a.dtype)
    hi = hi.astype(a.dtype)
    flat_range = ~(hi > lo)
    if flat_range.any():
        k = int(np.flatnonzero(flat_range)[0])
        raise ValueError(f"{_patch_name('x', k, batch)} has zero range (lo = hi = "
                         f"{float(lo[k])!r}); expected hi > lo, a constant patch cannot be "
                         "rescaled")
    lo = lo.reshape(batch)
    hi = hi.reshape(batch)
    lo64 = lo.astype(np.float64)[..., None, None]
    hi64 = hi.astype(np.float64)[..., None, None]
    y = 2.0 * (a.astype(np.float64) - lo64) / (hi64 - lo64) - 1.0
    if robust:
        np.clip(y, -1.0, 1.0, out=y)  # NaN stays NaN
    return y.astype(a.dtype), lo, hi


def rescale_back(y, lo, hi):
    """Inverse of :func:`rescale`: ``lo + (y + 1) (hi - lo) / 2`` per patch.

    ``lo`` and ``hi`` must have shape ``y.shape[:-2]`` (scalars for a single patch). Pixels that
    ``rescale(robust=True)`` clipped come back at ``lo`` or ``hi``, not at their original value.
    """
    a = _float(y, "y")
    batch = a.shape[:-2]
    bounds = []
    for name, v in (("lo", lo), ("hi", hi)):
        b = float_array(v, name).astype(np.float64)
        if b.shape != batch:
            raise ValueError(f"`{name}` has shape {b.shape}, expected {batch} "
                             "(the leading axes of `y`)")
        bounds.append(b[..., None, None])
    lo64, hi64 = bounds
    x = lo64 + (a.astype(np.float64) + 1.0) * 0.5 * (hi64 - lo64)
    return x.astype(a.dtype)
