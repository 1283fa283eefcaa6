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
``percentiles`` of the patch's pixels after discarding outliers (more than ``OUTLIER_NSIGMA``
robust sigmas, 1.4826 MAD, from the median) and clips the pixels outside to [-1, 1], so a bright
source, even one smoothed to 80 arcmin, does not change the range of the rest of the patch.

``to_physical`` turns a generated small-scale ratio patch (rescaled units) into physical units
without the true high-resolution sky, using the Gaussian-baseline patch at the same place; see
its docstring and docs/normalize.md. The same outlier rule makes its statistics robust.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._checks import ARCMIN, finite_range, float_array, positive

__all__ = ["rescale", "rescale_back", "to_physical"]

#: Robust outlier threshold, in units of 1.4826 MAD: a Gaussian patch of 320**2 pixels has 0.06
#: pixels beyond it on average; a bright source, or a ratio spike where the LR map nearly
#: vanishes, is far beyond it.
OUTLIER_NSIGMA = 5.0
MAD_TO_SIGMA = 1.4826
SUBSAMPLE = 16384  # pixels per patch for the outlier median and MAD (see _outliers)


def _float(x, name: str) -> np.ndarray:
    a = float_array(x, name)
    if a.ndim < 2:
        raise ValueError(f"`{name}` must have at least 2 dimensions (patch rows, columns), "
                         f"got shape {a.shape}")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return a


