"""HEALPix maps <-> square gnomonic patches.

Conventions
-----------
* Patch centres are Galactic ``(lon_deg, lat_deg)`` in degrees; maps are RING unless ``nest=True``.
* A patch is ``npix x npix`` pixels of ``pixel_arcmin`` (at the tangent point), gnomonic (FITS TAN).
  ``patch[i, j]`` sits at plane coordinates ``x = (j - c) * d`` (towards increasing longitude),
  ``y = (c - i) * d`` (north), ``c = (npix - 1) / 2``, ``d`` the pixel size in radians; its sky
  direction is ``e_r + x e_lon + y e_lat`` (normalized) with ``e_r`` the centre and ``e_lon``,
  ``e_lat`` the local east and north unit vectors there. Row 0 is at the top (north).
  :func:`patch_angles` returns these positions as HEALPix ``(theta, phi)``.
* Projection (:func:`healpix_to_patches`): ``"bilinear"`` is exactly ``healpy.get_interp_val`` at
  each patch pixel's position, ``"nearest"`` takes the pixel containing it. A patch pixel whose
  interpolation uses (with non-zero weight) a map pixel that is ``hp.UNSEEN`` or NaN is NaN.
* Back-projection (:func:`patches_to_healpix`): each HEALPix pixel centre inside a patch (between
  the first and last pixel centres in both directions) takes the patch value interpolated there
  (``"bicubic"``: 4x4 cubic convolution, a = -0.5, indices clamped at the edges; or
  ``"bilinear"``) and the window weight ``w`` at that position; the map is
  ``sum_k w_k p_k / sum_k w_k``; pixels with zero total weight are ``hp.UNSEEN``. A contribution
  whose interpolated value is NaN is skipped (so masked regions stay masked).
* Windows: ``"taper"`` (default) is ``t(u) t(v)`` (``u``, ``v`` the fractional column and row)
  with ``t`` rising smoothly (quintic smoothstep ``a^3 (10 - 15 a + 6 a^2)``, C2, and like
  ``sin^2`` complementary: ``t(a) + t(1 - a) = 1``) from 0 at the patch border to 1 at
  ``taper_fraction * (npix - 1)`` pixels inside it (default 0.25, i.e. 5 deg of a 20 deg patch:
  the overlap of the regular layout), so stitched maps have no seams;
  ``"flat"`` weighs every position 1; an ``(npix, npix)`` array of non-negative weights is
  interpolated bilinearly at the fractional pixel position (row, column) of each HEALPix pixel.
* Spin 2 (``pol=True``): the input is a ``(2, npix_map)`` Q, U stack or a ``(3, npix_map)`` T, Q, U
  stack (healpy COSMO convention, as healpy). Q/U are rotated by twice the angle between the local
  north and the patch's up direction at each pixel, so that patch Q/U refer to the patch axes;
  :func:`patches_to_healpix` with ``pol=True`` rotates them back. T is untouched.

Backends (``backend=``): ``"numpy"`` is the reference definition below (``_project_numpy``,
``_backproject_numpy``); ``"cpu"`` is the C++/OpenMP core; ``"cuda"`` takes and returns CuPy
arrays; ``"auto"`` picks the fastest available. ``nthreads=0`` uses all cores.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from .. import _checks, _dispatch
from .._checks import ARCMIN

UNSEEN = hp.UNSEEN
_PROJ_INTERP = ("bilinear", "nearest")
_BACK_INTERP = ("bicubic", "bilinear")
_WINDOWS = ("taper", "flat")
_BLENDS = ("mean", "quadrature")
_CORE_MAX_STACK = 16  # maps per call of the compiled kernels (pol stacks are 2 or 3)


# ---------------------------------------------------------------- geometry (the definition)
def _frames(lon_deg, lat_deg):
    """Unit vectors (centre, east, north), each (N, 3), at the patch centres."""
    lon = np.radians(lon_deg)
    lat = np.radians(lat_deg)
    cl, sl, co, so = np.cos(lat), np.sin(lat), np.cos(lon), np.sin(lon)
    er = np.stack([cl * co, cl * so, sl], axis=-1)
    ee = np.stack([-so, co, np.zeros_like(so)], axis=-1)
    en = np.stack([-sl * co, -sl * so, cl], axis=-1)
    return er, ee, en


def _plane(npix, d):
    """Plane coordinates of the patch pixels: x (along columns) and y (along rows), each (npix, npix)."""
    c = (npix - 1) / 2.0
    t = np.arange(npix, dtype=np.float64)
    x = ((t - c) * d)[None, :]
    y = ((c - t) * d)[:, None]
    return np.broadcast_to(x, (npix, npix)), np.broadcast_to(y, (npix, npix))


def _patch_vectors(er, ee, en, x, y):
    return er[:, None, None, :] + x[..., None] * ee[:, None, None, :] + y[..., None] * en[:, None, None, :]


def _vec2ang(v):
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    theta = np.arctan2(np.sqrt(vx * vx + vy * vy), vz)
    phi = np.arctan2(vy, vx)
    phi = np.where(phi < 0.0, phi + 2.0 * np.pi, phi)
    return theta, phi


def patch_angles(lon_deg, lat_deg, npix=320, pixel_arcmin=3.75):
    """HEALPix ``(theta, phi)`` in radians of every patch pixel, each ``(N, npix, npix)``."""
    lon, lat = _checks.centres(lon_deg, lat_deg)
    npix = _check_npix(npix)
    d = _checks.positive(pixel_arcmin, "pixel_arcmin") * ARCMIN
    er, ee, en = _frames(lon, lat)
    x, y = _plane(npix, d)
    return _vec2ang(_patch_vectors(er, ee, en, x, y))


def _pol_angle(en, theta, phi):
    """Angle (radians) from the local north at ``(theta, phi)`` to the patch's up direction.

    North is ``-e_theta``; the patch's up direction there is the image of the plane's +y axis,
    i.e. the patch-centre north vector ``en`` projected perpendicular to the pixel direction.
    The angle is measured from north towards east (``e_phi``).
    """
    ct, st, cp, sp = np.cos(theta), np.sin(theta), np.cos(phi), np.sin(phi)
    north = np.stack([-ct * cp, -ct * sp, st], axis=-1)
    east = np.stack([-sp, cp, np.zeros_like(sp)], axis=-1)
    # The patch up direction at v: the derivative of normalize(v) along +y is en - (en.v^)v^,
    # which is orthogonal to v; only its direction matters.
    return np.arctan2(np.sum(en * east, axis=-1), np.sum(en * north, axis=-1))


# ---------------------------------------------------------------- argument checks
def _check_npix(npix):
    if isinstance(npix, (bool, np.bool_)) or not isinstance(npix, (int, np.integer)) or npix < 2:
        raise ValueError(f"`npix` must be an integer >= 2, got {npix!r}")
    return int(npix)


def _check_pixel(pixel_arcmin, npix):
    """The pixel size in radians; a patch must stay well inside a hemisphere (gnomonic)."""
    px = _checks.positive(pixel_arcmin, "pixel_arcmin")
    if px * npix > 120 * 60:
        raise ValueError(f"`pixel_arcmin`={pixel_arcmin!r} makes {npix}-pixel patches "
                         f"{px * npix / 60:.0f} degrees wide; expected patches narrower than "
                         "120 degrees")
    return px * ARCMIN


def _check_pol_stack(k, pol, name):
    if pol and k not in (2, 3):
        raise ValueError(f"pol=True needs `{name}` to stack 2 (Q, U) or 3 (T, Q, U) maps, got {k}")


def _as_float(a, name):
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return a


def _squared_window(win, npix, taper_fraction):
    """The window as an (npix, npix) array, squared (for ``blend="quadrature"``)."""
    if win[0] == "array":
        return ("array", win[1] ** 2)
    if win[0] == "flat":
        return win
    t = _taper_1d(np.arange(npix, dtype=np.float64), npix, taper_fraction)
    return ("array", np.ascontiguousarray(np.outer(t, t) ** 2))


def _to_quadrature(maps, wsum, lon, lat, nside, d, win, tf, npix, nest, name, nthreads):
    """Rescale a weighted mean ``sum w p / sum w`` (in place) to ``sum w p / sqrt(sum w^2)``."""
    xp = np
    if name == "cuda":  # pragma: no cover - needs a device
        import cupy as xp
    # only the weights of this pass are used: the native kernel takes a stack of no maps and
    # skips the interpolation (the same weights as a stack of ones, no (N, npix, npix) array)
    ones = xp.ones((lon.size, 0 if name == "cpu" else 1, npix, npix), dtype=maps.dtype)
    _, w2 = _BACKPROJECT[name](ones, lon, lat, nside, d, _squared_window(win, npix, tf),
                               tf, "bilinear", nest, False, True, nthreads)
    # scale = sum w / sqrt(sum w^2), built in the w2 buffer: no more full-sky copies
    xp.sqrt(w2, out=w2)
    covered = w2 > 0
    xp.divide(wsum, w2, out=w2, where=covered)
    w2[~covered] = 1.0  # UNSEEN pixels stay UNSEEN
    for row in maps:
        row *= w2.astype(maps.dtype, copy=False)


def _check_window(window, npix):
    """Normalized window spec: ("taper",), ("flat",) or ("array", (npix, npix) float64)."""
    if isinstance(window, str):
        _checks.choice(window, "window", _WINDOWS)
        return (window,)
    if _dispatch.is_cupy(window):
        window = window.get()
    w = np.asarray(window)
    if w.dtype.kind not in "fiu":
        raise TypeError(f"`window` must be 'taper', 'flat' or a real array, got dtype {w.dtype}")
    if w.shape != (npix, npix):
        raise ValueError(f"`window` array has shape {w.shape}, expected (npix, npix) = ({npix}, {npix})")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError("`window` array must be finite, non-negative and not all zero")
    return ("array", np.ascontiguousarray(w))


# ---------------------------------------------------------------- numpy reference backends
def _project_numpy(maps, lon, lat, npix, d, nest, interpolation, pol, nthreads):
    """maps (k, npix_map) -> patches (N, k, npix, npix) in the maps' float dtype."""
    k, npix_map = maps.shape
    nside = hp.npix2nside(npix_map)
    m64 = maps.astype(np.float64)
    bad = _checks.bad_mask(m64)
    clean = np.where(bad, 0.0, m64)
    er, ee, en = _frames(lon, lat)
    x, y = _plane(npix, d)
    out = np.empty((lon.size, k, npix, npix), dtype=maps.dtype)
    for n in range(lon.size):
        v = _patch_vectors(er[n:n + 1], ee[n:n + 1], en[n:n + 1], x, y)[0]
        theta, phi = _vec2ang(v)
        if interpolation == "nearest":
            pix = hp.ang2pix(nside, theta.ravel(), phi.ravel(), nest=nest)
            vals = clean[:, pix]
            vals[bad[:, pix]] = np.nan
        else:
            pix, w = hp.get_interp_weights(nside, theta.ravel(), phi.ravel(), nest=nest)
            vals = np.zeros((k, pix.shape[1]))
            for r in range(4):  # same order as healpy's get_interp_val
                vals += w[r] * clean[:, pix[r]]
            touched = np.zeros((k, pix.shape[1]), dtype=bool)
            for r in range(4):
                touched |= bad[:, pix[r]] & (w[r] != 0)
            vals[touched] = np.nan
        vals = vals.reshape(k, npix, npix)
        if pol:
            psi = _pol_angle(en[n], theta, phi)
            vals[-2:] = _rotate_qu(vals[-2], vals[-1], psi, forward=True)
        out[n] = vals
    return out


