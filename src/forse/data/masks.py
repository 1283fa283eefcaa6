"""Training masks: where the map is reliable enough to learn from.

``training_mask`` follows ForSE: pixels with signal-to-noise ``m / sigma > snr`` (8 by
default), that binary map smoothed with a ``smooth_fwhm_deg`` (1 deg) Gaussian beam and cut at
``cut`` (0.9), so that isolated bright pixels and ragged edges are dropped, then combined with
an isolatitude cut ``|b| > bmin_deg`` (10 deg). Pixels that are UNSEEN or NaN in the map or the
variance are always excluded. Maps are RING, Galactic.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from .._checks import bad_mask, nside_of, positive
from ..sphere.smoothing import smooth

__all__ = ["training_mask", "latitude_mask", "valid_pixels"]


def valid_pixels(m):
    """True where every row of ``m`` is finite and not UNSEEN."""
    a = np.asarray(m)
    ok = ~bad_mask(a)
    return ok.all(axis=0) if a.ndim == 2 else ok


def latitude_mask(nside, bmin_deg):
    """True where ``|b| > bmin_deg`` (RING; computed per ring, no per-pixel trigonometry)."""
    rings = np.arange(1, 4 * nside, dtype=np.int64)
    startpix, ringpix, _, _, _ = hp.ringinfo(nside, rings)
    theta, _ = hp.pix2ang(nside, startpix)  # one pixel per ring, exactly as healpy computes it
    keep = np.abs(90.0 - np.degrees(theta)) > bmin_deg
    return np.repeat(keep, ringpix)


def _intensity(x, name):
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a[0]  # T of a T, Q, U stack: ForSE selects regions on intensity S/N
    if a.ndim != 1:
        raise ValueError(f"`{name}` must have shape (npix,) or (k, npix), got {np.shape(x)}")
    return a


def training_mask(m, variance, *, snr=8.0, smooth_fwhm_deg=1.0, cut=0.9, bmin_deg=10.0):
    """Boolean mask (RING) of the pixels a training set may use.

    Parameters
    ----------
    m : array ``(npix,)`` or ``(k, npix)``
        The map; for a stack the first row (intensity) is used.
    variance : array like ``m``
        Per-pixel noise variance of ``m`` (same Nside), > 0 wherever ``m`` is valid.
    snr : float
        Signal-to-noise threshold ``m / sqrt(variance) > snr``; ``snr=0`` disables it.
    smooth_fwhm_deg : float
        FWHM of the beam applied to the binary S/N mask (0 disables the smoothing).
    cut : float
        The smoothed S/N mask is kept where it exceeds ``cut`` (in (0, 1)).
    bmin_deg : float
        Keep only ``|b| > bmin_deg`` (0 keeps all latitudes).
    """
    t = _intensity(m, "m")
    v = _intensity(variance, "variance")
    nside = nside_of(t.size, "m")
    if v.size != t.size:
        raise ValueError(f"`variance` has {v.size} pixels (nside {nside_of(v.size, 'variance')}) "
                         f"but `m` has {t.size} (nside {nside}); they must have the same Nside")
    if not np.isfinite(snr) or snr < 0:
        raise ValueError(f"`snr` must be a number >= 0, got {snr!r}")
    if not 0 < cut < 1:
        raise ValueError(f"`cut` must be in (0, 1), got {cut!r}")
    if not 0 <= bmin_deg < 90:
        raise ValueError(f"`bmin_deg` must be in [0, 90), got {bmin_deg!r}")
    if smooth_fwhm_deg < 0 or not np.isfinite(smooth_fwhm_deg):
        raise ValueError(f"`smooth_fwhm_deg` must be >= 0, got {smooth_fwhm_deg!r}")
    valid = valid_pixels(t) & valid_pixels(v)
    if not valid.any():
        raise ValueError("`m` and `variance` have no pixel valid in both (all UNSEEN or NaN)")
    vv = v[valid]
    if np.any(vv <= 0):
        n = int(np.sum(vv <= 0))
        raise ValueError(f"`variance` must be > 0 wherever the map is valid; {n} pixel(s) "
                         f"have variance <= 0 (min {vv.min():g})")
    good = valid.copy()
    if snr > 0:
        good[valid] = t[valid] / np.sqrt(vv) > snr
    if smooth_fwhm_deg > 0:
        sm = smooth(good.astype(np.float64), positive(smooth_fwhm_deg, "smooth_fwhm_deg") * 60.0)
        good = sm > cut
    good &= valid
    if bmin_deg > 0:
        good &= latitude_mask(nside, bmin_deg)
    return good
