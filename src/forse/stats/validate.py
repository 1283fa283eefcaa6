"""Validation of a map with small scales against a reference and a Gaussian baseline.

``validate(map, reference=None, baseline=None, mask=None, out_dir=None, ...)`` cuts the same
validation patches (default: 32 high-latitude 20x20 deg patches, ``default_patches()``) from the
map, the reference and the baseline, and measures:

* Minkowski functionals V0, V1, V2 of the small-scale patches with forse's one metric
  (``forse.minkowski.curves``): per patch standardized, ``nu = (x - mean) / std``, at 32
  thresholds in [-3, 3] (the headline), and ForSE's min-max variant beside it; the overlap
  fraction of their mean +- 1 sigma bands: map vs reference, baseline vs reference, and the
  ceiling (the reference's first half of the patches vs its second half). Small scales are
  ``hr / lr`` for T (ForSE's m_ss) and ``hr - lr`` for Q and U (a ratio is undefined where the
  low-resolution Q/U cross zero); ``lr`` is each map smoothed with a ``fwhm_lr_arcmin`` beam, as
  in ``forse.training_set`` (or the given ``lowres`` map).
* flat-sky binned spectra of each patch (``forse.spectra.flat_power_spectrum``) and their ratio
  to the reference;
* masked full-sky pseudo-C_ell TT, EE, BB, TE (``forse.spectra.masked_cl``), of the maps and of
  their small scales (``C_ell (1 - b(ell))^2``, the spectrum of ``m - smooth(m)``), EE/BB and
  the TE correlation coefficient in multipole bins;
* one-point statistics (skewness, excess kurtosis, PDF) of the small-scale patches;
* a seam check: the small-scale power of the map relative to the reference (or its own power)
  in the overlap zones of a tiling vs the single-coverage zones, and a map of it;
* a headline (``summary["headline"]``, the table that opens ``report.html``): each statistic of
  the map and of the baseline against the reference, marked better or worse than the baseline.

Held out: the bundled generators were trained on the synthetic sky of the seeds their cards list
(``training_sky_seeds()``); ``reference_seed`` says which synthetic sky the reference is, and a
reference seed the models were trained on gives a ``UserWarning`` and ``held_out: False``.

NaN and ``hp.UNSEEN`` pixels are excluded everywhere: patches touching them are dropped and the
full-sky spectra give them zero weight; both are counted in the summary.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

from .. import _checks
from .._atomic import jsonable, write_json
from .._cards import BUNDLED as BUNDLED_MODELS
from .._checks import ARCMIN, nside_of, positive
from .._log import Timings
from .._pixels import parents
from ..sphere import sht
from . import spectra

FIELDS = ("T", "Q", "U")

HEADLINE_ELL = ((30, 100), (100, 300), (300, 1000), (1000, 2000))
HEADLINE_BINS = 5          # log bins per multipole range of the headline's spectrum ratios
RTE_ELL, RTE_BINS = (100, 1000), 10
EE_BB_ELL = (300, 1000)

__all__ = ["validate", "default_patches", "held_out_patches", "training_sky_seeds",
           "small_scale_patches", "one_point", "seam_check", "gaussian_functionals"]


def default_patches():
    """32 fixed validation centres: lat +-40, +-60 deg, lon every 45 deg (|b| >= 30 deg for a
    20 deg patch).

    They are fixed places, not a test region of the training sets: the bundled models saw
    training patches all over the high-latitude sky of their training seed, so these patches are
    held out only on a sky of another seed (``training_sky_seeds()``; ``forse demo`` uses one).
    The first 16 are southern (b = -60, -40), the last 16 northern: the ceiling's two halves."""
    lat = np.repeat([-60.0, -40.0, 40.0, 60.0], 8)
    lon = np.tile(np.arange(8) * 45.0 + 22.5, 4)
    return lon, lat


# ----------------------------------------------------------------------------- model cards
def _card(model):
    """The JSON card of a bundled model name or a ``.keras``/``.json`` path (no TensorFlow)."""
    from importlib import resources
    from pathlib import Path

    s = os.fspath(model)
    if s in BUNDLED_MODELS:
        path = resources.files("forse").joinpath("gan", "models", f"{s}.json")
    else:
        path = Path(s[:-len(".keras")] + ".json" if s.endswith(".keras") else s)
        if path.suffix != ".json":
            path = path.with_name(path.name + ".json")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no model card for {s!r} (looked for {path}); give a bundled "
                                f"name {BUNDLED_MODELS} or the path of a .keras/.json") from None


def _models(model):
    if model is None:
        return list(BUNDLED_MODELS)
    if isinstance(model, (str, os.PathLike)):
        return [model]
    return list(model)