def _outliers(flat: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """Outlier pixels of each ``(ny, nx)`` patch of ``flat`` ``(P, ny*nx)`` (float64, NaN missing).

    A pixel is an outlier when it lies more than OUTLIER_NSIGMA robust sigmas (1.4826 MAD) from
    the patch median. Each connected flagged region is then grown by half its equivalent radius,
    so the wing of a smoothed source (between the normal range and the threshold) goes with it;
    growth that would leave less than half of the finite pixels is not applied. NaN pixels are
    never flagged; a patch whose MAD is 0 (over half its pixels equal) flags nothing. Every row
    must hold a finite pixel.
    """
    from scipy import ndimage

    finite = np.isfinite(flat)
    if finite.all():
        # median and MAD from a regular subsample of ~16k pixels (their error is ~1 % of sigma,
        # against a 5-sigma threshold): the full medians were most of the normalization time
        sub = flat[:, ::max(1, flat.shape[1] // SUBSAMPLE)]
        med = np.median(sub, axis=1, keepdims=True)
        sigma = MAD_TO_SIGMA * np.median(np.abs(sub - med), axis=1, keepdims=True)
        dev = np.abs(flat - med)
    else:
        med = np.nanmedian(flat, axis=1, keepdims=True)
        dev = np.abs(flat - med)
        sigma = MAD_TO_SIGMA * np.nanmedian(dev, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        out = (dev > OUTLIER_NSIGMA * sigma) & (sigma > 0)
    for k in np.flatnonzero(out.any(axis=1)):
        flagged = out[k].reshape(ny, nx)
        labels, nlab = ndimage.label(flagged)
        grow = 0.5 * np.sqrt(np.bincount(labels.ravel(), minlength=nlab + 1) / np.pi)
        if grow[1:].max() < 1.0:
            continue
        # distance to, and label of, the nearest flagged pixel
        dist, (iy, ix) = ndimage.distance_transform_edt(~flagged, return_indices=True)
        grown = (dist <= grow[labels[iy, ix]]).ravel() & finite[k]
        if grown.sum() <= 0.5 * finite[k].sum():
            out[k] = grown
    return out


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
        True: ``lo, hi`` are the ``percentiles`` of the patch's finite pixels that are not
        outliers (farther than ``OUTLIER_NSIGMA`` robust sigmas from the median: a compact
        source), and the output is clipped to [-1, 1]. False: ``lo, hi`` are the patch minimum
        and maximum (ForSE).
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
    flat = np.where(finite, flat, np.nan)  # +-inf is missing too
    empty = ~finite.any(axis=1)
    if empty.any():
        k = int(np.flatnonzero(empty)[0])
        raise ValueError(f"{_patch_name('x', k, batch)} has no finite pixel; "
                         "expected at least two distinct finite values per patch")
    if robust:
        core = np.where(_outliers(flat, *a.shape[-2:]), np.nan, flat)
        lo, hi = np.nanpercentile(core, p, axis=1)
    else:
        lo, hi = finite_range(flat[:, None, :])
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


def _like(x, name: str, shape: tuple, ref_name: str) -> np.ndarray:
    a = _float(x, name)
    if a.shape != shape:
        raise ValueError(f"`{name}` has shape {a.shape}, expected {shape} (the shape of "
                         f"`{ref_name}`)")
    return a


def _ell_edges(n: int, pixel_arcmin: float, ell_range) -> np.ndarray:
    """Linear bins (at most 8, each at least one fundamental mode wide) covering ``ell_range``."""
    r = np.asarray(ell_range, dtype=np.float64)
    if r.shape != (2,) or not np.all(np.isfinite(r)) or not 0 <= r[0] < r[1]:
        raise ValueError(f"`ell_range` must be two increasing non-negative multipoles, "
                         f"got {ell_range!r}")
    pix = pixel_arcmin * ARCMIN
    l_fund = 2.0 * np.pi / (n * pix)
    l_nyq = np.pi / pix
    if r[1] - r[0] < l_fund or r[1] > l_nyq:
        raise ValueError(f"`ell_range` {tuple(float(v) for v in r)} is not resolved by "
                         f"{n}x{n} patches of {pixel_arcmin} arcmin pixels: expected a range "
                         f"at least {l_fund:.0f} wide (fundamental mode) and below the Nyquist "
                         f"multipole {l_nyq:.0f}")
    nbins = int(min(8, max(1, (r[1] - r[0]) // l_fund)))
    return np.linspace(r[0], r[1], nbins + 1)


def _masked_mean_std(x: np.ndarray, use: np.ndarray):
    n = use.sum(axis=1)
    mean = np.where(use, x, 0.0).sum(axis=1) / n
    var = np.where(use, (x - mean[:, None]) ** 2, 0.0).sum(axis=1) / n
    return mean, np.sqrt(var)


def to_physical(gen_scaled, lr, gauss, *, pixel_arcmin, ell_range=(300, 1000), robust=True,
                lr_amplitude=None, return_info=False):
    """Generated small-scale ratio patches (rescaled units) -> high-resolution patches in physical
    units, without the true sky.

    ForSE's generator outputs the small-scale ratio ``m_ss = HR / LR`` in rescaled units; its
    physical mean and amplitude were taken from the true HR sky. Here they come from the
    Gaussian baseline (``gauss``: the LR patch plus modulated Gaussian small scales):

    a. reference ratio ``r = 1 + (gauss - lr) / A`` with ``A = lr`` by default (so ``r =
       gauss / lr``, ForSE's ratio of the Gaussian sky);
    b. each generated patch gets the mean and standard deviation of ``r``;
    c. its fluctuation amplitude is then refined by one factor per patch so that its binned
       flat-sky power spectrum summed over ``ell_range`` equals that of ``r`` (apodized FFT,
       :func:`forse.spectra.flat_power_spectrum`);
    d. ``HR = lr + (ratio - 1) * A`` (``= ratio * lr`` when ``A = lr``).

    With ``robust=True`` the statistics of b and c use only the pixels that are finite, not
    outliers in ``r`` nor in the generated patch (more than ``OUTLIER_NSIGMA`` robust sigmas from
    the median, the rule of :func:`rescale`) and not saturated (``|gen_scaled| >= 1``, e.g.
    clipped by ``rescale``); the same pixels on both sides, so an exact affine copy of ``r`` is
    mapped back to ``r``. Excluded pixels are set to the mean for the spectra. ``robust=False``
    uses every finite pixel (ForSE's plain mean and standard deviation).

    Polarization: Q and U cross zero, so ``gauss / lr`` is ill-defined. Pass a positive
    amplitude map ``lr_amplitude`` (the local LR polarized intensity ``P_LR = sqrt(Q^2 + U^2)``,
    or the LR intensity): the ratio is then taken with respect to it, ``r = 1 + (gauss - lr) / A``,
    and the output is ``lr + (ratio - 1) * A``.

    Parameters
    ----------
    gen_scaled : array ``(..., n, n)``
        Generator output (the small-scale ratio in rescaled units, e.g. tanh range).
    lr, gauss : arrays of the same shape
        Low-resolution and Gaussian-baseline patches at the same place, physical units.
    pixel_arcmin : float
        Pixel side of the patches in arcmin.
    ell_range : (float, float)
        Multipoles over which the power spectra are matched.
    robust : bool
        Robust statistics (see above).
    lr_amplitude : array like ``lr``, optional
        Positive amplitude map ``A`` (default ``lr``, which must then be positive).
    return_info : bool
        Also return a dict of per-patch arrays (shape ``lr.shape[:-2]``): ``mean`` and ``std``
        of ``r``, ``amplitude`` (the factor of step c), ``n_used`` (pixels in the statistics).

    Returns
    -------
    hr : ndarray, shape of ``lr``, dtype the common float type of the inputs
        NaN wherever an input is NaN.

    Raises
    ------
    ValueError
        Mismatched shapes (naming the argument), ``A <= 0``, ``ell_range`` not resolved by the
        patch, or a patch with fewer than 2 usable pixels, a constant generated patch, or no
        small-scale fluctuation in ``gauss`` (naming the patch).
    """
    lr_a = _float(lr, "lr")
    shape = lr_a.shape
    gen = _like(gen_scaled, "gen_scaled", shape, "lr")
    gs = _like(gauss, "gauss", shape, "lr")
    amp = lr_a if lr_amplitude is None else _like(lr_amplitude, "lr_amplitude", shape, "lr")
    pix = positive(pixel_arcmin, "pixel_arcmin")
    n1, n2 = shape[-2:]
    if n1 != n2:
        raise ValueError(f"`lr` patches must be square, got shape {shape}")
    edges = _ell_edges(n1, pix, ell_range)
    try:
        from ..stats.spectra import flat_power_spectrum
    except ImportError as err:  # pragma: no cover - only before forse.spectra exists
        raise RuntimeError("to_physical needs forse.spectra.flat_power_spectrum, which this "
                           "installation lacks") from err
    out_dtype = np.result_type(gen.dtype, lr_a.dtype, gs.dtype, amp.dtype)
    batch = shape[:-2]

    def flat(a):
        return a.astype(np.float64).reshape(-1, n1 * n2)

    g, low, gss, A = flat(gen), flat(lr_a), flat(gs), flat(amp)
    with np.errstate(invalid="ignore"):
        nonpos = np.isfinite(A) & ~(A > 0)
    if nonpos.any():
        k = int(np.flatnonzero(nonpos.any(axis=1))[0])
        if lr_amplitude is None:
            raise ValueError(f"{_patch_name('lr', k, batch)} has values <= 0 (min "
                             f"{np.nanmin(A[k]):.4g}), where the ratio HR/LR is ill-defined; "
                             "expected lr > 0, or pass a positive `lr_amplitude` (e.g. the LR "
                             "polarized intensity for Q/U)")
        raise ValueError(f"{_patch_name('lr_amplitude', k, batch)} has values <= 0 (min "
                         f"{np.nanmin(A[k]):.4g}); expected a positive amplitude map")

    ref = 1.0 + (gss - low) / A
    use = np.isfinite(ref) & np.isfinite(g)
    if robust:
        # outlier search needs a finite pixel per row; empty rows are reported below
        some = use.any(axis=1)
        ref_u = np.where(use, ref, np.nan)[some]
        g_u = np.where(use, g, np.nan)[some]
        keep = ~_outliers(ref_u, n1, n2) & ~_outliers(g_u, n1, n2)
        keep &= np.abs(np.nan_to_num(g_u)) < 1.0
        use[some] &= keep
    n_used = use.sum(axis=1)
    if np.any(n_used < 2):
        k = int(np.flatnonzero(n_used < 2)[0])
        raise ValueError(f"{_patch_name('lr', k, batch)} has {int(n_used[k])} pixel(s) usable "
                         "for the statistics (finite in every input, not outliers, not "
                         "saturated); expected at least 2")
    mean_ref, sd_ref = _masked_mean_std(ref, use)
    mean_g, sd_g = _masked_mean_std(g, use)
    # a constant patch has a rounding-level standard deviation, not exactly 0
    tiny = 64 * np.finfo(np.float64).eps
    for bad, name, what in ((sd_g <= tiny * np.abs(mean_g), "gen_scaled",
                             "is constant on its usable pixels"),
                            (sd_ref <= tiny * np.abs(mean_ref), "gauss",
                             "has no small scales (gauss/lr is constant)")):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{_patch_name(name, k, batch)} {what}; expected fluctuations")

    # (b) mean and standard deviation of the reference ratio
    ratio = mean_ref[:, None] + (g - mean_g[:, None]) * (sd_ref / sd_g)[:, None]
    # (c) one amplitude factor per patch from the band power over ell_range
    d_ref = np.where(use, ref - mean_ref[:, None], 0.0).reshape(-1, n1, n2)
    d_gen = np.where(use, ratio - mean_ref[:, None], 0.0).reshape(-1, n1, n2)
    apod = min(1.0, 0.125 * n1 * pix / 60.0)
    _, c_ref = flat_power_spectrum(d_ref, pix, ell_edges=edges, apodize_deg=apod)
    _, c_gen = flat_power_spectrum(d_gen, pix, ell_edges=edges, apodize_deg=apod)
    p_ref, p_gen = c_ref.sum(axis=1), c_gen.sum(axis=1)
    for p, name in ((p_gen, "gen_scaled"), (p_ref, "gauss")):
        if np.any(~(p > 0)):
            k = int(np.flatnonzero(~(p > 0))[0])
            raise ValueError(f"{_patch_name(name, k, batch)} has no power in ell_range "
                             f"{tuple(ell_range)}; expected small-scale fluctuations there")
    factor = np.sqrt(p_ref / p_gen)
    ratio = mean_ref[:, None] + factor[:, None] * (ratio - mean_ref[:, None])
    # (d) back to physical units
    hr = (low + (ratio - 1.0) * A).reshape(shape).astype(out_dtype)
    if not return_info:
        return hr
    info = {"mean": mean_ref.reshape(batch), "std": sd_ref.reshape(batch),
            "amplitude": factor.reshape(batch), "n_used": n_used.reshape(batch)}
    return hr, info


def rescale_spin2(q, u, *, percentile: float = 99.5):
    """Divide Q and U patches by one number per patch, the ``percentile`` of ``P = sqrt(Q^2 +
    U^2)`` over its finite pixels, and clip to [-1, 1]: the joint generator's polarized input and
    target scale. One factor for both keeps the polarization angle and the Q/U (so E/B) balance,
    which two independent min-max maps would lose.

    Returns ``(q_scaled, u_scaled, scale)``; ``scale`` has shape ``q.shape[:-2]``. A patch
    without polarization (``scale == 0``) is a ValueError naming it.
    """
    qa = _float(q, "q")
    ua = _like(u, "u", qa.shape, "q")
    if not 0 < float(percentile) <= 100:
        raise ValueError(f"`percentile` must be in (0, 100], got {percentile!r}")
    batch = qa.shape[:-2]
    p = np.hypot(qa.astype(np.float64), ua.astype(np.float64)).reshape(-1, qa.shape[-2] * qa.shape[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN patches are reported below
        s = np.nanpercentile(p, float(percentile), axis=1)
    bad = ~(s > 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{_patch_name('q', k, batch)} has no polarization (P = 0 or no finite "
                         "pixel); expected Q/U fluctuations")
    s = s.reshape(batch)[..., None, None]
    out = [np.clip(a.astype(np.float64) / s, -1.0, 1.0).astype(qa.dtype) for a in (qa, ua)]
    return out[0], out[1], s[..., 0, 0].astype(qa.dtype)


def spin2_to_physical(gen_q, gen_u, lr_q, lr_u, gauss_q, gauss_u, amplitude, *, pixel_arcmin,
                      ell_range=(300, 1000)):
    """The joint generator's polarized small scales (``gen_q``, ``gen_u``: rescaled units, the
    small scales relative to the local intensity ``amplitude``) -> high-resolution Q, U patches.

    ``d = gen * amplitude`` (mean removed per patch), scaled by one factor per patch so that
    the summed Q + U band power over ``ell_range`` equals that of the Gaussian baseline's small
    scales ``gauss - lr``; returns ``(lr_q + f d_q, lr_u + f d_u)``. One factor for Q and U
    keeps the generated E/B balance and polarization angles; NaN pixels stay NaN.
    """
    from ..stats.spectra import flat_power_spectrum

    shape = _float(lr_q, "lr_q").shape
    arrs = {k: _like(v, k, shape, "lr_q").astype(np.float64) for k, v in (
        ("gen_q", gen_q), ("gen_u", gen_u), ("lr_q", lr_q), ("lr_u", lr_u),
        ("gauss_q", gauss_q), ("gauss_u", gauss_u), ("amplitude", amplitude))}
    n = shape[-1]
    if shape[-2] != n:
        raise ValueError(f"`lr_q` patches must be square, got shape {shape}")
    pix = positive(pixel_arcmin, "pixel_arcmin")
    edges = _ell_edges(n, pix, ell_range)
    apod = min(1.0, 0.125 * n * pix / 60.0)
    bad = ~np.isfinite(sum(arrs.values()))

    def band(a):
        a = np.where(bad, 0.0, a).reshape(-1, n, n)
        return flat_power_spectrum(a, pix, ell_edges=edges, apodize_deg=apod)[1].sum(axis=1)

    d = []
    for c in "qu":
        x = arrs["gen_" + c] * arrs["amplitude"]
        x = x - np.nanmean(np.where(bad, np.nan, x), axis=(-2, -1), keepdims=True)
        d.append(x)
    p_ref = band(arrs["gauss_q"] - arrs["lr_q"]) + band(arrs["gauss_u"] - arrs["lr_u"])
    p_gen = band(d[0]) + band(d[1])
    if np.any(~(p_gen > 0)):
        k = int(np.flatnonzero(~(p_gen > 0))[0])
        raise ValueError(f"{_patch_name('gen_q', k, shape[:-2])} has no power in ell_range "
                         f"{tuple(ell_range)}; expected small-scale fluctuations there")
    f = np.sqrt(p_ref / p_gen).reshape(shape[:-2] + (1, 1))
    dtype = np.result_type(*(np.asarray(v).dtype for v in (gen_q, lr_q, gauss_q)))
    out = []
    for c, dc in zip("qu", d):
        o = arrs["lr_" + c] + f * dc
        o[bad] = np.nan
        out.append(o.astype(dtype))
    return out[0], out[1]
