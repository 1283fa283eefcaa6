"""Angular power spectra: flat-sky (square patches) and full/masked sky (HEALPix).

Flat sky (``flat_power_spectrum``): each image is mean-subtracted, multiplied by a separable
cosine-tapered window, Fourier transformed, and ``|FFT|^2`` is averaged in annuli of
``ell = 2 pi |k|`` (k in cycles per radian). The result is ``C_ell`` in map-units^2 sr,
divided by the window's mean ``w^2`` so that white noise of variance ``s^2`` on pixels of solid
angle ``dx^2`` gives ``C_ell = s^2 dx^2`` at all ell. ``ell_eff`` is the mean ell of the Fourier
modes in each bin.

Full sky (``masked_cl``): ``healpy.anafast`` of the map times an apodized mask, divided by the
mask's mean ``w^2`` over the sphere (the fsky correction of a pseudo-C_ell; mode coupling is
not deconvolved, so use it for comparing maps under the same mask, not for unbiased C_ell at
the lowest multipoles). Spectra are returned to ``lmax`` (default ``min(3 nside - 1, 2048)``,
enough for a 12 arcmin map and fast at Nside 2048).
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from .._checks import ARCMIN, bad_mask, float_array, nside_of, positive, unseen
from .._dispatch import nthreads
from .._pixels import parents
from ..sphere import sht

__all__ = [
    "flat_power_spectrum", "default_ell_edges", "taper_window",
    "apodize_mask", "masked_cl", "bin_cl", "default_lmax", "correlation_coefficient",
]


# ----------------------------------------------------------------------------- flat sky
def taper_window(n: int, width_pix: float) -> np.ndarray:
    """1-D window: 1 in the middle, a raised-cosine taper to 0 over ``width_pix`` at each end."""
    x = np.arange(n, dtype=np.float64)
    d = np.minimum(x, n - 1 - x)  # distance to the nearer edge in pixels
    w = np.ones(n)
    if width_pix > 0:
        edge = d < width_pix
        w[edge] = 0.5 * (1.0 - np.cos(np.pi * d[edge] / width_pix))
    return w


@functools.lru_cache(maxsize=16)
def _binning(ny: int, nx: int, pixel_arcmin: float, edges: tuple):
    """The rfft2 modes inside the bins, the (modes, bins) matrix that sums them with their
    mirror-image multiplicity, the weighted mode count and the mean ell of each bin (cached:
    extend and validate bin thousands of same-shape patches)."""
    pix = pixel_arcmin * ARCMIN
    e = np.asarray(edges)
    # real input: the half plane of rfft2 holds every mode, its mirror images counted twice
    mult = np.full(nx // 2 + 1, 2.0)
    mult[0] = 1.0
    if nx % 2 == 0:
        mult[-1] = 1.0  # the Nyquist column is its own mirror image
    mult = np.broadcast_to(mult, (ny, nx // 2 + 1)).ravel()
    ell = _ell_grid(ny, nx, pix)[:, : nx // 2 + 1].ravel()
    idx = np.digitize(ell, e) - 1  # bin b holds edges[b] <= ell < edges[b+1]
    nb = e.size - 1
    inside = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[inside], weights=mult[inside], minlength=nb)
    if np.any(counts == 0):
        empty = np.flatnonzero(counts == 0)
        raise ValueError(f"`ell_edges` bins {empty.tolist()} hold no Fourier mode of a {ny}x{nx} "
                         f"image with {pixel_arcmin} arcmin pixels (fundamental ell "
                         f"{2 * np.pi / (max(ny, nx) * pix):.1f}); widen them")
    ell_eff = np.bincount(idx[inside], weights=(ell * mult)[inside], minlength=nb) / counts
    onehot = np.zeros((int(inside.sum()), nb))
    onehot[np.arange(onehot.shape[0]), idx[inside]] = mult[inside]
    for a in (inside, onehot, counts, ell_eff):
        a.flags.writeable = False
    return inside, onehot, counts, ell_eff


def _ell_grid(ny: int, nx: int, pixel_rad: float) -> np.ndarray:
    ly = 2.0 * np.pi * np.fft.fftfreq(ny, d=pixel_rad)
    lx = 2.0 * np.pi * np.fft.fftfreq(nx, d=pixel_rad)
    return np.hypot(ly[:, None], lx[None, :])


def default_ell_edges(shape, pixel_arcmin: float, nbins: int = 20) -> np.ndarray:
    """Log-spaced bin edges from twice the fundamental mode to the Nyquist ell of the shorter
    side; bins narrower than the fundamental mode are merged (no empty bins)."""
    ny, nx = int(shape[-2]), int(shape[-1])
    pix = positive(pixel_arcmin, "pixel_arcmin") * ARCMIN
    l_fund = 2.0 * np.pi / (max(ny, nx) * pix)
    l_nyq = np.pi / pix
    lo = 2.0 * l_fund
    edges = np.geomspace(lo, l_nyq, int(nbins) + 1)
    keep = [edges[0]]
    for e in edges[1:]:
        if e - keep[-1] >= l_fund:
            keep.append(e)
    if len(keep) < 2:
        keep.append(l_nyq)
    keep[-1] = l_nyq
    return np.asarray(keep)


def flat_power_spectrum(images, pixel_arcmin: float, *, ell_edges=None, apodize_deg: float = 1.0,
                        remove_mean: bool = True):
    """Binned flat-sky power spectrum of one image ``(ny, nx)`` or a stack ``(N, ny, nx)``.

    Parameters
    ----------
    images : array ``(ny, nx)`` or ``(N, ny, nx)``, finite values (drop patches with NaN first).
    pixel_arcmin : pixel side in arcmin.
    ell_edges : increasing bin edges in ell (bin b is ``edges[b] <= ell < edges[b+1]``);
        default ``default_ell_edges(images.shape, pixel_arcmin)``.
    apodize_deg : width of the cosine taper at each edge, in degrees (0: no taper).
    remove_mean : subtract each image's mean before tapering (keeps the ell=0 mode from leaking).

    Returns
    -------
    ell_eff : ``(B,)`` mean ell of the Fourier modes in each bin.
    cl : ``(B,)`` for one image or ``(N, B)`` for a stack, in map-units^2 sr.
    """
    a = float_array(images, "images", ndim=(2, 3))
    single = a.ndim == 2
    a = np.asarray(a, dtype=np.float64).reshape((-1,) + a.shape[-2:])
    n, ny, nx = a.shape
    if n == 0 or ny < 4 or nx < 4:
        raise ValueError(f"`images` must hold at least one image of at least 4x4 pixels, "
                         f"got shape {np.shape(images)}")
    if not np.all(np.isfinite(a)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(a), axis=(1, 2))))
        raise ValueError(f"`images` has {bad} image(s) with NaN/inf pixels; drop or fill them first")
    pix = positive(pixel_arcmin, "pixel_arcmin") * ARCMIN
    apod = float(apodize_deg)
    if not np.isfinite(apod) or apod < 0:
        raise ValueError(f"`apodize_deg` must be >= 0, got {apodize_deg!r}")
    width = apod * 60.0 / float(pixel_arcmin)
    if 2.0 * width >= min(ny, nx):
        raise ValueError(f"`apodize_deg`={apodize_deg} tapers {width:.1f} pixels at each edge, "
                         f"which leaves nothing of a {ny}x{nx} image; use less than "
                         f"{min(ny, nx) * float(pixel_arcmin) / 120.0:.3g} deg")

    if ell_edges is None:
        edges = default_ell_edges((ny, nx), pixel_arcmin)
    else:
        edges = np.asarray(ell_edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
            raise ValueError(f"`ell_edges` must be a 1-D increasing array of >= 2 non-negative "
                             f"edges, got {np.asarray(ell_edges)!r}")

    window = taper_window(ny, width)[:, None] * taper_window(nx, width)[None, :]
    w2 = float(np.mean(window ** 2))
    if remove_mean:
        a = a - a.mean(axis=(1, 2), keepdims=True)
    spec = scipy.fft.rfft2(a * window, axes=(1, 2), workers=nthreads())
    power = spec.real ** 2 + spec.imag ** 2
    power *= pix * pix / (ny * nx * w2)
    inside, onehot, counts, ell_eff = _binning(ny, nx, float(pixel_arcmin),
                                               tuple(float(e) for e in edges))
    flat = power.reshape(n, -1)[:, inside]
    # one matrix product bins every image at once
    cl = flat @ onehot / counts
    return ell_eff.copy(), (cl[0] if single else cl)


def flat_teb_spectra(t, q, u, pixel_arcmin: float, *, ell_edges, apodize_deg: float = 1.0):
    """Binned flat-sky TT, EE, BB and TE of T, Q, U patches ``(N, n, n)``, Q/U in the patch
    frame of ``forse.projection`` (``pol=True``): x along rows (axis 0), y along columns.
    ``E + iB`` are ``(Q + iU) e^{-2i phi_l}`` of the tapered patches' FFTs, ``phi_l`` the angle
    of (l_x, l_y): a pure E pattern ``Q = psi_xx - psi_yy``, ``U = 2 psi_xy`` has no B. (On the
    synthetic sky this frame gives its EE/BB ~ 2 and TE > 0; the other handedness gives
    EE/BB ~ 1 and TE ~ 0.)

    Returns ``(ell_eff, {"TT", "EE", "BB", "TE": (N, B)})`` in map-units^2 sr.
    """
    arrs = [float_array(a, name, ndim=(3,)) for a, name in ((t, "t"), (q, "q"), (u, "u"))]
    if not (arrs[0].shape == arrs[1].shape == arrs[2].shape):
        raise ValueError(f"`t`, `q`, `u` must have one shape (N, n, n), got "
                         f"{[a.shape for a in arrs]}")
    n, ny, nx = arrs[0].shape
    pix = positive(pixel_arcmin, "pixel_arcmin") * ARCMIN
    width = float(apodize_deg) * 60.0 / float(pixel_arcmin)
    window = taper_window(ny, width)[:, None] * taper_window(nx, width)[None, :]
    w2 = float(np.mean(window ** 2))
    ft = [scipy.fft.fft2((a - a.mean(axis=(1, 2), keepdims=True)) * window, axes=(1, 2),
                         workers=nthreads()) for a in arrs]
    lx = 2.0 * np.pi * np.fft.fftfreq(ny, d=pix)[:, None]  # x along rows
    ly = 2.0 * np.pi * np.fft.fftfreq(nx, d=pix)[None, :]
    phi = np.arctan2(ly, lx)
    c2, s2 = np.cos(2 * phi), np.sin(2 * phi)
    tq, tu = ft[1], ft[2]
    modes = {"T": ft[0], "E": tq * c2 + tu * s2, "B": -tq * s2 + tu * c2}
    ell = np.hypot(ly, lx).ravel()
    edges = np.asarray(ell_edges, dtype=np.float64)
    idx = np.digitize(ell, edges) - 1
    nb = edges.size - 1
    inside = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[inside], minlength=nb)
    if np.any(counts == 0):
        raise ValueError(f"`ell_edges` bins {np.flatnonzero(counts == 0).tolist()} hold no "
                         f"Fourier mode of a {ny}x{nx} image; widen them")
    onehot = np.zeros((int(inside.sum()), nb))
    onehot[np.arange(onehot.shape[0]), idx[inside]] = 1.0 / counts[idx[inside]]
    norm = pix * pix / (ny * nx * w2)
    out = {}
    for k, (a, b) in {"TT": "TT", "EE": "EE", "BB": "BB", "TE": "TE"}.items():
        cross = (modes[a] * np.conj(modes[b])).real.reshape(n, -1)[:, inside] * norm
        out[k] = cross @ onehot
    ell_eff = np.bincount(idx[inside], weights=ell[inside], minlength=nb) / counts
    return ell_eff, out


# ----------------------------------------------------------------------------- full sky
def default_lmax(nside: int) -> int:
    return int(min(3 * nside - 1, 2048))


def apodize_mask(mask, apodize_deg: float = 2.0) -> np.ndarray:
    """Apodized weight map in [0, 1] from a mask (bool or 0/1, RING; True/1 = keep).

    A raised-cosine ("C2") taper of the angular distance ``d`` to the nearest masked pixel:
    ``w = (1 - cos(pi d / apodize_deg)) / 2`` for ``d < apodize_deg``, 1 further in, 0 on masked
    pixels. Distances are measured at a resolution of about ``apodize_deg / 10`` (KD-tree on
    pixel centres) and carried to the mask's Nside, so it stays fast at Nside 2048.
    """
    import healpy as hp
    from scipy.spatial import cKDTree

    m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"`mask` must be one HEALPix map (1-D), got shape {m.shape}")
    nside = nside_of(m.size, "mask")
    mf = m.astype(np.float64)
    keep = np.isfinite(mf) & (mf > 0.5) & ~unseen(mf)
    if apodize_deg is None or float(apodize_deg) == 0.0 or keep.all():
        return keep.astype(np.float64)
    apo = np.radians(positive(apodize_deg, "apodize_deg"))
    nside_lo = nside
    while nside_lo > 16 and hp.nside2resol(nside_lo // 2) < apo / 10.0:
        nside_lo //= 2
    if nside_lo < nside:
        shift = 2 * (int(np.log2(nside)) - int(np.log2(nside_lo)))
        parent = parents(nside, nside_lo)
        frac = np.bincount(parent, weights=keep, minlength=12 * nside_lo ** 2) / (1 << shift)
        keep_lo = frac > 0.5
    else:
        keep_lo = keep
    vec = np.asarray(hp.pix2vec(nside_lo, np.arange(12 * nside_lo * nside_lo))).T
    w_lo = np.zeros(keep_lo.size)
    if (~keep_lo).any():
        # nearest masked pixel = nearest masked pixel on the mask's edge; a bounded query keeps
        # the KD-tree fast (unbounded queries on HEALPix grids are very slow)
        masked = np.flatnonzero(~keep_lo)
        nb = hp.get_all_neighbours(nside_lo, masked)
        edge = masked[np.any(keep_lo[np.where(nb >= 0, nb, masked)], axis=0)]
        chord_max = 2.0 * np.sin(apo / 2.0)
        chord, _ = cKDTree(vec[edge]).query(vec[keep_lo], distance_upper_bound=chord_max)
        dist = 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))  # inf chord -> pi: beyond taper
        w_lo[keep_lo] = np.where(dist < apo, 0.5 * (1.0 - np.cos(np.pi * dist / apo)), 1.0)
    else:
        w_lo[:] = 1.0
    w = w_lo[parent] if nside_lo < nside else w_lo
    return w * keep


def masked_cl(maps, mask=None, *, lmax=None, apodize_deg: float = 2.0, weights=None):
    """Pseudo-C_ell of a T map ``(npix,)`` or TQU maps ``(3, npix)`` on the (apodized) mask.

    ``mask`` True/1 keeps a pixel (None: full sky). Pixels that are NaN or ``hp.UNSEEN`` in any
    field are dropped (weight 0) before apodization and counted. ``weights`` (a ready weight map)
    replaces ``mask``/``apodize_deg`` when given.

    Returns a dict: ``ell`` (0..lmax), ``TT`` and, for TQU, ``EE``, ``BB``, ``TE``, ``EB``,
    ``TB`` (each ``(lmax+1,)``, divided by the mean ``w^2``), ``fsky`` (mean ``w^2``),
    ``n_bad`` (NaN/UNSEEN pixels dropped) and ``lmax``.
    """
    import healpy as hp

    a = float_array(maps, "maps", ndim=(1, 2))  # float32 maps stay float32
    if a.ndim == 2 and a.shape[0] not in (1, 3):
        raise ValueError(f"`maps` must be (npix,) or (3, npix) for T or TQU, got shape {a.shape}")
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    npix = a.shape[-1]
    nside = nside_of(npix, "maps")
    bad = bad_mask(a)
    bad = bad.any(axis=0) if a.ndim == 2 else bad
    n_bad = int(np.count_nonzero(bad))

    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (npix,):
            raise ValueError(f"`weights` must have shape ({npix},) like the maps, got {w.shape}")
        w = np.where(bad, 0.0, w)
    else:
        if mask is None:
            keep = ~bad
        else:
            mk = np.asarray(mask)
            if mk.shape != (npix,):
                mside = "?" if mk.ndim != 1 else str(nside_of(mk.size, "mask"))
                raise ValueError(f"`mask` has Nside {mside} (shape {mk.shape}) but the maps have "
                                 f"Nside {nside}; they must match")
            keep = (mk.astype(np.float64) > 0.5) & ~bad
        # a clean full sky needs no weight map: no product, no copy of the maps
        w = None if n_bad == 0 and mask is None else apodize_mask(keep, apodize_deg)
    fsky = 1.0 if w is None else float(np.mean(w ** 2))
    if fsky <= 0:
        raise ValueError("the mask (with NaN/UNSEEN pixels removed) keeps no pixel")
    lmax = default_lmax(nside) if lmax is None else int(lmax)
    if lmax < 2 or lmax > 4 * nside:
        raise ValueError(f"`lmax` must be in [2, {4 * nside}] for Nside {nside}, got {lmax}")

    # float32 maps stay float32 (analysed in float32 by sht.map2alm): no float64 copy
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    if w is None:
        data = a.astype(dtype, copy=False)
    else:
        data = np.where(bad, dtype(0.0), a).astype(dtype, copy=False)
        data *= w.astype(dtype, copy=False)
    cls = np.atleast_2d(hp.alm2cl(sht.map2alm(data, lmax, pol=a.ndim == 2)))
    del data
    if a.ndim == 1:
        cls = cls[0]
    out = {"ell": np.arange(lmax + 1), "fsky": fsky, "n_bad": n_bad, "lmax": lmax}
    if a.ndim == 1:
        out["TT"] = cls / fsky
    else:
        for name, c in zip(("TT", "EE", "BB", "TE", "EB", "TB"), cls):
            out[name] = c / fsky
    return out


def bin_cl(cl, ell_edges, *, lmin: int = 2):
    """Average ``cl[ell]`` (ell = 0..len-1) in bins ``edges[b] <= ell < edges[b+1]`` (ell >= lmin).

    Returns ``(ell_eff, cl_binned)``; bins with no multipole are dropped.
    """
    c = np.asarray(cl, dtype=np.float64)
    edges = np.asarray(ell_edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"`ell_edges` must be 1-D and increasing, got {edges!r}")
    ell = np.arange(c.shape[-1])
    idx = np.digitize(ell, edges) - 1
    sel = (idx >= 0) & (idx < edges.size - 1) & (ell >= lmin)
    nb = edges.size - 1
    counts = np.bincount(idx[sel], minlength=nb)
    ok = counts > 0
    ell_eff = np.bincount(idx[sel], weights=ell[sel], minlength=nb)[ok] / counts[ok]
    sums = np.stack([np.bincount(idx[sel], weights=row[sel], minlength=nb)
                     for row in c.reshape(-1, c.shape[-1])])
    binned = (sums[:, ok] / counts[ok]).reshape(c.shape[:-1] + (int(ok.sum()),))
    return ell_eff, binned


def correlation_coefficient(cl_xy, cl_xx, cl_yy):
    """``C^XY / sqrt(C^XX C^YY)`` (NaN where either auto-spectrum is <= 0)."""
    xy = np.asarray(cl_xy, dtype=np.float64)
    den = np.asarray(cl_xx, dtype=np.float64) * np.asarray(cl_yy, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, xy / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