def training_sky_seeds(model=None):
    """Sorted synthetic-sky seeds the generators were trained on: the union over ``model`` (a
    bundled name, a path, or a list of them; default the bundled dust-T, dust-Q, dust-U) of
    each card's ``training.sky_seeds``. A card without that key (written before it existed)
    counts its ``training.data_seed``: ``forse training-set`` seeds the synthetic sky with it."""
    seeds = set()
    for m in _models(model):
        t = _card(m).get("training", {})
        got = t.get("sky_seeds")
        if got is None and t.get("data_seed") is not None:
            got = [t["data_seed"]]
        seeds.update(int(x) for x in (got or []))
    return sorted(seeds)


def held_out_patches(model="dust-T"):
    """``(lon_deg, lat_deg)`` of the test-split patch centres recorded in a model card
    (``training.test_patches``, written by ``forse train`` from the training set's ``test.h5``):
    sky regions no training patch of that model touched. The bundled cards do not record them
    (their training sets are not kept); raises ``ValueError`` then."""
    tp = _card(model).get("training", {}).get("test_patches")
    if not tp or not tp.get("lon_deg"):
        raise ValueError(f"the card of {os.fspath(model)!r} records no test-region centres "
                         "(training.test_patches; cards written by `forse train` before this "
                         "version and the bundled cards have none). Use the default patches on a "
                         "synthetic sky of a seed not in training_sky_seeds() instead: that sky "
                         "is held out by its seed")
    return np.asarray(tp["lon_deg"], float), np.asarray(tp["lat_deg"], float)


def _patch_centres(patches):
    if patches is None:
        return default_patches()
    if isinstance(patches, str):
        kind, _, model = patches.partition(":")
        if kind != "test":
            raise ValueError(f"`patches` must be (lon, lat), None, 'test' or 'test:MODEL', got "
                             f"{patches!r}")
        return held_out_patches(model or "dust-T")
    return (np.atleast_1d(np.asarray(patches[0], float)), np.atleast_1d(np.asarray(patches[1], float)))


# ----------------------------------------------------------------------------- inputs
def _load(x, name, fields=None):
    """Array or FITS path -> float32 or float64 (k, npix) with NaN for UNSEEN."""

    if isinstance(x, (str, os.PathLike)):
        from ..data.io import read_map
        a, _ = read_map(os.fspath(x))
    else:
        a = x
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    # no copy of a float32 or float64 map (TQU at 2048 is 0.6 or 1.2 GB); the statistics are
    # accumulated in float64 where they sum
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 3):
        raise ValueError(f"`{name}` must be a map (npix,) or TQU maps (3, npix), got shape {a.shape}")
    nside_of(a.shape[1], name)
    if not _checks.clean(a):
        unseen = _checks.unseen(a)
        if unseen.any():  # copy before marking, never change the caller's array
            a = np.where(unseen, np.nan, a)
    return a


def _not_constant(a, name):
    """A map with one value (all zero, say) has no small scales: say so, instead of failing
    later on patches whose small-scale ratio is NaN."""
    for k, row in enumerate(a):
        ok = row if _checks.clean(row) else row[np.isfinite(row)]
        if ok.size == 0:
            raise ValueError(f"`{name}` field {k} has no valid pixel (all NaN or UNSEEN)")
        if ok.min() == ok.max():
            raise ValueError(f"`{name}` field {k} is constant ({ok[0]:g} at every valid pixel): "
                             "it has no small scales to validate")


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
    return np.isfinite(mf) & (mf > 0.5) & ~_checks.unseen(mf)


def _smooth(a, fwhm_arcmin, pol):
    """Smooth (k, npix) maps; NaN pixels count as 0 (patches touching them are dropped)."""
    from ..sphere.smoothing import smooth

    return np.asarray(smooth(np.nan_to_num(a, nan=0.0), fwhm_arcmin, pol=pol)).reshape(a.shape)


