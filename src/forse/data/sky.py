"""A built-in synthetic Galactic dust sky: a stand-in for Planck's GNILC 353 GHz dust maps.

It is NOT a model of the real sky. It exists so that a new user, the tests and the demo have a
dust-like, non-Gaussian sky with no download. Construction (Galactic coordinates, uK_CMB at a
353 GHz-like frequency):

* Intensity ``I = A(l, b) * exp(g - sigma_g**2 / 2)``: ``g`` is a Gaussian field with a dust-like
  power law ``C_ell ∝ ell**-alpha`` (default alpha = 2.6), smoothed by the beam, so ``I`` is
  log-normal: positive, with bright compact clumps (positive skewness) at every scale;
  ``A`` is a smooth Galactic profile, a ~3 deg thick bright plane (brighter towards the
  Galactic centre) on top of a cosecant-like high-latitude halo (~40 uK at the poles).
* Polarization, version 2 (default): the polarized structures are made of the same kind of
  non-Gaussian filaments as the intensity. The intensity's field splits into a log-normal
  envelope ``e_L`` (multipoles below ``ell_split`` = 30) and small-scale structure:
  ``I = A (e_L + s_T)``. Two independent structures ``s_E``, ``s_B`` of the same kind, under the
  same envelope, and ``s_T`` itself enter as harmonic modes of a spin-2 field:
  ``E = te_weight s_T + sqrt(1 - te_weight^2) s_E``, ``B = sqrt(b_to_e) s_B``, plus the
  projected uniform large-scale field (towards l0 = 70 deg, b0 = 24 deg, rotated by 90 deg;
  weight ``ordered_weight``). A filament entering as an E-mode is polarized perpendicular to its
  ridge, as dust filaments are to the field they follow: TE > 0 and EE > BB at every scale, from
  the structure rather than a correction. ``Q + iU = p_scale A^(1 - column_slope) (...)``, so
  p falls with column density, and p = |P| / I saturates smoothly at ``p_max`` = 22 %. Measured
  against Planck 2018 XI/XII in ``bench/results/results_sky_stats.json`` (docs/sky-train.md).
* Polarization, version 1 (``version=1``, the default before 2026-12-03, kept so that results
  made with it reproduce): ``Q + iU = p I exp(2i psi)``, the angle following a spin-2 "direction"
  field coherent over twice the beam (ordered field plus a turbulent part whose E-modes contain
  the intensity's field ``g``), ``p = p_max tanh(|D| / 2 D_rms)``, p_max = 20 %. Its EE/BB and
  TE fade beyond ell ~ 400 (1.1 and 0.14 at ell 600-1000).

Full-resolution harmonic work: one scalar synthesis (T, lmax 2508 for 12' at Nside 2048); for
TQU version 2, two more scalar syntheses, three analyses and one spin-2 synthesis at that lmax
(version 1: one spin-2 synthesis at half of it). The profile, the envelope and the ordered
field are computed as low multipoles. The random draws depend on lmax, so Nside 1024 and 2048
at 12' (both lmax 2508) are the same sky.

``noise_variance`` gives a matching Planck-like per-pixel noise variance map (deeper near the
ecliptic poles, as Planck's scanning), for the signal-to-noise training mask.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from .. import _checks
from .._checks import positive
from ..sphere import sht
from ..sphere.smoothing import ARCMIN, FWHM_TO_SIGMA, beam_lmax, gaussian_alm

__all__ = ["synthetic_dust", "noise_variance", "galactic_profile", "SKY_VERSION", "POL_DEFAULTS"]

# Galactic profile (uK_CMB): halo ~ A_HALO / sqrt(sin^2 b + S0^2), plane ~ A_PLANE exp(-b^2/2 W^2)
A_HALO, S0 = 40.0, 0.05
A_PLANE, PLANE_WIDTH_DEG = 6000.0, 3.0
FIELD_L0_DEG, FIELD_B0_DEG = 70.0, 24.0
SKY_STREAM = 0x5C1  # random stream of the sky, distinct from the Gaussian baseline's


def _check_stokes(stokes):
    s = str(stokes).upper()
    if s not in ("T", "TQU"):
        raise ValueError(f"`stokes` must be 'T' or 'TQU', got {stokes!r}")
    return s


def galactic_profile(lon_deg, lat_deg):
    """Smooth large-scale dust intensity ``A(l, b)`` in uK_CMB (before the log-normal field)."""
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    b = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lw = np.angle(np.exp(1j * lon))  # longitude wrapped to (-pi, pi]: 0 is the Galactic centre
    inner = np.exp(-0.5 * (lw / np.radians(50.0)) ** 2)
    halo = A_HALO * (1.0 + 0.8 * inner) / np.sqrt(np.sin(b) ** 2 + S0 ** 2)
    plane = A_PLANE * (1.0 + 2.0 * np.exp(-0.5 * (lw / np.radians(35.0)) ** 2)) \
        * np.exp(-0.5 * (np.degrees(b) / PLANE_WIDTH_DEG) ** 2)
    return halo + plane


def _low_res_grid(nside):
    nlo = int(min(nside, 128))
    theta, phi = hp.pix2ang(nlo, np.arange(hp.nside2npix(nlo)))
    return nlo, theta, phi


def _ordered_direction(theta, phi):
    """Q, U (healpy convention) of a polarization perpendicular to the sky projection of a
    uniform field, with amplitude sin^2 of its angle to the line of sight."""
    l0, b0 = np.radians(FIELD_L0_DEG), np.radians(FIELD_B0_DEG)
    b_vec = np.array([np.cos(b0) * np.cos(l0), np.cos(b0) * np.sin(l0), np.sin(b0)])
    e_theta = np.array([np.cos(theta) * np.cos(phi), np.cos(theta) * np.sin(phi), -np.sin(theta)])
    e_phi = np.array([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])
    bt = b_vec @ e_theta
    bp = b_vec @ e_phi
    # field angle chi from e_theta; polarization angle chi + 90 deg -> cos 2psi = -cos 2chi
    perp2 = bt ** 2 + bp ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        cos2chi = np.where(perp2 > 0, (bt ** 2 - bp ** 2) / perp2, 1.0)
        sin2chi = np.where(perp2 > 0, 2 * bt * bp / perp2, 0.0)
    return -perp2 * cos2chi, -perp2 * sin2chi


SKY_VERSION = 2  # default; version 1 (before 2026-12-03) stays reachable for old results
POL_DEFAULTS = {
    1: dict(p_max=0.2, ordered_weight=0.3, e_indep=1.0, b_to_e=0.12),
    2: dict(p_max=0.22, p_scale=0.04, ordered_weight=1.0, te_weight=0.37, b_to_e=0.48,
            alpha_e=2.47, alpha_b=2.56, ell_split=30, column_slope=0.2),
}


def synthetic_dust(nside, seed=0, stokes="T", fwhm_arcmin=12.0, *, alpha=2.6, sigma_g=1.0,
                   lmax=None, version=SKY_VERSION, **pol):
    """Synthetic 353 GHz-like dust map in uK_CMB, RING ordering (a GNILC stand-in).

    Parameters
    ----------
    nside : int
    seed : int
        Same seed and version, same map (numpy Generator; independent of numpy's global state).
    stokes : "T" or "TQU"
        ``(npix,)`` intensity, or a ``(3, npix)`` T, Q, U stack.
    fwhm_arcmin : float
        Gaussian beam of the map (12' = GNILC's finest resolution).
    alpha : float
        Power-law index of the log-normal field's spectrum, ``C_ell ∝ ell**-alpha``.
    sigma_g : float
        RMS of the Gaussian field in the exponent (larger = more non-Gaussian).
    lmax : int
        Band limit of the synthesis; default ``beam_lmax(fwhm_arcmin, nside, eps=1e-3)``.
    version : 1 or 2
        Sky model. The intensity is the same in both; the polarization differs (module
        docstring). Version 1 is kept so that results made with it can be reproduced.
    **pol
        Polarization parameters of the version, defaults in ``POL_DEFAULTS[version]``:
        ``p_max`` (largest polarization fraction) and ``ordered_weight`` (weight of the
        uniform-field orientation) in both; version 1: ``e_indep``, ``b_to_e``
        (power of the independent E part and of the B part of the turbulent orientation);
        version 2: ``p_scale`` (polarization fraction of the unsaturated field at the
        reference column), ``te_weight`` (share of the intensity's own structure in the
        E-modes, sets TE), ``b_to_e`` (B power relative to E), ``alpha_e``, ``alpha_b``
        (spectral indices of the independent E and B structures), ``sigma_p`` (their
        log-normal width), ``column_slope`` (p falls as column**-column_slope).
    """
    nside = _checks.nside(nside, "nside")
    stokes = _check_stokes(stokes)
    fwhm = positive(fwhm_arcmin, "fwhm_arcmin")
    positive(sigma_g, "sigma_g")
    pol = _check_pol(version, pol)
    lmax = beam_lmax(fwhm, nside, eps=1e-3) if lmax is None else int(lmax)
    rng = np.random.default_rng([seed, SKY_STREAM])

    # Gaussian field g: unit-normalised power law, then scaled so that its beam-smoothed RMS is
    # sigma_g (the normalisation does not depend on nside beyond the band limit).
    beam = hp.gauss_beam(fwhm * ARCMIN, lmax=lmax)
    cl = _unit_cl(alpha, sigma_g, beam)
    g_alm = gaussian_alm(rng, cl, lmax) * beam[hp.Alm.getlm(lmax)[0]]

    # log of the Galactic profile as low multipoles (it is smooth on a degree scale)
    nlo, theta, phi = _low_res_grid(nside)
    log_a = np.log(galactic_profile(np.degrees(phi), 90.0 - np.degrees(theta)))
    llo = min(lmax, 2 * nlo)
    prof_alm = sht.map2alm(log_a, llo, iter=1)
    total_alm = g_alm.copy()
    _add_low(total_alm, prof_alm, lmax, llo)
    total_alm[0] -= np.sqrt(4 * np.pi) * 0.5 * sigma_g ** 2  # exp(g - sigma^2/2): unit mean

    if stokes == "T":
        return np.exp(sht.alm2map(total_alm, nside, lmax))
    # built in place in the output: at Nside 2048 each full-sky temporary is 0.4 GB
    out = np.empty((3, 12 * nside * nside))
    np.exp(sht.alm2map(total_alm, nside, lmax, out=out[0]), out=out[0])  # intensity
    ordered = (theta, phi)
    if version == 1:
        _polarization_v1(out, rng, g_alm, cl, beam, fwhm, ordered, lmax, llo, **pol)
    else:
        _polarization_v2(out, rng, g_alm, cl, prof_alm, beam, ordered, lmax, llo, **pol)
    return out


def _check_pol(version, pol):
    if version not in POL_DEFAULTS:
        raise ValueError(f"`version` must be one of {sorted(POL_DEFAULTS)}, got {version!r}")
    unknown = sorted(set(pol) - set(POL_DEFAULTS[version]))
    if unknown:
        raise ValueError(f"sky version {version} has no parameter {unknown[0]!r}; its "
                         f"polarization parameters are {sorted(POL_DEFAULTS[version])}")
    pol = {**POL_DEFAULTS[version], **pol}
    for name, v in pol.items():
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"`{name}` must be a number >= 0, got {v!r}")
    if not 0 < pol["p_max"] <= 1:
        raise ValueError(f"`p_max` must be in (0, 1], got {pol['p_max']!r}")
    if version == 2 and not pol["te_weight"] <= 1:
        raise ValueError(f"`te_weight` must be in [0, 1], got {pol['te_weight']!r}")
    return pol


def _field_variance(cl, beam):
    """Per-multipole variance ``(2l+1)/4pi C_l B_l^2`` of a beam-smoothed field."""
    ell = np.arange(beam.size, dtype=np.float64)
    return (2 * ell + 1) / (4 * np.pi) * cl * beam ** 2


def _unit_cl(alpha, rms, beam, lmin=2):
    """Power law ``(ell/10)**-alpha`` from ``lmin`` on whose beam-smoothed field has RMS
    ``rms``."""
    ell = np.arange(beam.size, dtype=np.float64)
    cl = np.zeros(beam.size)
    cl[lmin:] = (ell[lmin:] / 10.0) ** -alpha
    cl *= rms ** 2 / np.sum(_field_variance(cl, beam))
    return cl


def _ordered_alm(theta, phi, llo):
    """E, B of the projected uniform field (low multipoles) and its RMS amplitude."""
    q_o, u_o = _ordered_direction(theta, phi)
    alm = sht.map2alm(np.array([np.zeros_like(q_o), q_o, u_o]), llo, iter=1, pol=True)
    return alm[1:], np.sqrt(np.mean(q_o ** 2 + u_o ** 2))


def _polarization_v1(out, rng, g_alm, cl, beam, fwhm, ordered, lmax, llo, *, p_max,
                     ordered_weight, e_indep, b_to_e):
    """Q + iU = p I exp(2i psi), psi from a direction field coherent over twice the beam whose
    turbulent E-modes are the intensity's own field plus an independent part."""
    nside = hp.npix2nside(out.shape[1])
    ldir = beam_lmax(2 * fwhm, nside, eps=1e-3)
    lm_dir = hp.Alm.getlm(ldir)
    dbeam = hp.gauss_beam(np.sqrt(3.0) * fwhm * ARCMIN, lmax=ldir)[lm_dir[0]]  # total 2*fwhm
    e_alm = _truncate(g_alm, lmax, ldir) * dbeam
    e_alm += gaussian_alm(rng, e_indep * cl[: ldir + 1], ldir) * beam[lm_dir[0]] * dbeam
    b_alm = gaussian_alm(rng, b_to_e * cl[: ldir + 1], ldir) * beam[lm_dir[0]] * dbeam
    ell = np.arange(lmax + 1, dtype=np.float64)
    turb_rms = np.sqrt(np.sum((2 * ell + 1) / (4 * np.pi) * (1.0 + e_indep + b_to_e) * cl
                              * beam ** 2))
    lo = min(llo, ldir)
    (ord_e, ord_b), ord_rms = _ordered_alm(*ordered, lo)
    scale = ordered_weight * turb_rms / ord_rms
    _add_low(e_alm, scale * ord_e, ldir, lo)
    _add_low(b_alm, scale * ord_b, ldir, lo)
    sht.alm2map(np.array([e_alm, b_alm]), nside, ldir, pol=True, out=out[1:])  # direction
    amp = np.hypot(out[1], out[2])
    d_rms = np.sqrt(np.mean(amp ** 2))
    zero = amp == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.tanh(0.5 * amp / d_rms)
        frac *= p_max
        frac /= amp
    frac[zero] = 0.0
    frac *= out[0]
    out[1:] *= frac


def _polarization_v2(out, rng, g_alm, cl, prof_alm, beam, ordered, lmax, llo, *, p_max,
                     p_scale, ordered_weight, te_weight, b_to_e, alpha_e, alpha_b, ell_split,
                     column_slope):
    """Polarized structures made of the same kind of non-Gaussian filaments as the intensity.

    The intensity is I = A e_L (1 + s_T / e_L) with ``e_L`` the log-normal envelope of the
    field's multipoles below ``ell_split`` and ``s_T`` its zero-mean small-scale structure. Two
    independent structures ``s_E``, ``s_B`` of the same kind, under the same envelope, enter
    with ``s_T`` as E- and B-modes: P = p_scale A**-column_slope A (ordered + E[s_T, s_E] +
    B[s_B]). A structure entering as an E-mode has its polarization perpendicular to its ridges
    (TE > 0, EE > BB at every scale); sharing the envelope keeps EE/BB and TE from varying with
    the realization's large scales. p = |P|/I saturates smoothly at p_max.
    """
    nside = hp.npix2nside(out.shape[1])
    ell = np.arange(lmax + 1, dtype=np.float64)
    low = ell < ell_split
    var = _field_variance(cl, beam)
    var_l, var_s = np.sum(var[low]), np.sum(var[~low])
    rms = np.sqrt(np.exp(var_l) * np.expm1(var_s))
    lsplit = max(int(ell_split) - 1, 0)
    # full-sky arrays are updated in place: every temporary is 0.4 GB at Nside 2048
    envelope = sht.alm2map(_truncate(g_alm, lmax, lsplit), nside, lsplit)
    envelope -= var_l / 2
    np.exp(envelope, out=envelope)
    log_a = sht.alm2map(prof_alm, nside, llo)
    work = np.negative(log_a)
    np.exp(work, out=work)
    work *= out[0]
    work -= envelope
    structures = [sht.map2alm(work, lmax, iter=0) / rms]
    lm = hp.Alm.getlm(lmax)[0]
    for alpha in (alpha_e, alpha_b):
        ck = _unit_cl(alpha, np.sqrt(var_s), beam, lmin=max(int(ell_split), 2))
        g = gaussian_alm(rng, ck, lmax) * beam[lm]
        g[0] -= np.sqrt(4 * np.pi) * 0.5 * var_s
        sht.alm2map(g, nside, lmax, out=work)
        np.expm1(work, out=work)
        work *= envelope
        structures.append(sht.map2alm(work, lmax, iter=0) / rms)
    s_t, s_e, s_b = structures
    e_alm = te_weight * s_t + np.sqrt(1 - te_weight ** 2) * s_e
    b_alm = np.sqrt(b_to_e) * s_b
    (ord_e, ord_b), ord_rms = _ordered_alm(*ordered, llo)
    scale = ordered_weight * np.sqrt(1 + b_to_e) / ord_rms
    _add_low(e_alm, scale * ord_e, lmax, llo)
    _add_low(b_alm, scale * ord_b, lmax, llo)
    sht.alm2map(np.array([e_alm, b_alm]), nside, lmax, pol=True, out=out[1:])
    # amplitude: the column A with p falling as A**-column_slope (A = 1 at the poles' ~40 uK)
    amp = log_a
    amp *= 1 - column_slope
    amp -= column_slope * np.log(1.0 / A_HALO)
    np.exp(amp, out=amp)
    amp *= p_scale
    out[1:] *= amp
    del amp, log_a
    # p = |P|/I saturates smoothly at p_max: P <- p_max I tanh(x) / x P, x = |P|/(p_max I)
    x = np.hypot(out[1], out[2])
    sat = np.multiply(out[0], p_max, out=work)
    x /= sat
    with np.errstate(invalid="ignore", divide="ignore"):
        np.tanh(x, out=sat)
        pos = x > 0
        np.divide(sat, x, out=sat, where=pos)
        np.logical_not(pos, out=pos)
        sat[pos] = 1.0
    out[1:] *= sat


def _truncate(alm, lmax, lnew):
    ell, emm = hp.Alm.getlm(lnew)
    return alm[hp.Alm.getidx(lmax, ell, emm)]


def _add_low(alm, low, lmax, llo):
    """alm (band limit lmax) += low (band limit llo), healpy ordering."""
    ell, emm = hp.Alm.getlm(llo)
    alm[hp.Alm.getidx(lmax, ell, emm)] += low


def noise_variance(nside, stokes="T", *, depth_uk_arcmin=60.0, fwhm_arcmin=12.0,
                   pole_gain=4.0):
    """Planck-like per-pixel noise variance (uK_CMB^2) of a map smoothed to ``fwhm_arcmin``.

    White noise of depth ``depth_uk_arcmin`` (intensity; Q and U get twice the variance) seen
    through a Gaussian beam has pixel variance ``depth**2 / (4 pi sigma_beam**2)``; the depth
    varies with ecliptic latitude as Planck's hit counts (``pole_gain`` times more
    integration time at the ecliptic poles than at the ecliptic equator). Returns ``(npix,)``
    or ``(3, npix)`` (T, Q, U), RING, Galactic coordinates.
    """
    nside = _checks.nside(nside, "nside")
    stokes = _check_stokes(stokes)
    depth = positive(depth_uk_arcmin, "depth_uk_arcmin")
    fwhm = positive(fwhm_arcmin, "fwhm_arcmin")
    positive(pole_gain, "pole_gain")
    sigma_b = fwhm * FWHM_TO_SIGMA  # arcmin
    base = depth ** 2 / (4 * np.pi * sigma_b ** 2)
    # hits = 1 + (g - 1) sin^8(ecliptic latitude) is a degree-8 polynomial on the sphere, so
    # ell <= 8 harmonics represent it exactly: evaluate it on a small grid, synthesize at nside
    nlo = int(min(nside, 32))
    vec = hp.Rotator(coord=["G", "E"])(np.array(hp.pix2vec(nlo, np.arange(hp.nside2npix(nlo)))))
    hits_lo = 1.0 + (pole_gain - 1.0) * vec[2] ** 8
    lmax = 8 if nside >= 4 else 3 * nside - 1
    alm = hp.map2alm(hits_lo, lmax=lmax, iter=5)
    hits = hp.alm2map(alm, nside, lmax=lmax) if nside != nlo else hits_lo
    var = base / hits
    if stokes == "T":
        return var
    return np.array([var, 2 * var, 2 * var])
