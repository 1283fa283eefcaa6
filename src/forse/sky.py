"""A built-in synthetic Galactic dust sky: a stand-in for Planck's GNILC 353 GHz dust maps.

It is NOT a model of the real sky. It exists so that a new user, the tests and the demo have a
dust-like, non-Gaussian sky with no download. Construction (Galactic coordinates, uK_CMB at a
353 GHz-like frequency):

* Intensity ``I = A(l, b) * exp(g - sigma_g**2 / 2)``: ``g`` is a Gaussian field with a dust-like
  power law ``C_ell ∝ ell**-alpha`` (default alpha = 2.6), smoothed by the beam, so ``I`` is
  log-normal: positive, with bright compact clumps (positive skewness) at every scale;
  ``A`` is a smooth Galactic profile, a ~3 deg thick bright plane (brighter towards the
  Galactic centre) on top of a cosecant-like high-latitude halo (~40 uK at the poles).
* Polarization ``Q + iU = p I exp(2i psi)``: the angle follows a spin-2 "direction" field ``D``,
  coherent over twice the beam: the projection of a uniform large-scale magnetic field (towards
  l0 = 70 deg, b0 = 24 deg, rotated by 90 deg to give the polarization angle; weight
  ``ordered_weight``) plus a turbulent part whose E-modes are the intensity's own Gaussian field
  plus an independent one (``e_indep``) and whose B-modes are independent (``b_to_e`` of the
  power). Because the turbulent orientation follows the intensity structures (as dust filaments
  follow the field), EE > BB and TE > 0, as in the Planck dust maps (measured at Nside 2048,
  ell 30-600, |b| > 30: EE/BB 1.97, TE/sqrt(TT EE) 0.43). The fraction
  ``p = p_max * tanh(|D| / (2 D_rms))`` (p_max = 20 %, median ~8 %) drops where the ordered and
  turbulent parts cancel (depolarization canals).

Full-resolution harmonic work: one scalar synthesis (T, lmax 2508 for 12' at Nside 2048) and,
for TQU, one spin-2 synthesis at half that lmax; the profile and the ordered field are computed
on an Nside <= 128 grid and enter as low-multipole harmonic coefficients.

``noise_variance`` gives a matching Planck-like per-pixel noise variance map (deeper near the
ecliptic poles, as Planck's scanning), for the signal-to-noise training mask.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from . import sht
from ._checks import positive
from .smoothing import ARCMIN, FWHM_TO_SIGMA, beam_lmax, gaussian_alm

__all__ = ["synthetic_dust", "noise_variance", "galactic_profile"]

# Galactic profile (uK_CMB): halo ~ A_HALO / sqrt(sin^2 b + S0^2), plane ~ A_PLANE exp(-b^2/2 W^2)
A_HALO, S0 = 40.0, 0.05
A_PLANE, PLANE_WIDTH_DEG = 6000.0, 3.0
FIELD_L0_DEG, FIELD_B0_DEG = 70.0, 24.0
SKY_STREAM = 0x5C1  # random stream of the sky, distinct from the Gaussian baseline's


def _check_nside(nside):
    n = int(nside)
    if n != nside or n < 1 or n & (n - 1):
        raise ValueError(f"`nside` must be a positive power of two, got {nside!r}")
    return n


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


def synthetic_dust(nside, seed=0, stokes="T", fwhm_arcmin=12.0, *, alpha=2.6, sigma_g=1.0,
                   p_max=0.2, ordered_weight=0.3, e_indep=1.0, b_to_e=0.12, lmax=None):
    """Synthetic 353 GHz-like dust map in uK_CMB, RING ordering (a GNILC stand-in).

    Parameters
    ----------
    nside : int
    seed : int
        Same seed, same map (numpy Generator; independent of numpy's global state).
    stokes : "T" or "TQU"
        ``(npix,)`` intensity, or a ``(3, npix)`` T, Q, U stack.
    fwhm_arcmin : float
        Gaussian beam of the map (12' = GNILC's finest resolution).
    alpha : float
        Power-law index of the log-normal field's spectrum, ``C_ell ∝ ell**-alpha``.
    sigma_g : float
        RMS of the Gaussian field in the exponent (larger = more non-Gaussian).
    p_max : float
        Largest polarization fraction.
    ordered_weight : float
        Weight of the uniform-field orientation relative to the turbulent one.
    e_indep, b_to_e : float
        Power of the independent E part and of the B part of the turbulent orientation,
        relative to the intensity field's (larger ``b_to_e`` = EE/BB closer to 1).
    lmax : int
        Band limit of the synthesis; default ``beam_lmax(fwhm_arcmin, nside, eps=1e-3)``.
    """
    nside = _check_nside(nside)
    stokes = _check_stokes(stokes)
    fwhm = positive(fwhm_arcmin, "fwhm_arcmin")
    positive(sigma_g, "sigma_g")
    for name, v in (("ordered_weight", ordered_weight), ("e_indep", e_indep), ("b_to_e", b_to_e)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"`{name}` must be a number >= 0, got {v!r}")
    if not 0 < p_max <= 1:
        raise ValueError(f"`p_max` must be in (0, 1], got {p_max!r}")
    lmax = beam_lmax(fwhm, nside, eps=1e-3) if lmax is None else int(lmax)
    rng = np.random.default_rng([seed, SKY_STREAM])

    # Gaussian field g: unit-normalised power law, then scaled so that its beam-smoothed RMS is
    # sigma_g (the normalisation does not depend on nside beyond the band limit).
    ell = np.arange(lmax + 1, dtype=np.float64)
    cl = np.zeros(lmax + 1)
    cl[2:] = (ell[2:] / 10.0) ** -alpha
    beam = hp.gauss_beam(fwhm * ARCMIN, lmax=lmax)
    var = np.sum((2 * ell + 1) / (4 * np.pi) * cl * beam ** 2)
    cl *= sigma_g ** 2 / var
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

    # Orientation ("direction") field, spin 2, coherent over twice the beam: its turbulent
    # E-modes are the intensity's own field g (so orientation follows intensity structures,
    # giving EE > BB and TE > 0) plus an independent part; its B-modes are independent.
    ldir = beam_lmax(2 * fwhm, nside, eps=1e-3)
    lm_dir = hp.Alm.getlm(ldir)
    dbeam = hp.gauss_beam(np.sqrt(3.0) * fwhm * ARCMIN, lmax=ldir)[lm_dir[0]]  # total 2*fwhm
    e_alm = _truncate(g_alm, lmax, ldir) * dbeam
    e_alm += gaussian_alm(rng, e_indep * cl[: ldir + 1], ldir) * beam[lm_dir[0]] * dbeam
    b_alm = gaussian_alm(rng, b_to_e * cl[: ldir + 1], ldir) * beam[lm_dir[0]] * dbeam
    # ordered part: the projected uniform field (low multipoles), scaled to the turbulent RMS
    q_o, u_o = _ordered_direction(theta, phi)
    ord_alm = sht.map2alm(np.array([np.zeros_like(q_o), q_o, u_o]), min(llo, ldir), iter=1,
                          pol=True)
    turb_rms = np.sqrt(np.sum((2 * ell + 1) / (4 * np.pi) * (1.0 + e_indep + b_to_e) * cl * beam ** 2))
    scale = ordered_weight * turb_rms / np.sqrt(np.mean(q_o ** 2 + u_o ** 2))
    _add_low(e_alm, scale * ord_alm[1], ldir, min(llo, ldir))
    _add_low(b_alm, scale * ord_alm[2], ldir, min(llo, ldir))

    # built in place in the output: at Nside 2048 each full-sky temporary is 0.4 GB
    out = np.empty((3, 12 * nside * nside))
    np.exp(sht.alm2map(total_alm, nside, lmax, out=out[0]), out=out[0])  # intensity
    sht.alm2map(np.array([e_alm, b_alm]), nside, ldir, pol=True, out=out[1:])  # direction, spin 2
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
    return out


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
    nside = _check_nside(nside)
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