def _lowres(a, fwhm_arcmin, pol, lmax, full_sky, direct, key):
    """``a`` smoothed with a ``fwhm_arcmin`` beam. On a clean full sky one ``map2alm`` to the
    spectra's ``lmax`` gives both the smoothed map and the full-sky C_ell (stored in
    ``direct[key]``), saving a transform per map; otherwise ``forse.smoothing.smooth``."""
    import healpy as hp

    from ..sphere.smoothing import beam_lmax

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
    v = np.asarray(x, dtype=np.float64).ravel()
    if not _checks.clean(v):
        v = v[np.isfinite(v)]
    if bins is None:
        lo, hi = np.percentile(v, [0.1, 99.9])
        bins = np.linspace(lo, hi, 61)
    b = np.asarray(bins, dtype=np.float64)
    if b.ndim == 1 and b.size > 1 and np.allclose(np.diff(b), (b[-1] - b[0]) / (b.size - 1)):
        # numpy's fast path for equal bins (the same counts; edges as np.linspace)
        pdf, edges = np.histogram(v, bins=b.size - 1, range=(b[0], b[-1]), density=True)
    else:
        pdf, edges = np.histogram(v, bins=bins, density=True)
    # central moments in one pass over d**2 (scipy.stats.skew and kurtosis, bias=True, each
    # make their own passes): skewness m3 / m2**1.5, excess kurtosis m4 / m2**2 - 3
    mean = v.mean()
    d = v - mean
    d2 = d * d
    m2 = d2.mean()
    m3 = np.dot(d2, d) / d.size
    m4 = np.dot(d2, d2) / d.size
    skew = m3 / m2 ** 1.5 if m2 > 0 else np.nan
    kurt = m4 / m2 ** 2 - 3.0 if m2 > 0 else np.nan
    return {"mean": float(mean), "std": float(np.sqrt(m2)), "skewness": float(skew),
            "kurtosis": float(kurt), "pdf": pdf.tolist(), "pdf_edges": edges.tolist()}


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
               keep=None, parent=None):
    """Small-scale power in the overlap zones of ``forse.tiling.regular(size_deg, overlap_deg)``
    vs the single-coverage zones.

    ``ss_power`` (and ``ref_power``) are full-resolution maps of the squared small scales (NaN
    excluded); they are averaged to ``nside_out``. With a reference the statistic is on the
    ratio map/reference (sky variations cancel). ``overlap_over_centre`` is the median of that
    ratio over the overlap pixels divided by its median over the single-coverage pixels: every
    sky area counts alike (a ratio of summed powers, also returned as
    ``overlap_over_centre_power_weighted``, is dominated by the brightest pixels of the Galactic
    plane and hid a 40 % seam deficit at high latitude). Returns ``(summary dict, ratio map,
    count map)``. ``parent`` (optional): ``forse._pixels.parents(nside_in, nside_out)``, to
    reuse between calls on one sky (~1 s at Nside 2048).
    """
    import healpy as hp

    from ..sphere.tiling import regular

    nside_in = nside_of(np.shape(ss_power)[-1], "ss_power")
    nside_out = min(int(nside_out), nside_in)
    # parent low-resolution pixel of every pixel (RING): one index, then bincount averages
    shift = 2 * (int(np.log2(nside_in)) - int(np.log2(nside_out)))
    parent = parents(nside_in, nside_out) if parent is None else parent
    n_out = 12 * nside_out ** 2

    def down(p):
        fin = np.isfinite(p)
        if fin.all():  # every parent has 4**(shift/2) children: no masked copies to sum
            return np.bincount(parent, weights=p, minlength=n_out) / float(1 << shift)
        cnt = np.bincount(parent[fin], minlength=n_out)
        tot = np.bincount(parent[fin], weights=p[fin], minlength=n_out)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), hp.UNSEEN)

    pw = down(ss_power)
    good = ~_checks.unseen(pw)
    rp = down(ref_power) if ref_power is not None else np.ones_like(pw)
    good &= ~_checks.unseen(rp) & (rp > 0)
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


def _write_json(path, obj):
    write_json(path, jsonable(obj), indent=1, allow_nan=False)


# ----------------------------------------------------------------------------- headline
def _log_bins(lo, hi, n):
    """Edges of ``n`` log-spaced multipole bins covering ``lo <= ell < hi`` (integers)."""
    e = np.unique(np.round(np.geomspace(lo, hi, n + 1)).astype(int))
    return e if e.size >= 2 else None


def _closer(x, y, truth=None):
    """``x`` strictly closer than ``y`` to ``truth`` (or smaller when ``truth`` is None)."""
    if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)):
        return None
    if truth is None:
        return bool(x < y)
    return bool(abs(x - truth) < abs(y - truth))


def _headline(summary, full, hp_filter):
    """The numbers of the report's headline table (``summary["headline"]``; docs/validate.md).

    Every statistic of the map ("forse") and of the baseline against the reference ("truth"),
    and for each row whether forse is strictly closer to the truth than the baseline
    (``better``). Rows that need the reference or the baseline are left out without them."""
    names = summary["inputs"]
    has_ref, has_base = "reference" in names, "baseline" in names
    lmax = int(summary["full_sky"]["lmax"])
    h, better = {}, {}
    if has_ref:
        _headline_minkowski(summary, has_base, h, better)
        _headline_spectra(full, lmax, has_base, h, better)
        _headline_rte(full, lmax, has_base, h, better)
    if "EE" in full["map"] and EE_BB_ELL[0] < lmax:
        _headline_ee_bb(full, hp_filter, lmax, has_ref and has_base, h, better)
    _headline_one_point(summary, has_ref and has_base, h, better)
    better = {k: v for k, v in better.items() if v is not None}
    h["better"] = better
    h["n_better"] = int(sum(better.values()))
    h["n_rows"] = int(len(better))
    return h