def _rotate_qu(q, u, psi, forward):
    """Q/U from the local-meridian frame to the patch frame (forward) or back."""
    s = 2.0 * psi if forward else -2.0 * psi
    c2, s2 = np.cos(s), np.sin(s)
    return np.stack([c2 * q - s2 * u, s2 * q + c2 * u])


def _cubic_weights(f):
    """Keys cubic convolution (a = -0.5) weights for offsets -1, 0, 1, 2 at fraction f."""
    a = -0.5

    def near(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return far(1 + f), near(f), near(1 - f), far(2 - f)


def _interp_patch(img, r, c, interpolation):
    """Interpolate img (k, npix, npix) at fractional (row r, column c) arrays; -> (k, n)."""
    npix = img.shape[-1]
    if interpolation == "bilinear":
        r0 = np.minimum(np.floor(r).astype(np.int64), npix - 2)
        c0 = np.minimum(np.floor(c).astype(np.int64), npix - 2)
        fr, fc = r - r0, c - c0
        return ((1 - fr) * ((1 - fc) * img[:, r0, c0] + fc * img[:, r0, c0 + 1])
                + fr * ((1 - fc) * img[:, r0 + 1, c0] + fc * img[:, r0 + 1, c0 + 1]))
    r0 = np.floor(r).astype(np.int64)
    c0 = np.floor(c).astype(np.int64)
    wr = _cubic_weights(r - r0)
    wc = _cubic_weights(c - c0)
    out = 0.0
    for a in range(4):
        ri = np.clip(r0 + a - 1, 0, npix - 1)
        row = 0.0
        for b in range(4):
            ci = np.clip(c0 + b - 1, 0, npix - 1)
            row = row + wc[b] * img[:, ri, ci]
        out = out + wr[a] * row
    return out


def _taper_1d(s, npix, fraction):
    """Quintic smoothstep ramp: 0 at the border, 1 at ``fraction * (npix - 1)`` pixels inside."""
    inv_width = 1.0 / (fraction * (npix - 1))
    a = np.clip(np.minimum(s, (npix - 1) - s) * inv_width, 0.0, 1.0)
    return a * a * a * (10.0 + a * (-15.0 + 6.0 * a))


def _window_weight(window, r, c, npix, taper_fraction):
    if window[0] == "taper":
        return _taper_1d(r, npix, taper_fraction) * _taper_1d(c, npix, taper_fraction)
    if window[0] == "flat":
        return np.ones_like(r)
    return _interp_patch(window[1][None], r, c, "bilinear")[0]


def _backproject_numpy(patches, lon, lat, nside, d, window, taper_fraction, interpolation, nest,
                       pol, want_weights, nthreads):
    """patches (N, k, npix, npix) -> (maps (k, npix_map), weights (npix_map,) float64)."""
    n_patch, k, npix, _ = patches.shape
    npix_map = 12 * nside * nside
    acc = np.zeros((k, npix_map))
    wsum = np.zeros(npix_map)
    er, ee, en = _frames(lon, lat)
    c = (npix - 1) / 2.0
    radius = np.arctan(np.sqrt(2.0) * c * d) + 1e-9
    for n in range(n_patch):
        pix = hp.query_disc(nside, er[n], radius, inclusive=False, nest=nest)
        v = np.stack(hp.pix2vec(nside, pix, nest=nest), axis=-1)
        dot = v @ er[n]
        ok = dot > 0
        pix, v, dot = pix[ok], v[ok], dot[ok]
        inv = 1.0 / (dot * d)
        col = c + (v @ ee[n]) * inv
        row = c - (v @ en[n]) * inv
        inside = (col >= 0) & (col <= npix - 1) & (row >= 0) & (row <= npix - 1)
        pix, v, row, col = pix[inside], v[inside], row[inside], col[inside]
        vals = _interp_patch(patches[n].astype(np.float64), row, col, interpolation)
        if pol:
            theta, phi = _vec2ang(v)
            psi = _pol_angle(en[n], theta, phi)
            vals[-2:] = _rotate_qu(vals[-2], vals[-1], psi, forward=False)
        w = _window_weight(window, row, col, npix, taper_fraction)
        good = np.all(np.isfinite(vals), axis=0) & (w > 0)
        pix, w, vals = pix[good], w[good], vals[:, good]
        acc[:, pix] += w * vals  # pixels are unique within one patch
        wsum[pix] += w
    covered = wsum > 0
    maps = np.full((k, npix_map), UNSEEN, dtype=patches.dtype)
    maps[:, covered] = acc[:, covered] / wsum[covered]
    return maps, wsum


# ---------------------------------------------------------------- compiled backends
def _core():
    return _dispatch._core


def _project_cpu(maps, lon, lat, npix, d, nest, interpolation, pol, nthreads):
    core = _core()
    if maps.strides[1] % maps.itemsize or maps.strides[0] % maps.itemsize:
        maps = np.ascontiguousarray(maps)
    near = interpolation == "nearest"
    if maps.shape[0] <= _CORE_MAX_STACK:
        return core.healpix_to_patches(maps, lon, lat, npix, d, nest, near, pol, nthreads)
    parts = [core.healpix_to_patches(maps[a:a + _CORE_MAX_STACK], lon, lat, npix, d, nest, near,
                                     False, nthreads)
             for a in range(0, maps.shape[0], _CORE_MAX_STACK)]
    return np.concatenate(parts, axis=1)


def _backproject_cpu(patches, lon, lat, nside, d, window, taper_fraction, interpolation, nest,
                     pol, want_weights, nthreads):
    core = _core()
    kind = {"taper": 0, "flat": 1, "array": 2}[window[0]]
    warr = window[1] if kind == 2 else np.zeros((1, 1))
    patches = np.ascontiguousarray(patches)
    cubic = interpolation == "bicubic"
    k = patches.shape[1]
    if k <= _CORE_MAX_STACK:
        return core.patches_to_healpix(patches, lon, lat, nside, d, kind, warr, taper_fraction,
                                       cubic, nest, pol, want_weights, nthreads)
    maps, weights = [], None
    for a in range(0, k, _CORE_MAX_STACK):
        m, weights = core.patches_to_healpix(
            np.ascontiguousarray(patches[:, a:a + _CORE_MAX_STACK]), lon, lat, nside, d, kind,
            warr, taper_fraction, cubic, nest, False, want_weights, nthreads)
        maps.append(m)
    return np.concatenate(maps, axis=0), weights


def _cupy():
    import cupy
    return cupy


def _host(a):
    return a.get() if _dispatch.is_cupy(a) else np.asarray(a)


def _project_cuda(maps, lon, lat, npix, d, nest, interpolation, pol, nthreads):
    """CuPy (k, npix_map) -> CuPy (N, k, npix, npix) on the current CuPy stream."""
    cp = _cupy()
    if maps.dtype not in (cp.float32, cp.float64):
        maps = maps.astype(cp.float64)
    if maps.strides[0] % maps.itemsize or maps.strides[1] % maps.itemsize:
        maps = cp.ascontiguousarray(maps)
    k = maps.shape[0]
    if k > _CORE_MAX_STACK:
        parts = [_project_cuda(maps[a:a + _CORE_MAX_STACK], lon, lat, npix, d, nest,
                               interpolation, False, nthreads)
                 for a in range(0, k, _CORE_MAX_STACK)]
        return cp.concatenate(parts, axis=1)
    nside = hp.npix2nside(maps.shape[1])
    out = cp.empty((lon.size, k, npix, npix), dtype=maps.dtype)
    _core().healpix_to_patches_cuda(
        maps.data.ptr, bool(maps.dtype == cp.float32), k, maps.strides[0] // maps.itemsize,
        maps.strides[1] // maps.itemsize, nside, lon, lat, npix, d, nest,
        interpolation == "nearest", pol, out.data.ptr, cp.cuda.get_current_stream().ptr)
    return out


def _backproject_cuda(patches, lon, lat, nside, d, window, taper_fraction, interpolation, nest,
                      pol, want_weights, nthreads):
    """CuPy (N, k, npix, npix) -> (CuPy (k, npix_map), CuPy weights or None)."""
    cp = _cupy()
    if patches.dtype not in (cp.float32, cp.float64):
        patches = patches.astype(cp.float64)
    patches = cp.ascontiguousarray(patches)
    n, k, npix, _ = patches.shape
    if k > _CORE_MAX_STACK:
        maps, weights = [], None
        for a in range(0, k, _CORE_MAX_STACK):
            m, weights = _backproject_cuda(patches[:, a:a + _CORE_MAX_STACK], lon, lat, nside, d,
                                           window, taper_fraction, interpolation, nest, False,
                                           want_weights, nthreads)
            maps.append(m)
        return cp.concatenate(maps, axis=0), weights
    kind = {"taper": 0, "flat": 1, "array": 2}[window[0]]
    warr = window[1] if kind == 2 else np.zeros((1, 1))
    out = cp.empty((k, 12 * nside * nside), dtype=patches.dtype)
    weights = cp.empty(12 * nside * nside, dtype=cp.float64) if want_weights else None
    _core().patches_to_healpix_cuda(
        patches.data.ptr, bool(patches.dtype == cp.float32), n, k, npix, lon, lat, nside, d,
        kind, warr, taper_fraction, interpolation == "bicubic", nest, pol, out.data.ptr,
        0 if weights is None else weights.data.ptr, cp.cuda.get_current_stream().ptr)
    return out, weights


_PROJECT = {"numpy": _project_numpy, "cpu": _project_cpu, "cuda": _project_cuda}
_BACKPROJECT = {"numpy": _backproject_numpy, "cpu": _backproject_cpu, "cuda": _backproject_cuda}


# ---------------------------------------------------------------- public API
def healpix_to_patches(m, lon_deg, lat_deg, npix=320, pixel_arcmin=3.75, *, nest=False,
                       interpolation="bilinear", pol=False, backend="auto", nthreads=0):
    """Cut square gnomonic patches out of a HEALPix map.

    Parameters
    ----------
    m : array (npix_map,) or (k, npix_map)
        HEALPix map(s), float32 or float64 (other real dtypes become float64); any strides.
    lon_deg, lat_deg : array (N,)
        Patch centres, Galactic degrees.
    npix, pixel_arcmin : patch side in pixels and pixel size at the tangent point.
    nest : the map's ordering.
    interpolation : ``"bilinear"`` (exactly ``healpy.get_interp_val``) or ``"nearest"``.
    pol : rotate Q/U (the last two maps of a (2|3, npix_map) stack) into the patch frame.
    backend : ``"auto"``, ``"numpy"``, ``"cpu"`` or ``"cuda"`` (CuPy arrays in and out).
    nthreads : CPU threads, 0 = all.

    Returns
    -------
    patches : (N, npix, npix) for a single map, (N, k, npix, npix) for a stack, in the map's
        float dtype; NaN where the interpolation touched an UNSEEN or NaN map pixel.
    """
    name = _dispatch.resolve(backend, m=m)
    lon, lat = _checks.centres(_host(lon_deg), _host(lat_deg))
    npix = _check_npix(npix)
    d = _check_pixel(pixel_arcmin, npix)
    nest = bool(nest)
    _checks.choice(interpolation, "interpolation", _PROJ_INTERP)
    nthreads = _checks.nthreads(nthreads)
    if name == "cuda":
        maps = m
        if maps.ndim not in (1, 2):
            raise ValueError(f"`m` must be 1-D (npix_map,) or 2-D (k, npix_map), got shape {maps.shape}")
    else:
        maps = np.asarray(m)
        if maps.ndim not in (1, 2):
            raise ValueError(f"`m` must be 1-D (npix_map,) or 2-D (k, npix_map), got shape {maps.shape}")
        maps = _as_float(maps, "m")
    if maps.dtype.kind != "f":
        raise TypeError(f"`m` must be a real float array, got dtype {maps.dtype}")
    single = maps.ndim == 1
    stack = maps[None] if single else maps
    _checks.nside_of(stack.shape[1], "m")
    _check_pol_stack(stack.shape[0], pol, "m")
    if lon.size == 0:
        raise ValueError("`lon_deg` and `lat_deg` are empty: give at least one patch centre")
    _checks.memory(lon.size * stack.shape[0] * npix * npix * stack.dtype.itemsize, "npix", npix,
                   f"{lon.size} x {stack.shape[0]} patches of {npix}x{npix} {stack.dtype}")
    out = _PROJECT[name](stack, lon, lat, npix, d, nest, interpolation, bool(pol), nthreads)
    return out[:, 0] if single else out


def patches_to_healpix(patches, lon_deg, lat_deg, nside, pixel_arcmin=3.75, *, window="taper",
                       taper_fraction=0.25, interpolation="bicubic", nest=False,
                       return_weights=False, pol=False, blend="mean", backend="auto", nthreads=0):
    """Put patches back onto a HEALPix map: ``sum_k w_k p_k / sum_k w_k`` at each pixel centre
    (``blend="mean"``), or ``sum_k w_k p_k / sqrt(sum_k w_k^2)`` (``blend="quadrature"``).

    Parameters
    ----------
    patches : array (N, npix, npix) or (N, k, npix, npix), float32 or float64.
    lon_deg, lat_deg : array (N,), patch centres (Galactic degrees).
    nside : output resolution (power of two).
    pixel_arcmin : patch pixel size at the tangent point.
    window : ``"taper"`` (default, no seams), ``"flat"`` or an ``(npix, npix)`` weight array
        (interpolated bilinearly at each HEALPix pixel's fractional patch position).
    taper_fraction : width of the ``"taper"`` ramp as a fraction of the patch side, in (0, 0.5].
    interpolation : ``"bicubic"`` (default) or ``"bilinear"``.
    nest : output ordering.
    return_weights : also return the float64 weight map ``sum_k w_k``.
    pol : the last two maps of a 2- or 3-map stack are Q/U in the patch frame: rotate back.
    blend : ``"mean"`` (a weighted mean: a map that all patches share comes back unchanged) or
        ``"quadrature"`` (weights whose squares sum to one: independent patterns of equal variance
        keep that variance where patches overlap, instead of dropping to ~1/2 in an overlap
        strip; for small scales generated patch by patch). ``sum_k w_k^2`` comes from a second
        pass with the squared window, so contributions skipped as NaN count there too.
    backend, nthreads : as :func:`healpix_to_patches`.

    Returns
    -------
    map : (npix_map,) or (k, npix_map) in the patches' float dtype, ``hp.UNSEEN`` where no patch
        contributes; and the weight map if ``return_weights``.
    """
    name = _dispatch.resolve(backend, window, patches=patches)
    lon, lat = _checks.centres(_host(lon_deg), _host(lat_deg))
    nside = _checks.nside(nside, "nside", hi=2**29)
    nest = bool(nest)
    _checks.choice(interpolation, "interpolation", _BACK_INTERP)
    nthreads = _checks.nthreads(nthreads)
    tf = float(taper_fraction)
    if not np.isfinite(tf) or not 0 < tf <= 0.5:
        raise ValueError(f"`taper_fraction` must be in (0, 0.5], got {taper_fraction!r}")
    p = patches if name == "cuda" else _as_float(np.asarray(patches), "patches")
    if p.dtype.kind != "f":
        raise TypeError(f"`patches` must be a real float array, got dtype {p.dtype}")
    if p.ndim not in (3, 4) or p.shape[-1] != p.shape[-2]:
        raise ValueError(f"`patches` must be (N, npix, npix) or (N, k, npix, npix), got shape {p.shape}")
    if p.shape[0] != lon.size:
        raise ValueError(f"`patches` has {p.shape[0]} patches but {lon.size} centres were given "
                         "(lon_deg/lat_deg)")
    npix = _check_npix(p.shape[-1])
    d = _check_pixel(pixel_arcmin, npix)
    _checks.memory(12 * nside * nside * (p.shape[1] if p.ndim == 4 else 1) * 16, "nside", nside,
                   "the output map and its weights")
    single = p.ndim == 3
    p4 = p[:, None] if single else p
    _check_pol_stack(p4.shape[1], pol, "patches")
    win = _check_window(window, npix)
    _checks.choice(blend, "blend", _BLENDS)
    quad = blend == "quadrature"
    maps, weights = _BACKPROJECT[name](p4, lon, lat, nside, d, win, tf, interpolation, nest,
                                       bool(pol), bool(return_weights) or quad, nthreads)
    if quad:
        _to_quadrature(maps, weights, lon, lat, nside, d, win, tf, npix, nest, name, nthreads)
        weights = weights if return_weights else None
    maps = maps[0] if single else maps
    return (maps, weights) if return_weights else maps
