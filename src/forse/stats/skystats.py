"""Dust statistics of a TQU map, as Planck measured them, to judge the built-in sky.

* ``spectra_stats``: power-law fits ``C_ell ∝ ell**alpha`` of TT, EE, BB, TE over ell 40-600 at
  |b| > 30° (Planck 2018 XI's range and sky), EE/BB and TE/sqrt(TT EE) of the fits at the pivot
  ell = 80 (Planck's convention: EE/BB ≈ 2, r_TE ≈ 0.35, alpha_EE ≈ -2.42, alpha_BB ≈ -2.54),
  and binned ratios to see how they run with ell.
* ``polarization_stats``: polarization fraction p and angle dispersion S at 80' (Planck 2018 XII:
  p up to ≈ 22 %, p falling with column density, S ∝ 1/p).

Spectra are ``healpy.anafast`` of the map times a 5°-apodized latitude mask, divided by the mask's
mean square and the beam.
"""
from __future__ import annotations

import healpy as hp
import numpy as np
from scipy.stats import spearmanr

from ..data.masks import latitude_mask
from ..sphere.smoothing import fit_power_law, smooth

__all__ = ["PLANCK", "spectra_stats", "polarization_stats", "angle_dispersion"]

# Planck 2018 XI (353 GHz dust, ell 40-600, LR71 region) and XII (80' maps)
PLANCK = {"alpha_EE": -2.42, "alpha_BB": -2.54, "EE_over_BB": 2.0, "r_TE": 0.35, "p_max": 0.22,
          "slope_logS_logp": -1.0}
BINS = ((40, 100), (100, 200), (200, 400), (400, 600), (600, 1000))


def spectra_stats(m, *, fwhm_arcmin=12.0, bmin_deg=30.0, ell_range=(40, 600), pivot=80):
    """Slopes, EE/BB and r_TE of a (3, npix) T, Q, U map over ``ell_range`` at |b| > bmin."""
    m = np.asarray(m, dtype=np.float64)
    nside = hp.npix2nside(m.shape[-1])
    lmax = min(1000, 3 * nside - 1)
    lo, hi = ell_range[0], min(ell_range[1], lmax)
    w = np.clip(smooth(latitude_mask(nside, bmin_deg).astype(float), 300.0), 0, 1)
    cl = hp.anafast(m * w, lmax=lmax, iter=0) / np.mean(w ** 2)
    beam = hp.gauss_beam(np.radians(fwhm_arcmin / 60), lmax=lmax, pol=True)
    out = {"ell_range": [lo, hi], "spectra_bmin_deg": bmin_deg, "pivot": pivot}
    at_pivot = {}
    for k, lab in enumerate(("TT", "EE", "BB", "TE")):
        amp, slope, piv = fit_power_law(cl[k] / beam[:, min(k, 1)] ** 2, (lo, hi), lab)
        out[f"alpha_{lab}"] = slope
        at_pivot[lab] = amp * (pivot / piv) ** slope
    out["EE_over_BB"] = at_pivot["EE"] / at_pivot["BB"]
    out["r_TE"] = at_pivot["TE"] / np.sqrt(at_pivot["TT"] * at_pivot["EE"])
    for a, b in BINS:
        if b <= lmax:
            sel = slice(a, b + 1)
            out[f"EE_over_BB_{a}_{b}"] = float(cl[1][sel].mean() / cl[2][sel].mean())
            out[f"r_TE_{a}_{b}"] = float(np.mean(cl[3][sel] / np.sqrt(cl[0][sel] * cl[1][sel])))
    return out


def angle_dispersion(q, u):
    """RMS polarization-angle difference (degrees) of each pixel with its 8 neighbours.

    Angles are compared as headless directions in 3D (healpy/COSMO convention), the neighbour's
    projected onto the pixel's tangent plane, so the HEALPix frame's rotation near the poles
    does not enter.
    """
    q, u = np.asarray(q, dtype=np.float64), np.asarray(u, dtype=np.float64)
    nside = hp.npix2nside(q.size)
    pix = np.arange(q.size)
    theta, phi = hp.pix2ang(nside, pix)
    e_theta = np.array([np.cos(theta) * np.cos(phi), np.cos(theta) * np.sin(phi), -np.sin(theta)])
    e_phi = np.array([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])
    psi = 0.5 * np.arctan2(u, q)
    d = np.cos(psi) * e_theta + np.sin(psi) * e_phi
    r = np.array(hp.pix2vec(nside, pix))
    sq = np.zeros(q.size)
    count = np.zeros(q.size)
    for nb in hp.get_all_neighbours(nside, pix):
        ok = nb >= 0
        dn = d[:, np.where(ok, nb, 0)]
        dn = dn - r * np.sum(dn * r, axis=0)
        c = np.abs(np.sum(d * dn, axis=0)) / np.linalg.norm(dn, axis=0)
        sq += np.where(ok, np.arccos(np.clip(c, 0.0, 1.0)) ** 2, 0.0)
        count += ok
    return np.degrees(np.sqrt(sq / count))


def polarization_stats(m, *, fwhm_arcmin=80.0, nside_out=64, bmin_deg=5.0):
    """p and S of a (3, npix) T, Q, U map smoothed to ``fwhm_arcmin`` on ``nside_out`` pixels."""
    low = hp.ud_grade(smooth(np.asarray(m, dtype=np.float64), fwhm_arcmin), nside_out)
    i, q, u = low
    p = np.hypot(q, u) / i
    s = angle_dispersion(q, u)
    sky = latitude_mask(nside_out, bmin_deg) & (s > 0) & (p > 0)
    slope = np.polyfit(np.log(p[sky]), np.log(s[sky]), 1)[0]
    return {"pol_fwhm_arcmin": fwhm_arcmin, "pol_bmin_deg": bmin_deg,
            "p_median": float(np.median(p[sky])), "p_99.9": float(np.quantile(p[sky], 0.999)),
            "p_max": float(p.max()), "rho_p_I": float(spearmanr(p[sky], i[sky])[0]),
            "S_median_deg": float(np.median(s[sky])),
            "rho_S_p": float(spearmanr(s[sky], p[sky])[0]), "slope_logS_logp": float(slope)}