def _headline_minkowski(summary, has_base, h, better):
    mk = summary["minkowski"]
    for key, ov_key, ceil_key in (("minkowski_nu", "overlap", "ceiling"),
                                  ("minkowski_minmax", "overlap_minmax", "ceiling_minmax")):
        ov, ceil = mk[ov_key], mk[ceil_key]
        h[key] = {}
        for f in summary["fields"]:
            row = {"forse": dict(ov["map_vs_reference"][f])}
            if has_base:
                row["baseline"] = dict(ov["baseline_vs_reference"][f])
                for v in ("v0", "v1", "v2"):  # a larger overlap with the truth is better
                    better[f"{key}.{f}.{v}"] = bool(row["forse"][v] > row["baseline"][v])
            if ceil is not None:
                row["ceiling"] = dict(ceil[f])
            h[key][f] = row


def _headline_spectra(full, lmax, has_base, h, better):
    """Spectrum ratios to the reference, per multipole range: the worst bin's |ratio - 1|."""
    h["spectra"] = {}
    for S in ("TT", "EE", "BB"):
        if S not in full["reference"]:
            continue
        rows = []
        for lo, hi in HEADLINE_ELL:
            top = min(hi, lmax + 1)
            if top - lo < HEADLINE_BINS:
                continue
            edges = _log_bins(lo, top, HEADLINE_BINS)
            _, ref = spectra.bin_cl(full["reference"][S], edges)
            row = {"ell": [lo, min(hi, lmax)], "n_bins": int(ref.size)}
            dev = {}
            for k, label in (("map", "forse"), ("baseline", "baseline")):
                if k not in full:
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = spectra.bin_cl(full[k][S], edges)[1] / ref
                row[label] = [float(np.nanmin(r)), float(np.nanmax(r))]
                dev[label] = float(np.nanmax(np.abs(r - 1.0)))
            if has_base:
                better[f"spectra.{S}.{lo}-{hi}"] = _closer(dev["forse"], dev["baseline"])
            rows.append(row)
        h["spectra"][S] = rows


def _headline_rte(full, lmax, has_base, h, better):
    if "TE" not in full["reference"] or not RTE_ELL[0] < lmax:
        return
    edges = _log_bins(RTE_ELL[0], min(RTE_ELL[1], lmax + 1), RTE_BINS)

    def rte(k):
        b = {S: spectra.bin_cl(full[k][S], edges)[1] for S in ("TT", "EE", "TE")}
        return spectra.correlation_coefficient(b["TE"], b["TT"], b["EE"])

    r_ref = rte("reference")
    row = {"ell": [RTE_ELL[0], min(RTE_ELL[1], lmax)], "n_bins": int(r_ref.size)}
    for k, label in (("map", "forse"), ("baseline", "baseline")):
        if k in full:
            row[f"{label}_max_abs_diff"] = float(np.nanmax(np.abs(rte(k) - r_ref)))
    if has_base:
        better["rTE"] = _closer(row["forse_max_abs_diff"], row["baseline_max_abs_diff"])
    h["rTE"] = row


def _headline_ee_bb(full, hp_filter, lmax, both, h, better):
    """EE/BB of the small scales."""
    lo, hi = EE_BB_ELL[0], min(EE_BB_ELL[1], lmax)
    row = {"ell": [lo, hi]}
    for k, label in (("map", "forse"), ("baseline", "baseline"), ("reference", "truth")):
        if k in full:
            ee = np.mean(full[k]["EE"][lo:hi + 1] * hp_filter["EE"][lo:hi + 1])
            bb = np.mean(full[k]["BB"][lo:hi + 1] * hp_filter["BB"][lo:hi + 1])
            row[label] = float(ee / bb) if bb > 0 else None
    if both:
        better["EE_over_BB"] = _closer(row["forse"], row["baseline"], row["truth"])
    h["EE_over_BB"] = row


def _headline_one_point(summary, both, h, better):
    h["one_point"] = {}
    for f in summary["fields"]:
        op = summary["one_point"][f]
        h["one_point"][f] = {}
        for stat in ("skewness", "kurtosis"):
            d = {label: float(op[k][stat]) for k, label in
                 (("map", "forse"), ("baseline", "baseline"), ("reference", "truth")) if k in op}
            h["one_point"][f][stat] = d
            if both:
                better[f"one_point.{f}.{stat}"] = _closer(d["forse"], d["baseline"], d["truth"])


# ----------------------------------------------------------------------------- driver
class Summary(dict):
    """What ``validate`` returns: the summary dict (as in ``summary.json``), shown in Jupyter as a
    compact HTML table (``report`` is the path of ``report.html`` when one was written)."""

    report = None

    def _repr_html_(self):
        from .report import summary_html

        return summary_html(self, self.report)


