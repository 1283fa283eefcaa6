"""Patch layouts covering the whole sphere.

Both layouts return ``(lon_deg, lat_deg)``, float64 arrays of patch centres in Galactic degrees,
for square gnomonic patches of side ``size_deg`` that overlap by ``overlap_deg``:

* :func:`regular` is ForSE's lon/lat grid: latitudes and longitudes both in steps of
  ``size_deg - overlap_deg`` (for 20/5 deg: 13 latitudes from -90 to 90 times 24 longitudes,
  312 patches, the poles included many times over).
* :func:`adaptive` keeps the latitude rings but puts on each ring only as many patches as its
  circumference needs, and one patch on each pole (210 patches for 20/5 deg).

Every HEALPix pixel lies strictly inside at least one patch (where the default taper window is
positive); ``tests/test_tiling.py`` checks it at Nside 2048.
"""
from __future__ import annotations

import numpy as np


def _check(size_deg, overlap_deg):
    size = float(size_deg)
    overlap = float(overlap_deg)
    if not np.isfinite(size) or not 0 < size < 90:
        raise ValueError(f"`size_deg` must be in (0, 90) degrees, got {size_deg!r}")
    if not np.isfinite(overlap) or not 0 <= overlap < size:
        raise ValueError(f"`overlap_deg` must be in [0, size_deg={size}) degrees, got {overlap_deg!r}")
    return size, overlap, size - overlap


def _latitudes(step):
    n = int(np.ceil(90.0 / step - 1e-9))
    # Evenly spread rings from pole to pole with spacing <= step.
    return np.linspace(-90.0, 90.0, 2 * n + 1)


def regular(size_deg=20.0, overlap_deg=5.0):
    """ForSE's regular grid of patch centres: ``(lon_deg, lat_deg)``, each of shape ``(N,)``."""
    _, _, step = _check(size_deg, overlap_deg)
    lats = _latitudes(step)
    nlon = int(np.ceil(360.0 / step - 1e-9))
    lons = np.arange(nlon) * (360.0 / nlon)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    return lon.ravel().copy(), lat.ravel().copy()


def adaptive(size_deg=20.0, overlap_deg=5.0):
    """Fewer patches towards the poles: ``(lon_deg, lat_deg)``, each of shape ``(N,)``.

    A ring at latitude ``b`` gets ``ceil(360 cos(b') / step)`` patches, where ``b'`` is the
    ring's edge nearest the equator (``|b| - step/2``), so neighbours still overlap there;
    the poles get one patch each.
    """
    _, _, step = _check(size_deg, overlap_deg)
    lon_out, lat_out = [], []
    for b in _latitudes(step):
        if abs(abs(b) - 90.0) < 1e-9:
            lon_out.append(0.0)
            lat_out.append(b)
            continue
        edge = max(abs(b) - step / 2.0, 0.0)
        n = int(np.ceil(360.0 * np.cos(np.radians(edge)) / step - 1e-9))
        lon_out.extend(np.arange(n) * (360.0 / n))
        lat_out.extend([b] * n)
    return np.asarray(lon_out, dtype=np.float64), np.asarray(lat_out, dtype=np.float64)
