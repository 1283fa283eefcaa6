"""Validation of a map with small scales against a reference and a Gaussian baseline.

``validate(map, reference=None, baseline=None, mask=None, out_dir=None, ...)`` cuts the same
validation patches (default: 32 high-latitude 20x20 deg patches, ``default_patches()``) from the
map, the reference and the baseline, and measures:

* Minkowski functionals V0, V1, V2 of the min-max rescaled small-scale patches (32 thresholds)
  and the overlap fraction of their mean +- 1 sigma bands: map vs reference, baseline vs
  reference. Small scales are ``hr / lr`` for T (ForSE's m_ss) and ``hr - lr`` for Q and U
  (a ratio is undefined where the low-resolution Q/U cross zero); ``lr`` is each map smoothed
  with a ``fwhm_lr_arcmin`` beam, as in ``forse.training_set`` (or the given ``lowres`` map).
* flat-sky binned spectra of each patch (``forse.spectra.flat_power_spectrum``) and their ratio
  to the reference;
* masked full-sky pseudo-C_ell TT, EE, BB, TE (``forse.spectra.masked_cl``), of the maps and of
  their small scales (``C_ell (1 - b(ell))^2``, the spectrum of ``m - smooth(m)``), EE/BB and
  the TE correlation coefficient in multipole bins;
* one-point statistics (skewness, excess kurtosis, PDF) of the small-scale patches;
* a seam check: the small-scale power of the map relative to the reference (or its own power)
  in the overlap zones of a tiling vs the single-coverage zones, and a map of it.

NaN and ``hp.UNSEEN`` pixels are excluded everywhere: patches touching them are dropped and the
full-sky spectra give them zero weight; both are counted in the summary.
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import sht, spectra
from ._pixels import parents
from ._atomic import write_json
from ._checks import nside_of, positive

ARCMIN = np.pi / (180.0 * 60.0)
FIELDS = ("T", "Q", "U")

__all__ = ["validate", "default_patches", "small_scale_patches", "minkowski_bands",
           "one_point", "seam_check", "gaussian_functionals"]


def default_patches():
    """32 fixed validation centres: lat +-40, +-60 deg, lon every 45 deg (|b| >= 30 deg for a
    20 deg patch)."""
    lat = np.repeat([-60.0, -40.0, 40.0, 60.0], 8)
    lon = np.tile(np.arange(8) * 45.0 + 22.5, 4)
    return lon, lat


# ----------------------------------------------------------------------------- inputs
def _load(x, name, fields=None):
    """Array or FITS path -> float64 (k, npix) with NaN for UNSEEN, and k."""
    import healpy as hp

    if isinstance(x, (str, os.PathLike)):
        try:
            from .io import read_map
            a, _ = read_map(os.fspath(x))
        except ImportError:  # pragma: no cover - before forse.io lands
            a = hp.read_map(os.fspath(x), field=None, dtype=np.float64)
    else:
        a = x
    a = np.asarray(a, dtype=np.float64)  # no copy of a float64 map: TQU at 2048 is 1.2 GB
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 3):
        raise ValueError(f"`{name}` must be a map (npix,) or TQU maps (3, npix), got shape {a.shape}")
    nside_of(a.shape[1], name)
    unseen = a == hp.UNSEEN
    if unseen.any():  # copy before marking, never change the caller's array
        a = np.where(unseen, np.nan, a)
    return a


def _mask(mask, nside):
    import healpy as hp

    if mask is None:
        return None
    if isinstance(mask, (str, os.PathLike)):
        m = hp.read_map(os.fspath(mask), dtype=np.float64)
    else:
        m = np.asarray(mask)
    if m.ndim != 1:
        raise ValueError(f"`mask` must be one HEALPix map, got shape {m.shape}")
    mside = nside_of(m.size, "mask")
    if mside != nside:
        raise ValueError(f"`mask` has Nside {mside} but `map` has Nside {nside}; they must match")
    mf = m.astype(np.float64)
    return np.isfinite(mf) & (mf > 0.5) & (mf != hp.UNSEEN)


def _smooth(a, fwhm_arcmin, pol):
    """Smooth (k, npix) maps; NaN pixels count as 0 (patches touching them are dropped)."""
    from .smoothing import smooth

    return np.asarray(smooth(np.nan_to_num(a, nan=0.0), fwhm_arcmin, pol=pol)).reshape(a.shape)


def _lowres(a, fwhm_arcmin, pol, lmax, full_sky, direct, key):
    """``a`` smoothed with a ``fwhm_arcmin`` beam. On a clean full sky one ``map2alm`` to the
    spectra's ``lmax`` gives both the smoothed map and the full-sky C_ell (stored in
    ``direct[key]``), saving a transform per map; otherwise ``forse.smoothing.smooth``."""
    import healpy as hp

    from .smoothing import beam_lmax

    nside = nside_of(a.shape[1], "map")
    l_lr = beam_lmax(fwhm_arcmin, nside)
    # iter=0 quadrature is what forse.smoothing uses (and is accurate) when l_lr <= nside / 2
    if not (full_sky and l_lr <= nside // 2 and l_lr <= lmax <= 3 * nside - 1
            and np.all(np.isfinite(a))):
        return _smooth(a, fwhm_arcmin, pol)
    alm = sht.map2alm(a if pol else a[0], lmax, iter=0, pol=pol)
    direct[key] = np.atleast_2d(hp.alm2cl(alm))
    low = hp.resize_alm(alm, lmax, lmax, l_lr, l_lr)
    low = hp.smoothalm(low, fwhm=fwhm_arcmin * ARCMIN, pol=pol, inplace=False)
    return sht.alm2map(low, nside, l_lr, pol=pol).reshape(a.shape)


# ----------------------------------------------------------------------------- statistics
def small_scale_patches(hr, lr, fields):
    """``hr / lr`` for T, ``hr - lr`` for Q/U; ``hr``, ``lr`` are ``(N, k, n, n)``."""
    out = np.empty_like(hr)
    for i, f in enumerate(fields):
        if f == "T":
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, i] = hr[:, i] / lr[:, i]
        else:
            out[:, i] = hr[:, i] - lr[:, i]
    return out


def _minmax(p):
    lo = p.min(axis=(-2, -1), keepdims=True)
    hi = p.max(axis=(-2, -1), keepdims=True)
    return (p - lo) / np.where(hi > lo, hi - lo, 1.0)


def minkowski_bands(images, n_thresholds=32):
    """Minkowski functionals of min-max rescaled ``images`` (N, n, n) at ``n_thresholds``
    thresholds in [0, 1] (ends excluded). Returns ``(thresholds, v0, v1, v2)``, each v ``(N, T)``."""
    from .minkowski import functionals

    thr = np.linspace(0.0, 1.0, int(n_thresholds) + 2)[1:-1]
    v0, v1, v2 = functionals(_minmax(np.asarray(images, dtype=np.float64)), thr, normalize=True)
    return thr, np.asarray(v0), np.asarray(v1), np.asarray(v2)


def gaussian_functionals(nu, sigma0, sigma1):
    """Expected Minkowski functionals per unit area of a 2-D Gaussian field at thresholds ``nu``
    (in units of sigma0), with ``sigma1^2 = <|grad f|^2>``: area fraction, boundary length,
    Euler characteristic (Tomita 1986; lengths in the field's pixel units)."""
    from scipy.special import erfc

    nu = np.asarray(nu, dtype=np.float64)
    tau = sigma1 / (np.sqrt(2.0) * sigma0)
    v0 = 0.5 * erfc(nu / np.sqrt(2.0))
    v1 = 0.5 * tau * np.exp(-nu ** 2 / 2.0)  # perimeter per area: (tau/2) e^{-nu^2/2}
    v2 = tau ** 2 / (2.0 * np.pi) ** 1.5 * nu * np.exp(-nu ** 2 / 2.0)
    return v0, v1, v2


def one_point(x, bins=None):
    """Skewness, excess kurtosis, and a density histogram of the finite values of ``x``."""
    from scipy import stats

    v = np.asarray(x, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if bins is None:
        lo, hi = np.percentile(v, [0.1, 99.9])
        bins = np.linspace(lo, hi, 61)
    pdf, edges = np.histogram(v, bins=bins, density=True)
    return {"mean": float(v.mean()), "std": float(v.std()), "skewness": float(stats.skew(v)),
            "kurtosis": float(stats.kurtosis(v)), "pdf": pdf.tolist(), "pdf_edges": edges.tolist()}


def _coverage(nside, lon, lat, size_deg):
    """Number of square gnomonic patches (side ``size_deg``) covering each pixel."""
    import healpy as hp

    count = np.zeros(12 * nside * nside, dtype=np.int32)
    half = np.tan(np.radians(size_deg / 2.0))
    for lo_, la_ in zip(lon, lat):
        c = hp.ang2vec(lo_, la_, lonlat=True)
        pix = hp.query_disc(nside, c, np.radians(size_deg) * 0.75)
        v = np.asarray(hp.pix2vec(nside, pix)).T
        east = np.cross([0.0, 0.0, 1.0], c)
        east = east / np.linalg.norm(east) if np.linalg.norm(east) > 1e-12 else np.array([0.0, 1.0, 0.0])
        north = np.cross(c, east)
        cosd = v @ c
        ok = cosd > 0
        x = (v @ east) / np.where(ok, cosd, 1.0)
        y = (v @ north) / np.where(ok, cosd, 1.0)
        inside = ok & (np.abs(x) <= half) & (np.abs(y) <= half)
        count[pix[inside]] += 1
    return count


def seam_check(ss_power, ref_power=None, *, size_deg=20.0, overlap_deg=5.0, nside_out=128,
               keep=None):
    """Small-scale power in the overlap zones of ``forse.tiling.regular(size_deg, overlap_deg)``
    vs the single-coverage zones.

    ``ss_power`` (and ``ref_power``) are full-resolution maps of the squared small scales (NaN
    excluded); they are averaged to ``nside_out``. With a reference the statistic is on the
    ratio map/reference (sky variations cancel). ``overlap_over_centre`` is the median of that
    ratio over the overlap pixels divided by its median over the single-coverage pixels: every
    sky area counts alike (a ratio of summed powers, also returned as
    ``overlap_over_centre_power_weighted``, is dominated by the brightest pixels of the Galactic
    plane and hid a 40 % seam deficit at high latitude). Returns ``(summary dict, ratio map,
    count map)``.
    """
    import healpy as hp

    from .tiling import regular

    nside_in = nside_of(np.shape(ss_power)[-1], "ss_power")
    nside_out = min(int(nside_out), nside_in)
    # parent low-resolution pixel of every pixel (RING): one index, then bincount averages
    shift = 2 * (int(np.log2(nside_in)) - int(np.log2(nside_out)))
    parent = parents(nside_in, nside_out)
    n_out = 12 * nside_out ** 2

    def down(p):
        fin = np.isfinite(p)
        cnt = np.bincount(parent[fin], minlength=n_out)
        tot = np.bincount(parent[fin], weights=p[fin], minlength=n_out)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), hp.UNSEEN)

    pw = down(ss_power)
    good = pw != hp.UNSEEN
    rp = down(ref_power) if ref_power is not None else np.ones_like(pw)
    good &= (rp != hp.UNSEEN) & (rp > 0)
    if keep is not None:
        good &= np.bincount(parent, weights=keep, minlength=n_out) / (1 << shift) > 0.99
    ratio = np.where(good, pw / np.where(good, rp, 1.0), np.nan)
    lon, lat = regular(size_deg, overlap_deg)
    count = _coverage(nside_out, lon, lat, size_deg)
    over = good & (count >= 2)
    single = good & (count == 1)
    if not over.any() or not single.any():
        raise ValueError("seam check: the mask leaves no overlap zone or no single-coverage zone")
    # ratios of summed power per zone: robust where the reference power is small
    res = {"overlap_power": float(pw[over].mean()), "centre_power": float(pw[single].mean()),
           "n_overlap_pixels": int(over.sum()), "n_centre_pixels": int(single.sum()),
           "relative_to_reference": ref_power is not None, "nside": int(nside_out),
           "size_deg": float(size_deg), "overlap_deg": float(overlap_deg)}
    res["overlap_over_centre"] = float(np.median(ratio[over]) / np.median(ratio[single]))
    res["overlap_over_centre_power_weighted"] = float((pw[over].sum() / rp[over].sum())
                                                      / (pw[single].sum() / rp[single].sum()))
    return res, ratio, count