# ----------------------------------------------------------------------------- stages
def _held_out(reference_seed, training_seeds):
    """Whether the reference sky is held out from the models' training skies (a warning if not)."""
    train_seeds = (training_sky_seeds() if training_seeds is None
                   else sorted({int(x) for x in np.atleast_1d(training_seeds)}))
    held = None
    if reference_seed is not None:
        reference_seed = int(reference_seed)
        held = reference_seed not in train_seeds
        if not held:
            which = "the bundled models" if training_seeds is None else "the models"
            warnings.warn(f"reference sky seed {reference_seed} was used to train {which}; quality "
                          f"numbers on it are not held out (training sky seeds {train_seeds}: "
                          "validate on a synthetic sky of another seed)", UserWarning, stacklevel=3)
    return {"reference_seed": reference_seed, "training_sky_seeds": train_seeds,
            "held_out": held}


class _Inputs:
    """The validated maps: ``maps`` and their low-resolution versions ``lrs`` by name ("map",
    "reference", "baseline"), ``names`` (those present, "map" first), and the settings."""


def _inputs(map, reference, baseline, mask, lowres, stokes, fwhm_lr_arcmin, fwhm_hr_arcmin,
            npix, pixel_arcmin, lmax, seed):
    """Stage 1: load and check every map, smooth each to the low resolution, draw the
    Gaussian baseline if asked."""
    inp = _Inputs()
    m = _load(map, "map")
    nside = nside_of(m.shape[1], "map")
    _checks.seed(seed)
    _checks.integer(npix, "npix", 8, 8192)
    _checks.positive(pixel_arcmin, "pixel_arcmin", hi=600.0)
    if lmax is not None:  # checked here, not after the smoothing and the patches
        _checks.integer(lmax, "lmax", 2, 4 * nside)
    stokes = ("TQU" if m.shape[0] == 3 else "T") if stokes is None else str(stokes).upper()
    if stokes not in ("T", "TQU"):
        raise ValueError(f"`stokes` must be 'T' or 'TQU', got {stokes!r}")
    if stokes == "TQU" and m.shape[0] != 3:
        raise ValueError(f"stokes='TQU' needs `map` with 3 fields (T, Q, U), got {m.shape[0]}")
    nf = 1 if stokes == "T" else 3
    maps = {"map": m[:nf]}
    for name, x in (("reference", reference), ("lowres", lowres)):
        if x is not None:
            maps[name] = _other(x, name, nside, nf)
    for name, a in maps.items():
        _not_constant(a, name)
    keep = _mask(mask, nside)
    fwhm_lr = positive(fwhm_lr_arcmin, "fwhm_lr_arcmin")
    fwhm_hr = positive(fwhm_hr_arcmin, "fwhm_hr_arcmin")
    if fwhm_lr <= fwhm_hr:
        raise ValueError(f"`fwhm_lr_arcmin` ({fwhm_lr}) must be larger than `fwhm_hr_arcmin` ({fwhm_hr})")
    kernel = fwhm_lr  # as forse.training_set: lr = smooth(hr, fwhm_lr)
    pol = nf == 3
    lmax_ = spectra.default_lmax(nside) if lmax is None else int(lmax)
    direct = {}  # full-sky C_ell from the same map2alm that gives the low-resolution map

    def lowres_of(k):
        if "lowres" in maps:
            return maps["lowres"]
        return _lowres(maps[k], kernel, pol, lmax_, keep is None, direct, k)

    # low-resolution versions (the denominators of the small-scale ratio)
    lrs = {"map": lowres_of("map")}
    baseline_kind = None
    if isinstance(baseline, str) and baseline.lower() == "gaussian":
        from ..sphere.smoothing import gaussian_small_scales

        lr_in = np.where(np.isnan(lrs["map"]), 0.0, lrs["map"])
        # the function's own lmax (where the hr beam falls to 1e-3): truncating at the spectra's
        # lmax is faster but removes pixel-scale power that the functionals V1, V2 see
        base = gaussian_small_scales(lr_in if pol else lr_in[0], fwhm_lr, fwhm_hr, seed)
        maps["baseline"] = np.asarray(base).reshape(nf, -1)
        baseline_kind = "gaussian"
    elif baseline is not None:
        maps["baseline"] = _other(baseline, "baseline", nside, nf)
        baseline_kind = "file" if isinstance(baseline, (str, os.PathLike)) else "array"
    names = [k for k in ("map", "reference", "baseline") if k in maps]
    for k in names[1:]:
        lrs[k] = lowres_of(k)
    inp.bad = {k: 0 if _checks.clean(maps[k])
               else int(np.count_nonzero(np.any(np.isnan(maps[k]), axis=0))) for k in names}
    inp.m, inp.nside, inp.stokes, inp.fields, inp.pol = m, nside, stokes, FIELDS[:nf], pol
    inp.maps, inp.lrs, inp.names, inp.keep, inp.direct = maps, lrs, names, keep, direct
    inp.fwhm_lr, inp.fwhm_hr, inp.kernel, inp.lmax = fwhm_lr, fwhm_hr, kernel, lmax_
    inp.baseline_kind = baseline_kind
    return inp


