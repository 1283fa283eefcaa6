"""Beam smoothing and the Gaussian small-scale baseline.

Harmonic transforms use healpy with an ``lmax`` set by the beam (``beam_lmax``): a Gaussian beam
of FWHM ``f`` is below ``eps`` (1e-5) beyond ``ell = sqrt(2 ln(1/eps)) / sigma``, so an 80'
beam needs ell <= 486 and a 12' beam ell <= 3240, far fewer than ``3*nside-1`` at Nside 2048.

Missing pixels (UNSEEN or NaN) are set to zero before a transform and are UNSEEN again in the
output; pixels next to a hole are therefore biased low and should be masked by the caller
(``forse.training_set`` does this).

``gaussian_small_scales`` is the baseline that every forse quality figure is compared with, in
the spirit of PySM's d10/d11 dust models: the beam-deconvolved spectrum of the low-resolution
map is fitted with a power law over ``ell_fit`` (TT, EE, BB separately, plus the TE correlation
coefficient); the output keeps the input, deconvolved to the high-resolution beam, below
``ell_transition[0]`` and cross-fades (cos^2 in power) to a Gaussian realization of the fitted
law times the high-resolution beam, complete above ``ell_transition[1]``; that Gaussian part is
modulated by the local large-scale amplitude (|I| for T, the polarized intensity P for Q and U,
each divided by its RMS over the valid sky, so that the sky-averaged power is the fitted one).
The output's power is ``C_in * B_hr**2`` at large scales and ``D_fit * B_hr**2`` at small ones.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from .._checks import ARCMIN, bad_mask, nside_of, positive
from . import sht

__all__ = ["beam_lmax", "smooth", "resmooth", "gaussian_small_scales", "fit_power_law", "gaussian_alm",
           "default_ell_fit", "default_ell_transition", "spectral_model", "SpectralModel"]

FWHM_TO_SIGMA = 1.0 / np.sqrt(8.0 * np.log(2.0))
BASELINE_STREAM = 0x6A055  # random stream of the Gaussian baseline, distinct from forse.sky's


def _sigma(fwhm_arcmin):
    return fwhm_arcmin * ARCMIN * FWHM_TO_SIGMA


def beam_lmax(fwhm_arcmin, nside, eps=1e-5):
    """Multipole beyond which a Gaussian beam of ``fwhm_arcmin`` is below ``eps``, capped at
    ``3*nside-1``."""
    fwhm = positive(fwhm_arcmin, "fwhm_arcmin")
    ell = int(np.ceil(np.sqrt(2.0 * np.log(1.0 / eps)) / _sigma(fwhm)))
    return int(min(3 * nside - 1, max(ell, 8)))


def _as_maps(m, name):
    a = np.asarray(m)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"`{name}` must have shape (npix,) or (k, npix), got {a.shape}")
    nside = nside_of(a.shape[-1], name)
    bad = bad_mask(a)
    if bad.any():
        a = np.array(a, dtype=np.float64)  # a copy: the caller's map is not touched
        a[bad] = 0.0
    else:  # no copy of a float64 map without holes: full-sky maps are large
        a = np.asarray(a, dtype=np.float64)
    return a, bad, nside


def _iter_for(lmax, nside):
    # healpy's ring quadrature is accurate when lmax is well below nside (max error ~1e-4 of
    # the map RMS at Nside 2048, lmax 486 for a dust-like spectrum); iterate once above.
    return 0 if lmax <= nside // 2 else 1


def smooth(m, fwhm_arcmin, *, lmax=None, pol=None, iter=None):
    """Smooth a map ``(npix,)`` or a stack ``(k, npix)`` (RING) with a Gaussian beam.

    ``pol`` (default: True for a ``(3, npix)`` stack) treats rows 1, 2 as Q, U (spin-2
    smoothing through E and B); otherwise every row is smoothed as a scalar. ``lmax`` defaults
    to ``beam_lmax(fwhm_arcmin, nside)``. Returns float64 maps of the input's shape.
    """
    fwhm = positive(fwhm_arcmin, "fwhm_arcmin")
    a, bad, nside = _as_maps(m, "m")
    if pol is None:
        pol = a.ndim == 2 and a.shape[0] == 3
    if pol and (a.ndim != 2 or a.shape[0] != 3):
        raise ValueError(f"pol=True needs a (3, npix) T, Q, U stack, got shape {a.shape}")
    lmax = beam_lmax(fwhm, nside) if lmax is None else int(lmax)
    if lmax < 1 or lmax > 3 * nside - 1:
        raise ValueError(f"`lmax` must be in [1, {3 * nside - 1}] for nside {nside}, got {lmax}")
    it = _iter_for(lmax, nside) if iter is None else int(iter)
    alm = np.atleast_2d(sht.map2alm(a, lmax, iter=it, pol=bool(pol)))
    beam = hp.gauss_beam(fwhm * ARCMIN, lmax=lmax, pol=True)
    for k in range(len(alm)):  # the T beam, or the spin-2 (grad) beam for E and B
        hp.almxfl(alm[k], beam[:, 1 if pol and k else 0], inplace=True)
    res = sht.alm2map(alm if a.ndim == 2 else alm[0], nside, lmax, pol=bool(pol))
    res[bad] = hp.UNSEEN
    return res


def resmooth(m, fwhm_from_arcmin, fwhm_to_arcmin, **kw):
    """A map at beam ``fwhm_from_arcmin`` brought to the wider beam ``fwhm_to_arcmin``: smoothed
    by the quadrature difference, so that its beam is exactly ``fwhm_to_arcmin`` (an 80' input
    made from a 12' sky by smoothing it with 80' would have an 80.9' beam)."""
    lo = positive(fwhm_from_arcmin, "fwhm_from_arcmin")
    hi = positive(fwhm_to_arcmin, "fwhm_to_arcmin")
    if hi <= lo:
        raise ValueError(f"`fwhm_to_arcmin` ({hi:g}) must be larger than `fwhm_from_arcmin` "
                         f"({lo:g})")
    return smooth(m, float(np.sqrt(hi * hi - lo * lo)), **kw)


def gaussian_alm(rng, cls, lmax):
    """Seeded Gaussian harmonic coefficients (healpy ordering).

    ``cls`` is one spectrum ``(lmax+1,)`` -> one alm array, or ``(TT, EE, BB, TE)`` -> three
    correlated alm arrays (T, E, B). Uses ``rng`` (numpy Generator), not numpy's global state.
    """
    ell, emm = hp.Alm.getlm(lmax)
    n = ell.size

    def unit():
        z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
        z *= np.sqrt(0.5)
        z[emm == 0] = np.sqrt(2.0) * z.real[emm == 0]  # m = 0 coefficients are real, unit variance
        return z

    cls = np.asarray(cls, dtype=np.float64)
    if cls.ndim == 1:
        return np.sqrt(np.clip(cls[ell], 0, None)) * unit()
    tt, ee, bb, te = (np.clip(c, 0, None) if k < 3 else c for k, c in enumerate(cls))
    zt, ze, zb = unit(), unit(), unit()
    st = np.sqrt(tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        cte = np.where(st > 0, te / st, 0.0)
    res = np.sqrt(np.clip(ee - cte ** 2, 0, None))
    return np.array([st[ell] * zt, cte[ell] * zt + res[ell] * ze, np.sqrt(bb)[ell] * zb])


def fit_power_law(cl, ell_fit, name="C_ell"):
    """Weighted least-squares fit of ``log cl = log A + slope * log(ell / ell_pivot)`` over
    ``ell_fit = (lo, hi)`` (weights 2l+1). Returns ``(A, slope, ell_pivot)``."""
    lo, hi = int(ell_fit[0]), int(ell_fit[1])
    ell = np.arange(lo, hi + 1)
    y = np.asarray(cl)[lo:hi + 1]
    good = np.isfinite(y) & (y > 0)
    if good.sum() < max(3, (hi - lo + 1) // 2):
        raise ValueError(f"`ell_fit`={tuple(ell_fit)}: the {name} spectrum of the input has only "
                         f"{int(good.sum())} of {hi - lo + 1} positive finite multipoles there; "
                         "expected a map with large-scale fluctuations over that range (not "
                         "constant, enough valid sky, a beam that transmits it)")
    pivot = float(np.sqrt(lo * hi))
    x = np.log(ell[good] / pivot)
    w = 2 * ell[good] + 1.0
    # closed-form weighted least squares (np.polyfit goes through threaded LAPACK, whose last
    # bits vary from call to call: the fit must be bit-reproducible for seeded outputs)
    ly = np.log(y[good])
    sw, sx, sy = w.sum(), (w * x).sum(), (w * ly).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * ly).sum()
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    logamp = (sy - slope * sx) / sw
    return float(np.exp(logamp)), float(slope), pivot


def _check_fit_range(cl, a, valid, lo, hi, b_lr, tqu):
    """The fit range must be transmitted by the input's beam and hold real fluctuations."""
    if b_lr[hi, 0] < 5e-3:
        top = int(np.flatnonzero(b_lr[:, 0] >= 5e-3)[-1])
        raise ValueError(f"`ell_fit` upper end {hi} is where the input beam has fallen to "
                         f"{b_lr[hi, 0]:.1e}: the input cannot resolve it; expected at most "
                         f"ell = {top} (beam >= 0.005)")
    ell = np.arange(lo, hi + 1)
    for k, name in enumerate(("T", "Q", "U")[: 3 if tqu else 1]):
        ms = float(np.mean((a[k] if tqu else a)[valid] ** 2))
        row = 0 if k == 0 else (1 if k == 1 else 2)  # Q/U: EE, BB
        var = float(np.sum((2 * ell + 1) * cl[row][lo:hi + 1]) / (4 * np.pi))
        if not ms > 0 or not var > 1e-6 * ms:  # transform round-off of a constant: ~1e-9
            raise ValueError(f"`lr_map` field {name} has no fluctuations over `ell_fit`="
                             f"{(lo, hi)} (variance {var:.3g} against a mean square {ms:.3g}): "
                             "a constant or empty map gives no spectrum to extrapolate; expected "
                             "a sky map with large-scale structure")


#: Input beam transmissions that set the default multipole ranges: the fit runs from where the
#: beam starts to cut (FIT_START) to where it has fallen to HANDOVER_END (the smallest scales the
#: input still resolves; a noiseless or high-S/N input is assumed, pass ``ell_fit`` and
#: ``ell_transition`` for a noisy one); the input's own large scales hand over to the small
#: scales from HANDOVER_START. A range wide in ell averages over the bumps of a non-Gaussian
#: sky's spectrum (chosen on the synthetic sky's seeds 0 and 2, never on the test seed 1).
FIT_START, HANDOVER_START, HANDOVER_END = 0.85, 0.1, 0.01


def _beam_ell(fwhm_arcmin, transmission):
    """Multipole where a Gaussian beam of ``fwhm_arcmin`` falls to ``transmission``."""
    return int(np.sqrt(2.0 * np.log(1.0 / transmission)) / _sigma(fwhm_arcmin))


def default_ell_fit(fwhm_lr_arcmin, nside=None):
    """Fit range for the low-resolution spectrum: from where the beam falls to 0.85 to where it
    falls to 0.01 ((57, 307) for 80'), at most ``2*nside`` (and at least 20 multipoles wide)."""
    hi = _beam_ell(fwhm_lr_arcmin, HANDOVER_END)
    if nside is not None:
        hi = min(hi, 2 * int(nside))
    lo = min(_beam_ell(fwhm_lr_arcmin, FIT_START), hi - 20)
    return max(2, lo), hi


def default_ell_transition(fwhm_lr_arcmin, ell_fit):
    """Hand-over from the input's large scales to the small scales: from where the input beam
    falls to 0.1 to the top of the fit range ((217, 307) for 80')."""
    hi = int(ell_fit[1])
    lo = _beam_ell(fwhm_lr_arcmin, HANDOVER_START)
    return max(2, lo if lo < hi else hi // 2), hi


class SpectralModel(dict):
    """What the low-resolution map says about the output's spectra (see :func:`spectral_model`).

    Keys: ``large_alm`` (T, or T E B, to ``lfit``: the input deconvolved to the high-resolution
    beam times the hand-over window), ``targets`` (``(lmax+1,)`` for T, or ``(4, lmax+1)`` TT,
    EE, BB, TE: the fitted power laws times ``B_hr**2 (1 - window**2)``, the power the small
    scales must bring), ``window`` (``(lmax+1,)``), ``lmax``, ``lfit``, ``nside``, ``info``
    (fitted amplitudes, slopes, TE correlation, ranges) and ``valid`` (bool map)."""


def spectral_model(lr_map, fwhm_lr_arcmin, fwhm_hr_arcmin=12.0, *, ell_fit=None,
                   ell_transition=None, fit_mask=None, lmax=None, keep_map=False):
    """Fit the beam-deconvolved spectra of ``lr_map`` and split the output into the input's large
    scales and the small-scale power to add; shared by the Gaussian baseline and ``forse extend``.

    Parameters are those of :func:`gaussian_small_scales`. With ``keep_map`` the float64 input
    (UNSEEN set to 0) is kept under ``"map"`` (for the modulation of the Gaussian baseline).

    Raises ``ValueError`` naming the option when the input's large scales give no usable fit
    (no valid pixel, a constant map, a fit range the beam or Nside cannot resolve).
    """
    fwhm_lr = positive(fwhm_lr_arcmin, "fwhm_lr_arcmin")
    fwhm_hr = positive(fwhm_hr_arcmin, "fwhm_hr_arcmin")
    if fwhm_lr <= fwhm_hr:
        raise ValueError(f"`fwhm_lr_arcmin` ({fwhm_lr:g}) must be larger than `fwhm_hr_arcmin` "
                         f"({fwhm_hr:g}): the small scales are the scales between the two beams")
    a, bad, nside = _as_maps(lr_map, "lr_map")
    tqu = a.ndim == 2
    if tqu and a.shape[0] != 3:
        raise ValueError(f"`lr_map` must be (npix,) or a (3, npix) T, Q, U stack, got {a.shape}")
    anybad = bad.any(axis=0) if tqu else bad
    valid = ~anybad
    fsky = valid.mean()
    if fsky == 0:
        raise ValueError("`lr_map` has no valid pixel (all UNSEEN or NaN)")
    if tqu and anybad.any():  # then ``a`` is already a copy
        a[:, anybad] = 0.0
    lo, hi = default_ell_fit(fwhm_lr, nside) if ell_fit is None else (int(ell_fit[0]), int(ell_fit[1]))
    if not 2 <= lo < hi:
        raise ValueError(f"`ell_fit` must be (lo, hi) with 2 <= lo < hi, got {ell_fit!r}")
    if hi > 3 * nside - 1:
        raise ValueError(f"`ell_fit` upper end {hi} exceeds 3*nside-1 = {3 * nside - 1}")
    lmax = beam_lmax(fwhm_hr, nside, eps=1e-3) if lmax is None else int(lmax)
    if not hi <= lmax <= 3 * nside - 1:
        raise ValueError(f"`lmax` must be in [{hi}, {3 * nside - 1}], got {lmax}")
    lfit = min(3 * nside - 1, hi + 16)
    l1, l2 = (default_ell_transition(fwhm_lr, (lo, hi)) if ell_transition is None
              else (int(ell_transition[0]), int(ell_transition[1])))
    if not 2 <= l1 < l2 <= lfit:
        raise ValueError(f"`ell_transition` must be (l1, l2) with 2 <= l1 < l2 <= {lfit}, "
                         f"got {(l1, l2)}")
    alm = sht.map2alm(a, lfit, iter=_iter_for(lfit, nside), pol=tqu)
    if fit_mask is None:
        cl = np.atleast_2d(hp.alm2cl(alm)) / fsky  # TT (EE BB TE EB TB)
    else:
        cl = _masked_fit_cl(a, fit_mask, valid, lfit, nside, tqu)
    b_lr = hp.gauss_beam(fwhm_lr * ARCMIN, lmax=lmax, pol=True)
    b_hr = hp.gauss_beam(fwhm_hr * ARCMIN, lmax=lmax, pol=True)
    _check_fit_range(cl, a, valid, lo, hi, b_lr, tqu)
    ell = np.arange(lmax + 1, dtype=np.float64)
    ell[0] = 1.0
    # large scales: the input deconvolved to the high-resolution beam below l1, fading out by l2
    win = np.zeros(lmax + 1)
    win[: l1 + 1] = 1.0
    mid = np.arange(l1 + 1, l2)
    win[mid] = np.cos(0.5 * np.pi * (mid - l1) / (l2 - l1)) ** 2
    cols = (0, 1, 1) if tqu else (0,)  # T beam for T, spin-2 (grad) beam for E and B
    alms = alm if tqu else [alm]
    large_alm = [hp.almxfl(x, (win * b_hr[:, c] / b_lr[:, c])[: lfit + 1]) for x, c in zip(alms, cols)]
    info = {"ell_fit": (lo, hi), "ell_transition": (l1, l2), "lmax": lmax}
    spectra = []
    for k, name in enumerate(("TT", "EE", "BB")[: 3 if tqu else 1]):
        col = cols[k]
        deconv = cl[k] / b_lr[: lfit + 1, col] ** 2
        amp, slope, pivot = fit_power_law(deconv, (lo, hi), name=name)
        info[name] = {"amplitude": amp, "slope": slope, "ell_pivot": pivot}
        c = amp * (ell / pivot) ** slope * b_hr[:, col] ** 2 * (1.0 - win ** 2)
        c[:2] = 0.0
        spectra.append(c)
    if tqu:
        sel = slice(lo, hi + 1)
        den = np.sqrt(np.clip(cl[0][sel] * cl[1][sel], 1e-300, None))
        w = 2 * np.arange(lo, hi + 1) + 1.0
        r = float(np.clip(np.sum(w * cl[3][sel] / den) / w.sum(), -0.99, 0.99))
        info["TE_correlation"] = r
        spectra.append(r * np.sqrt(spectra[0] * spectra[1]))
    model = SpectralModel(large_alm=np.array(large_alm) if tqu else large_alm[0],
                          targets=np.array(spectra) if tqu else spectra[0], window=win,
                          lmax=lmax, lfit=lfit, nside=nside, info=info, valid=valid)
    if keep_map:
        model["map"] = a
    return model


def _masked_fit_cl(a, fit_mask, valid, lfit, nside, tqu):
    """Spectra of ``a`` over ``fit_mask`` (apodized by 1 deg inside), normalized by the mask."""
    fm = np.asarray(fit_mask)
    if fm.shape != valid.shape:
        raise ValueError(f"`fit_mask` must be a ({valid.size},) map at the Nside of "
                         f"`lr_map`, got shape {fm.shape}")
    w = fm.astype(bool) & valid
    if w.mean() < 0.01:
        raise ValueError("`fit_mask` keeps less than 1 % of the valid sky")
    # apodize the fit mask (1 deg) so that its edges do not leak power into the fit range
    wa = np.clip(smooth(w.astype(np.float64), 60.0), 0.0, 1.0) * w
    alm_fit = sht.map2alm(a * wa, lfit, iter=_iter_for(lfit, nside), pol=tqu)
    return np.atleast_2d(hp.alm2cl(alm_fit)) / np.mean(wa ** 2)


def gaussian_small_scales(lr_map, fwhm_lr_arcmin, fwhm_hr_arcmin=12.0, seed=0, *, ell_fit=None,
                          ell_transition=None, fit_mask=None, lmax=None, modulate=True,
                          dtype=np.float64, return_info=False, model=None):
    """The low-resolution map plus modulated Gaussian small scales (the Gaussian baseline).

    Parameters
    ----------
    lr_map : array ``(npix,)`` (T) or ``(3, npix)`` (T, Q, U), RING
        Map at resolution ``fwhm_lr_arcmin``; UNSEEN/NaN pixels are ignored and stay UNSEEN.
    fwhm_lr_arcmin, fwhm_hr_arcmin : float
        Beams of the input and of the wanted output; ``fwhm_lr_arcmin > fwhm_hr_arcmin``.
    seed : int
        Seed of the Gaussian draw (numpy Generator).
    ell_fit : (int, int)
        Multipole range of the power-law fit to the beam-deconvolved spectrum;
        default ``default_ell_fit(fwhm_lr_arcmin, nside)`` ((57, 307) for 80').
    ell_transition : (int, int)
        Below ``l1`` the output is the input deconvolved to the high-resolution beam; above
        ``l2`` it is Gaussian; in between a cos^2 cross-fade (in power). Default
        ``default_ell_transition`` ((217, 307) for 80': input beam 0.1 to 0.01).
    fit_mask : bool array ``(npix,)``, optional
        Pixels used to measure the spectrum that is fitted (e.g. without point sources or the
        Galactic plane); apodized by 1 deg inside. Default: every valid pixel.
    lmax : int
        Largest multipole of the added small scales; default
        ``beam_lmax(fwhm_hr_arcmin, nside, eps=1e-3)`` (2508 for 12' at Nside 2048).
    modulate : bool
        Modulate the small scales by the local large-scale amplitude (default True).
    dtype : float64 (default) or float32, the output's; float32 halves its memory.
    return_info : bool
        Also return a dict with the fitted amplitudes, slopes and TE correlation.
    model : :class:`SpectralModel`, optional
        ``spectral_model`` of this ``lr_map`` with these beams, when the caller has it already
        (``ell_fit``, ``ell_transition``, ``fit_mask`` and ``lmax`` are then its own).

    Returns
    -------
    ndarray like ``lr_map`` (of ``dtype``), or ``(map, info)``.
    """
    if model is None:
        model = spectral_model(lr_map, fwhm_lr_arcmin, fwhm_hr_arcmin, ell_fit=ell_fit,
                               ell_transition=ell_transition, fit_mask=fit_mask, lmax=lmax,
                               keep_map=True)
        a = model.pop("map")
    else:  # the caller's model of this very map (forse.extend): no second fit, no float64 copy
        # (the modulation is only read on valid pixels; holes become UNSEEN below)
        a = np.asarray(lr_map)
        if a.dtype.kind != "f" or a.ndim not in (1, 2):
            a = _as_maps(lr_map, "lr_map")[0]
    valid, nside, lmax = model["valid"], model["nside"], model["lmax"]
    tqu = a.ndim == 2
    rng = np.random.default_rng([seed, BASELINE_STREAM])  # never the sky's own draws
    # the modulation first, so that the input copy can go before the two full-sky syntheses
    mods = []
    if modulate:
        for m in ((np.abs(a[0]), np.hypot(a[1], a[2])) if tqu else (np.abs(a),)):
            norm = np.sqrt(np.mean(np.square(m[valid], dtype=np.float64)))
            if norm > 0:
                m /= norm
            mods.append(m.astype(dtype, copy=False) if norm > 0 else None)
    del a
    out = sht.alm2map(gaussian_alm(rng, model["targets"], lmax), nside, lmax, pol=tqu, dtype=dtype)
    for rows, mod in zip((slice(0, 1), slice(1, 3)) if tqu else (Ellipsis,), mods):
        if mod is not None:
            out[rows] *= mod
    del mods
    out += sht.alm2map(model["large_alm"], nside, model["lfit"], pol=tqu, dtype=dtype)
    if tqu:
        out[:, ~valid] = hp.UNSEEN
    else:
        out[~valid] = hp.UNSEEN
    return (out, model["info"]) if return_info else out