def _bin_edges(lmax):
    e = np.unique(np.round(np.geomspace(2, lmax + 1, 25)).astype(int))
    return e[np.concatenate([[True], np.diff(e) >= 2])] if e.size > 2 else e


def _binned(cl, edges):
    names = [k for k in ("TT", "EE", "BB", "TE") if k in cl]
    out = {}
    for k in names:
        ell, out[k] = spectra.bin_cl(cl[k], edges)
    out["ell"] = ell
    if "EE" in out:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["EE_over_BB"] = out["EE"] / out["BB"]
        out["rTE"] = spectra.correlation_coefficient(out["TE"], out["TT"], out["EE"])
    return out


def _tolist(d):
    if isinstance(d, dict):
        return {k: _tolist(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_tolist(v) for v in d]
    if isinstance(d, np.ndarray):
        return _tolist(d.tolist())
    if isinstance(d, (np.floating, float)):
        return None if not np.isfinite(d) else float(d)
    if isinstance(d, np.integer):
        return int(d)
    return d


def _write_json(path, obj):
    write_json(path, _tolist(obj), indent=1, allow_nan=False)


# ----------------------------------------------------------------------------- driver
def validate(map, reference=None, baseline=None, mask=None, out_dir=None, *, lowres=None,
             stokes=None, fwhm_lr_arcmin=80.0, fwhm_hr_arcmin=12.0, patches=None, npix=320,
             pixel_arcmin=3.75, n_thresholds=32, lmax=None, apodize_deg=2.0,
             seam_tiling=(20.0, 5.0), seed=0, figures=True, progress=True, backend="auto"):
    """Validate ``map`` (array ``(npix,)``/``(3, npix)`` or FITS path) and return the summary.

    Parameters
    ----------
    reference : the true map at the same resolution (optional).
    baseline : ``"gaussian"`` (``forse.smoothing.gaussian_small_scales`` on the map's
        low-resolution version, seeded by ``seed``), a map/path, or None.
    mask : bool map (True = use) or path; restricts the validation patches (a patch is used when
        all its pixels are inside) and the full-sky spectra (apodized by ``apodize_deg``).
    out_dir : when given, ``summary.json`` and (``figures=True``) ``report.html`` are written there.
    lowres : the low-resolution map the small scales were generated from (default: each map
        smoothed to ``fwhm_lr_arcmin`` from ``fwhm_hr_arcmin``).
    stokes : ``"T"`` or ``"TQU"`` (default: TQU when the map has 3 fields).
    patches : ``(lon_deg, lat_deg)`` of the validation patches (default ``default_patches()``).
    seam_tiling : ``(size_deg, overlap_deg)`` of the tiling the map was made with, or None.
    """
    from tqdm.auto import tqdm

    from .projection import healpix_to_patches

    t0 = time.perf_counter()
    timings = {}
    steps = tqdm(total=7, desc="validate", disable=not progress)

    def step(name, t):
        timings[name] = round(time.perf_counter() - t, 3)
        steps.set_postfix_str(name)
        steps.update(1)
        return time.perf_counter()

    t = time.perf_counter()
    m = _load(map, "map")
    nside = nside_of(m.shape[1], "map")
    stokes = ("TQU" if m.shape[0] == 3 else "T") if stokes is None else str(stokes).upper()
    if stokes not in ("T", "TQU"):
        raise ValueError(f"`stokes` must be 'T' or 'TQU', got {stokes!r}")
    if stokes == "TQU" and m.shape[0] != 3:
        raise ValueError(f"stokes='TQU' needs `map` with 3 fields (T, Q, U), got {m.shape[0]}")
    nf = 1 if stokes == "T" else 3
    fields = FIELDS[:nf]
    maps = {"map": m[:nf]}
    for name, x in (("reference", reference), ("lowres", lowres)):
        if x is None:
            continue
        a = _load(x, name)
        s = nside_of(a.shape[1], name)
        if s != nside:
            raise ValueError(f"`{name}` has Nside {s} but `map` has Nside {nside}; they must match")
        if a.shape[0] < nf:
            raise ValueError(f"`{name}` has no polarization (1 field) but Q/U were asked "
                             f"(stokes='TQU'); give a TQU {name} or stokes='T'")
        maps[name] = a[:nf]
    keep = _mask(mask, nside)
    fwhm_lr = positive(fwhm_lr_arcmin, "fwhm_lr_arcmin")
    fwhm_hr = positive(fwhm_hr_arcmin, "fwhm_hr_arcmin")
    if fwhm_lr <= fwhm_hr:
        raise ValueError(f"`fwhm_lr_arcmin` ({fwhm_lr}) must be larger than `fwhm_hr_arcmin` ({fwhm_hr})")
    kernel = fwhm_lr  # as forse.training_set: lr = smooth(hr, fwhm_lr)
    pol = nf == 3
    lmax_ = spectra.default_lmax(nside) if lmax is None else int(lmax)
    import healpy as hp

    direct = {}  # full-sky C_ell from the same map2alm that gives the low-resolution map

    def lowres_of(k):
        if "lowres" in maps:
            return maps["lowres"]
        return _lowres(maps[k], kernel, pol, lmax_, keep is None, direct, k)

    # low-resolution versions (the denominators of the small-scale ratio)
    lrs = {"map": lowres_of("map")}
    if isinstance(baseline, str) and baseline.lower() == "gaussian":
        from .smoothing import gaussian_small_scales

        lr_in = np.where(np.isnan(lrs["map"]), 0.0, lrs["map"])
        # the function's own lmax (where the hr beam falls to 1e-3): truncating at the spectra's
        # lmax is faster but removes pixel-scale power that the functionals V1, V2 see
        base = gaussian_small_scales(lr_in if pol else lr_in[0], fwhm_lr, fwhm_hr, seed)
        maps["baseline"] = np.asarray(base).reshape(nf, -1)
        baseline_kind = "gaussian"
    elif baseline is not None:
        a = _load(baseline, "baseline")
        s = nside_of(a.shape[1], "baseline")
        if s != nside:
            raise ValueError(f"`baseline` has Nside {s} but `map` has Nside {nside}; they must match")
        if a.shape[0] < nf:
            raise ValueError("`baseline` has no polarization (1 field) but Q/U were asked "
                             "(stokes='TQU'); give a TQU baseline or stokes='T'")
        maps["baseline"] = a[:nf]
        baseline_kind = "file" if isinstance(baseline, (str, os.PathLike)) else "array"
    else:
        baseline_kind = None
    names = [k for k in ("map", "reference", "baseline") if k in maps]
    for k in names[1:]:
        lrs[k] = lowres_of(k)
    bad = {k: int(np.count_nonzero(np.any(np.isnan(maps[k]), axis=0))) for k in names}
    t = step("load_smooth", t)

    # validation patches
    lon, lat = default_patches() if patches is None else (np.atleast_1d(np.asarray(patches[0], float)),
                                                         np.atleast_1d(np.asarray(patches[1], float)))
    n_req = lon.size
    use = np.ones(n_req, bool)
    if keep is not None:
        mp = healpix_to_patches(keep.astype(np.float64), lon, lat, npix, pixel_arcmin,
                                interpolation="nearest", backend=backend)
        use &= np.all(mp > 0.5, axis=(1, 2))
        if not use.any():
            raise ValueError(f"`mask` leaves no validation patch: none of the {n_req} patches "
                             f"({npix} x {pixel_arcmin}' around the given centres) lies fully "
                             "inside it; pass other `patches` or a larger mask")
    hr, ss = {}, {}
    for k in names:
        # Q/U in the patch frame, as in forse.training_set
        p_hr = healpix_to_patches(maps[k], lon, lat, npix, pixel_arcmin, pol=pol, backend=backend)
        p_lr = healpix_to_patches(lrs[k], lon, lat, npix, pixel_arcmin, pol=pol, backend=backend)
        hr[k] = p_hr.reshape(lon.size, nf, npix, npix)
        ss[k] = small_scale_patches(hr[k], p_lr.reshape(hr[k].shape), fields)
        use &= np.all(np.isfinite(ss[k]), axis=(1, 2, 3))
    if not use.any():
        raise ValueError(f"no validation patch is free of NaN/UNSEEN pixels (of {n_req})")
    for k in names:
        hr[k], ss[k] = hr[k][use], ss[k][use]
    patch_info = {"n_requested": int(n_req), "n_used": int(use.sum()),
                  "n_dropped_mask": int(n_req - (np.all(mp > 0.5, axis=(1, 2)).sum()
                                                 if keep is not None else n_req)),
                  "lon_deg": lon[use], "lat_deg": lat[use], "npix": int(npix),
                  "pixel_arcmin": float(pixel_arcmin)}
    patch_info["n_dropped_nan"] = int(n_req - patch_info["n_dropped_mask"] - use.sum())
    t = step("patches", t)

    # Minkowski functionals and overlaps
    mink = {}
    for k in names:
        mink[k] = {}
        for i, f in enumerate(fields):
            thr, v0, v1, v2 = minkowski_bands(ss[k][:, i], n_thresholds)
            mink[k][f] = {"v0": v0, "v1": v1, "v2": v2}
    from .minkowski import overlap_fraction

    overlap = {}
    if "reference" in maps:
        for k in [n for n in names if n != "reference"]:
            overlap[f"{k}_vs_reference"] = {
                f: {v: float(overlap_fraction(mink[k][f][v], mink["reference"][f][v]))
                    for v in ("v0", "v1", "v2")} for f in fields}
    elif "baseline" in maps:
        overlap["map_vs_baseline"] = {
            f: {v: float(overlap_fraction(mink["map"][f][v], mink["baseline"][f][v]))
                for v in ("v0", "v1", "v2")} for f in fields}
    t = step("minkowski", t)

    # flat-sky patch spectra
    flat = {}
    for k in names:
        flat[k] = {}
        for i, f in enumerate(fields):
            ell_f, cl = spectra.flat_power_spectrum(hr[k][:, i], pixel_arcmin)
            _, cl_ss = spectra.flat_power_spectrum(ss[k][:, i], pixel_arcmin)
            flat[k][f] = {"cl": cl, "cl_ss": cl_ss}
    flat_ratio = {}
    if "reference" in maps:
        for k in [n for n in names if n != "reference"]:
            flat_ratio[k] = {f: (flat[k][f]["cl"].mean(0) / flat["reference"][f]["cl"].mean(0))
                             for f in fields}
    t = step("patch_spectra", t)

    # full-sky / masked spectra
    if keep is None and not any(bad.values()):
        weights = None
    else:
        allbad = np.zeros(m.shape[1], bool)
        for k in names:
            allbad |= np.any(np.isnan(maps[k]), axis=0)
        base = (keep if keep is not None else np.ones(m.shape[1], bool)) & ~allbad
        weights = spectra.apodize_mask(base, apodize_deg)
    bk = hp.gauss_beam(kernel * ARCMIN, lmax=lmax_, pol=True)
    hp_filter = {"TT": (1 - bk[:, 0]) ** 2}
    if pol:
        hp_filter.update({"EE": (1 - bk[:, 1]) ** 2, "BB": (1 - bk[:, 2]) ** 2,
                          "TE": (1 - bk[:, 0]) * (1 - bk[:, 1])})
    edges = _bin_edges(lmax_)
    full, full_b, full_ss_b = {}, {}, {}
    for k in names:
        if weights is None and k in direct:
            c = {"ell": np.arange(lmax_ + 1), "fsky": 1.0, "n_bad": 0, "lmax": lmax_}
            c.update(zip(("TT", "EE", "BB", "TE", "EB", "TB"), direct[k]))
        else:
            c = spectra.masked_cl(maps[k] if pol else maps[k][0], lmax=lmax_,
                                  weights=weights if weights is not None else np.ones(m.shape[1]))
        full[k] = c
        full_b[k] = _binned(c, edges)
        full_ss_b[k] = _binned({s: c[s] * hp_filter[s] for s in hp_filter}, edges)
    full_ratio = {}
    if "reference" in maps:
        for k in [n for n in names if n != "reference"]:
            full_ratio[k] = {s: full_b[k][s] / full_b["reference"][s]
                             for s in ("TT", "EE", "BB") if s in full_b[k]}
    t = step("full_sky_spectra", t)

    # one-point statistics of the small scales (common bins per field)
    onep = {}
    for i, f in enumerate(fields):
        ref = ss["reference" if "reference" in maps else "map"][:, i]
        lo, hi = np.nanpercentile(ref, [0.1, 99.9])
        bins = np.linspace(lo, hi, 61)
        onep[f] = {k: one_point(ss[k][:, i], bins) for k in names}
    t = step("one_point", t)

    # seam check on the T small scales (m - smooth(m))^2
    seam, seam_maps = None, None
    if seam_tiling is not None:
        def sspow(k):
            d = maps[k][0] - lrs[k][0]
            return d * d
        ref_pow = sspow("reference") if "reference" in maps else None
        seam = {}
        seam_maps = {}
        for k in [n for n in names if n != "reference"]:
            seam[k], seam_maps[k], count = seam_check(sspow(k), ref_pow, size_deg=seam_tiling[0],
                                                      overlap_deg=seam_tiling[1], keep=keep)
        seam_maps["coverage"] = count
    t = step("seams", t)
    steps.close()

    summary = {
        "nside": nside, "stokes": stokes, "fields": list(fields), "inputs": names,
        "baseline": baseline_kind, "fwhm_lr_arcmin": fwhm_lr, "fwhm_hr_arcmin": fwhm_hr,
        "mask_fsky": None if keep is None else float(keep.mean()),
        "bad_pixels": bad, "patches": patch_info,
        "minkowski": {"thresholds": thr, "overlap": overlap,
                      "curves": {k: {f: {v: {"mean": mink[k][f][v].mean(0), "std": mink[k][f][v].std(0)}
                                         for v in ("v0", "v1", "v2")} for f in fields} for k in names}},
        "patch_spectra": {"ell": ell_f,
                          "mean": {k: {f: flat[k][f]["cl"].mean(0) for f in fields} for k in names},
                          "mean_small_scales": {k: {f: flat[k][f]["cl_ss"].mean(0) for f in fields}
                                                for k in names},
                          "ratio_to_reference": flat_ratio},
        "full_sky": {"lmax": lmax_, "fsky": full[names[0]]["fsky"], "binned": full_b,
                     "binned_small_scales": full_ss_b, "ratio_to_reference": full_ratio},
        "one_point": onep,
        "seams": seam,
        "timings_s": timings,
    }
    summary["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
    summary = _tolist(summary)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        if figures:
            from .report import write_report

            write_report(os.path.join(out_dir, "report.html"), summary,
                         maps={k: maps[k] for k in names}, lrs=lrs, seam_maps=seam_maps, full=full,
                         backend=backend)
            summary["timings_s"]["report"] = round(time.perf_counter() - t, 3)
            summary["timings_s"]["total"] = round(time.perf_counter() - t0, 3)
        _write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