def _other(x, name, nside, nf):
    """A second map (reference, low resolution, baseline) on the map's grid and fields."""
    a = _load(x, name)
    s = nside_of(a.shape[1], name)
    if s != nside:
        raise ValueError(f"`{name}` has Nside {s} but `map` has Nside {nside}; they must match")
    if a.shape[0] < nf:
        raise ValueError(f"`{name}` has no polarization (1 field) but Q/U were asked "
                         f"(stokes='TQU'); give a TQU {name} or stokes='T'")
    return a[:nf]


class _Patches:
    """``hr`` and small-scale ``ss`` patches by input name, on the patches in use; ``info``."""


def _patches(inp, patches, npix, pixel_arcmin, backend):
    """Stage 2: cut the validation patches (Q/U in the patch frame, as forse.training_set) and
    keep those inside the mask and free of NaN in every input."""
    from .._dispatch import on_host
    from ..sphere.projection import healpix_to_patches

    lon, lat = _patch_centres(patches)
    n_req = lon.size
    use = np.ones(n_req, bool)
    nf, pol, keep = len(inp.fields), inp.pol, inp.keep
    if keep is not None:
        mp = on_host(healpix_to_patches, keep.astype(np.float64), lon, lat, npix, pixel_arcmin,
                     interpolation="nearest", backend=backend)
        use &= np.all(mp > 0.5, axis=(1, 2))
        if not use.any():
            raise ValueError(f"`mask` leaves no validation patch: none of the {n_req} patches "
                             f"({npix} x {pixel_arcmin}' around the given centres) lies fully "
                             "inside it; pass other `patches` or a larger mask")
    hr, ss = {}, {}
    for k in inp.names:
        p_hr = on_host(healpix_to_patches, inp.maps[k], lon, lat, npix, pixel_arcmin, pol=pol,
                       backend=backend)
        p_lr = on_host(healpix_to_patches, inp.lrs[k], lon, lat, npix, pixel_arcmin, pol=pol,
                       backend=backend)
        hr[k] = p_hr.reshape(lon.size, nf, npix, npix)
        ss[k] = small_scale_patches(hr[k], p_lr.reshape(hr[k].shape), inp.fields)
        use &= np.all(np.isfinite(ss[k]), axis=(1, 2, 3))
    if not use.any():
        raise ValueError(f"no validation patch is free of NaN/UNSEEN pixels (of {n_req})")
    for k in inp.names:
        hr[k], ss[k] = hr[k][use], ss[k][use]
    info = {"n_requested": int(n_req), "n_used": int(use.sum()),
            "n_dropped_mask": int(n_req - (np.all(mp > 0.5, axis=(1, 2)).sum()
                                           if keep is not None else n_req)),
            "lon_deg": lon[use], "lat_deg": lat[use], "npix": int(npix),
            "pixel_arcmin": float(pixel_arcmin)}
    info["n_dropped_nan"] = int(n_req - info["n_dropped_mask"] - use.sum())
    pat = _Patches()
    pat.hr, pat.ss, pat.info, pat.n_used = hr, ss, info, int(use.sum())
    return pat


def _minkowski(inp, pat, variant, n_thresholds, backend):
    """Stage 3: Minkowski functionals of the small scales (``variant`` "nu": standardized
    thresholds; "minmax": ForSE's), overlaps with the reference (or map vs baseline) and the
    ceiling (the reference's patches split in halves)."""
    from .minkowski import band_overlaps, curves, halves

    vs = ("v0", "v1", "v2")
    names, fields = inp.names, inp.fields
    mink, thr = {}, None
    for k in names:
        mink[k] = {}
        for i, f in enumerate(fields):
            thr, v0, v1, v2 = curves(pat.ss[k][:, i], variant, n_thresholds, backend=backend)
            mink[k][f] = (v0, v1, v2)

    def ov(a, b):
        return {f: {v: x for v, x in band_overlaps(mink[a][f], mink[b][f]).items() if v in vs}
                for f in fields}

    overlap = {}
    if "reference" in inp.maps:
        for k in [n for n in names if n != "reference"]:
            overlap[f"{k}_vs_reference"] = ov(k, "reference")
    elif "baseline" in inp.maps:
        overlap["map_vs_baseline"] = ov("map", "baseline")
    ceil = None
    if "reference" in inp.maps and pat.n_used >= 2:
        ceil = {}
        for f in fields:
            a, b = halves(mink["reference"][f])
            ceil[f] = {v: x for v, x in band_overlaps(a, b).items() if v in vs}
    return {"thresholds": thr, "overlap": overlap, "ceiling": ceil,
            "curves": {k: {f: {v: {"mean": mink[k][f][j].mean(0), "std": mink[k][f][j].std(0)}
                               for j, v in enumerate(vs)} for f in fields} for k in names}}


