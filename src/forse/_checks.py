"""Argument checks shared by the public API: every error names the argument, what was given
and what was expected."""
from __future__ import annotations

import numpy as np


def nside_of(npix_map: int, name: str = "m") -> int:
    nside = int(round(np.sqrt(npix_map / 12.0)))
    if nside < 1 or 12 * nside * nside != npix_map or nside & (nside - 1):
        raise ValueError(f"`{name}` has {npix_map} pixels, which is not 12*nside**2 for any "
                         "power-of-two nside")
    return nside


def positive(value, name: str) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}")
    return v


def float_array(x, name: str, ndim=None) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if ndim is not None and a.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"`{name}` must have {ndim} dimension(s), got shape {a.shape}")
    return a


def centres(lon_deg, lat_deg):
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    if lon.ndim != 1 or lat.ndim != 1:
        raise ValueError(f"`lon_deg` and `lat_deg` must be 1-D, got shapes {lon.shape} and {lat.shape}")
    if lon.shape != lat.shape:
        raise ValueError(f"`lon_deg` has {lon.size} entries but `lat_deg` has {lat.size}; "
                         "they must have the same length")
    if np.any(np.abs(lat) > 90) or not np.all(np.isfinite(lat)) or not np.all(np.isfinite(lon)):
        raise ValueError("`lat_deg` must be finite and within [-90, 90] and `lon_deg` finite")
    return lon, lat


def rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)