def _patch_spectra(inp, pat, pixel_arcmin):
    """Stage 4: flat-sky spectra of the patches and of their small scales."""
    flat = {}
    for k in inp.names:
        flat[k] = {}
        for i, f in enumerate(inp.fields):
            ell_f, cl = spectra.flat_power_spectrum(pat.hr[k][:, i], pixel_arcmin)
            _, cl_ss = spectra.flat_power_spectrum(pat.ss[k][:, i], pixel_arcmin)
            flat[k][f] = {"cl": cl, "cl_ss": cl_ss}
    flat_ratio = {}
    if "reference" in inp.maps:
        for k in [n for n in inp.names if n != "reference"]:
            flat_ratio[k] = {f: (flat[k][f]["cl"].mean(0) / flat["reference"][f]["cl"].mean(0))
                             for f in inp.fields}
    return flat, flat_ratio, ell_f


def _full_sky(inp, apodize_deg):
    """Stage 5: masked full-sky pseudo-C_ell of every input, binned, and of their small scales
    (the spectra times the high-pass of the low-resolution beam)."""
    import healpy as hp

    names, maps, pol, lmax_ = inp.names, inp.maps, inp.pol, inp.lmax
    if inp.keep is None and not any(inp.bad.values()):
        weights = None
    else:
        allbad = np.zeros(inp.m.shape[1], bool)
        for k in names:
            allbad |= np.any(np.isnan(maps[k]), axis=0)
        base = (inp.keep if inp.keep is not None else np.ones(inp.m.shape[1], bool)) & ~allbad
        weights = spectra.apodize_mask(base, apodize_deg)
    bk = hp.gauss_beam(inp.kernel * ARCMIN, lmax=lmax_, pol=True)
    hp_filter = {"TT": (1 - bk[:, 0]) ** 2}
    if pol:
        hp_filter.update({"EE": (1 - bk[:, 1]) ** 2, "BB": (1 - bk[:, 2]) ** 2,
                          "TE": (1 - bk[:, 0]) * (1 - bk[:, 1])})
    edges = _bin_edges(lmax_)
    full, full_b, full_ss_b = {}, {}, {}
    for k in names:
        if weights is None and k in inp.direct:
            c = {"ell": np.arange(lmax_ + 1), "fsky": 1.0, "n_bad": 0, "lmax": lmax_}
            c.update(zip(("TT", "EE", "BB", "TE", "EB", "TB"), inp.direct[k]))
        else:
            c = spectra.masked_cl(maps[k] if pol else maps[k][0], lmax=lmax_, weights=weights)
        full[k] = c
        full_b[k] = _binned(c, edges)
        full_ss_b[k] = _binned({s: c[s] * hp_filter[s] for s in hp_filter}, edges)
    full_ratio = {}
    if "reference" in maps:
        for k in [n for n in names if n != "reference"]:
            full_ratio[k] = {s: full_b[k][s] / full_b["reference"][s]
                             for s in ("TT", "EE", "BB") if s in full_b[k]}
    return full, full_b, full_ss_b, full_ratio, hp_filter


def _one_points(inp, pat):
    """Stage 6: one-point statistics of the small scales (common bins per field)."""
    onep = {}
    for i, f in enumerate(inp.fields):
        ref = pat.ss["reference" if "reference" in inp.maps else "map"][:, i]
        lo, hi = np.nanpercentile(ref, [0.1, 99.9])
        bins = np.linspace(lo, hi, 61)
        onep[f] = {k: one_point(pat.ss[k][:, i], bins) for k in inp.names}
    return onep


def _seams(inp, seam_tiling):
    """Stage 7: the seam check on the T small-scale power (m - smooth(m))^2."""
    if seam_tiling is None:
        return None, None

    def sspow(k):
        d = inp.maps[k][0] - inp.lrs[k][0]
        return d * d

    ref_pow = sspow("reference") if "reference" in inp.maps else None
    seam, seam_maps = {}, {}
    parent = parents(inp.nside, min(128, inp.nside))  # one index for every map
    for k in [n for n in inp.names if n != "reference"]:
        seam[k], seam_maps[k], count = seam_check(sspow(k), ref_pow, size_deg=seam_tiling[0],
                                                  overlap_deg=seam_tiling[1], keep=inp.keep,
                                                  parent=parent)
    seam_maps["coverage"] = count
    return seam, seam_maps


def validate(map, reference=None, baseline=None, mask=None, out_dir=None, *, lowres=None,
             stokes=None, fwhm_lr_arcmin=80.0, fwhm_hr_arcmin=12.0, patches=None, npix=320,
             pixel_arcmin=3.75, n_thresholds=32, lmax=None, apodize_deg=2.0,
             seam_tiling=(20.0, 5.0), seed=0, figures=True, progress=True, backend="auto",
             reference_seed=None, training_seeds=None):
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
    patches : ``(lon_deg, lat_deg)`` of the validation patches (default ``default_patches()``),
        or ``"test"`` / ``"test:MODEL"``: the test-region centres recorded in a model card
        (``held_out_patches``; dust-T by default).
    n_thresholds : thresholds of the Minkowski functionals (both variants).
    seam_tiling : ``(size_deg, overlap_deg)`` of the tiling the map was made with, or None.
    reference_seed : the synthetic-sky seed of the reference (``forse sky --seed``; ``forse
        validate`` reads the reference's ``SEED`` header), or None when unknown.
    training_seeds : the sky seeds the map's generators were trained on (default
        ``training_sky_seeds()`` of the bundled models). A ``reference_seed`` among them gives a
        ``UserWarning``: the quality numbers are then not held out.
    """
    from tqdm.auto import tqdm

    clock = Timings()  # one lap per stage, from here
    held_out = _held_out(reference_seed, training_seeds)
    steps = tqdm(total=7, desc="validate", disable=not progress)

    def step(name):
        clock.lap(name)
        steps.set_postfix_str(name)
        steps.update(1)

    inp = _inputs(map, reference, baseline, mask, lowres, stokes, fwhm_lr_arcmin,
                  fwhm_hr_arcmin, npix, pixel_arcmin, lmax, seed)
    step("load_smooth")
    pat = _patches(inp, patches, npix, pixel_arcmin, backend)
    step("patches")
    mk = {variant: _minkowski(inp, pat, variant, n_thresholds, backend)
          for variant in ("nu", "minmax")}
    step("minkowski")
    flat, flat_ratio, ell_f = _patch_spectra(inp, pat, pixel_arcmin)
    step("patch_spectra")
    full, full_b, full_ss_b, full_ratio, hp_filter = _full_sky(inp, apodize_deg)
    step("full_sky_spectra")
    onep = _one_points(inp, pat)
    step("one_point")
    seam, seam_maps = _seams(inp, seam_tiling)
    step("seams")
    steps.close()

    maps, names, fields, lmax_ = inp.maps, inp.names, inp.fields, inp.lmax
    nside, stokes, keep = inp.nside, inp.stokes, inp.keep
    fwhm_lr, fwhm_hr, baseline_kind, bad = inp.fwhm_lr, inp.fwhm_hr, inp.baseline_kind, inp.bad
    patch_info, lrs = pat.info, inp.lrs
    summary = {
        "nside": nside, "stokes": stokes, "fields": list(fields), "inputs": names,
        "baseline": baseline_kind, "fwhm_lr_arcmin": fwhm_lr, "fwhm_hr_arcmin": fwhm_hr,
        "mask_fsky": None if keep is None else float(keep.mean()),
        "bad_pixels": bad, "patches": patch_info,
        "held_out": held_out,
        "minkowski": {"variant": "nu", "n_thresholds": int(n_thresholds),
                      "thresholds": mk["nu"]["thresholds"], "overlap": mk["nu"]["overlap"],
                      "ceiling": mk["nu"]["ceiling"], "curves": mk["nu"]["curves"],
                      "thresholds_minmax": mk["minmax"]["thresholds"],
                      "overlap_minmax": mk["minmax"]["overlap"],
                      "ceiling_minmax": mk["minmax"]["ceiling"],
                      "curves_minmax": mk["minmax"]["curves"]},
        "patch_spectra": {"ell": ell_f,
                          "mean": {k: {f: flat[k][f]["cl"].mean(0) for f in fields} for k in names},
                          "mean_small_scales": {k: {f: flat[k][f]["cl_ss"].mean(0) for f in fields}
                                                for k in names},
                          "ratio_to_reference": flat_ratio},
        "full_sky": {"lmax": lmax_, "fsky": full[names[0]]["fsky"], "binned": full_b,
                     "binned_small_scales": full_ss_b, "ratio_to_reference": full_ratio},
        "one_point": onep,
        "seams": seam,
        "timings_s": {},
    }
    summary["headline"] = _headline(summary, full, hp_filter)
    clock.lap("headline")  # folded into the total, as before
    summary["timings_s"] = {k: round(v, 3) for k, v in clock.items() if k != "headline"}
    summary["timings_s"]["total"] = round(sum(clock.values()), 3)
    summary = Summary(jsonable(summary))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        if figures:
            from .report import write_report

            summary.report = os.path.join(out_dir, "report.html")
            write_report(summary.report, summary,
                         maps={k: maps[k] for k in names}, lrs=lrs, seam_maps=seam_maps, full=full,
                         backend=backend)
            clock.lap("report")
            summary["timings_s"]["report"] = round(clock["report"], 3)
            summary["timings_s"]["total"] = round(sum(clock.values()), 3)
        _write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary
