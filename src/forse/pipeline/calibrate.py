"""Harmonic calibration of stitched small scales to the spectra the input predicts.

The generated small scales have the right morphology but not, multipole by multipole, the right
power: the per-patch normalization matches one band, the generator's spectral shape goes into
the map as it is, and Q/U generated apart from T carry no TE. ``calibrate_alm`` applies, at each
multipole, the linear T/E/B transform that takes the measured auto- and cross-spectra of the
small scales to target spectra (``forse.smoothing.spectral_model``: power laws fitted to the
beam-deconvolved input, its TE correlation, the output beam and the hand-over window):

    a'(l, m) = L_target(l) L_small(l)^-1 a(l, m),

``L`` the Cholesky factors of the 3x3 (T, E, B) covariance at ``l`` (a scalar factor for T
alone). The transform is lower triangular: T is only rescaled per multipole (its morphology is
kept); E takes the part of T its target TE asks for plus its own part orthogonal to T; B what is
orthogonal to both. Every coefficient at ``l`` gets the same factors, so the phases, and with
them the non-Gaussian structure, are kept up to that filtering.

The measured spectra are noisy multipole by multipole (2l + 1 modes), so they are averaged over
``±max(2, width * l)`` multipoles before the factors are taken: the factors follow the smooth
shape of the spectra, not their scatter, and the output's spectrum is the target's up to the
sample variance of the small scales themselves.
"""
from __future__ import annotations

import healpy as hp
import numpy as np

from .. import _checks

__all__ = ["running_mean", "calibrate_alm", "decorrelate", "transfer_matrices"]

SMOOTH_WIDTH = 0.05  # relative half-width of the running mean over multipoles
JITTER = 1e-12  # relative diagonal load: the Cholesky factor exists where a spectrum is ~0


def running_mean(cl, width=SMOOTH_WIDTH, min_half=2):
    """Mean of ``cl[..., l']`` over ``|l' - l| <= max(min_half, width * l)``, weighted by
    ``2l' + 1`` (the number of modes), along the last axis."""
    c = np.asarray(cl, dtype=np.float64)
    n = c.shape[-1]
    ell = np.arange(n)
    w = 2.0 * ell + 1.0
    half = np.maximum(min_half, np.floor(width * ell)).astype(int)
    lo = np.clip(ell - half, 0, n - 1)
    hi = np.clip(ell + half, 0, n - 1)
    cw = np.concatenate([np.zeros(c.shape[:-1] + (1,)), np.cumsum(c * w, axis=-1)], axis=-1)
    cn = np.concatenate([[0.0], np.cumsum(w)])
    return (cw[..., hi + 1] - cw[..., lo]) / (cn[hi + 1] - cn[lo])


def _cov(cl6):
    """(6, L) spectra TT EE BB TE EB TB -> (L, 3, 3) covariance matrices."""
    tt, ee, bb, te, eb, tb = cl6
    return np.stack([np.stack([tt, te, tb], -1), np.stack([te, ee, eb], -1),
                     np.stack([tb, eb, bb], -1)], -2)


def _cholesky(cov):
    """Lower Cholesky factors of (L, 3, 3) matrices with a relative diagonal load; rows where the
    matrix is zero give zero factors."""
    scale = np.trace(cov, axis1=-2, axis2=-1) / 3.0
    load = (JITTER * np.maximum(scale, 1e-300))[:, None, None] * np.eye(3)
    return np.linalg.cholesky(cov + load), scale > 0


def transfer_matrices(measured, targets):
    """Per-multipole transforms ``M(l)`` taking spectra ``measured`` to ``targets``.

    measured : (L,) TT, or (6, L) TT EE BB TE EB TB of the small scales (already smoothed).
    targets : (L,) TT, or (4, L) TT EE BB TE (EB = TB = 0).
    Returns (L,) factors or (L, 3, 3) lower-triangular matrices; zero where either side has
    no power.
    """
    m = np.asarray(measured, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if m.ndim == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.sqrt(np.clip(t, 0, None) / m)
        return np.where((m > 0) & np.isfinite(f), f, 0.0)
    tt, ee, bb, te = np.clip(t[0], 0, None), np.clip(t[1], 0, None), np.clip(t[2], 0, None), t[3]
    l_meas, ok_m = _cholesky(_cov(m))
    zeros = np.zeros_like(tt)
    l_tgt, ok_t = _cholesky(_cov(np.array([tt, ee, bb, te, zeros, zeros])))
    inv = np.linalg.inv(l_meas)
    out = np.einsum("lij,ljk->lik", l_tgt, inv)
    out[~(ok_m & ok_t)] = 0.0
    return np.tril(out)


MODES = ("spectra", "split", "intensity")
SPLIT_RANGE = 4.0  # mode "split": the polarized power stays within x/÷ this of the targets'


def _split_targets(measured, t, handover=None):
    """Targets of mode "split": TT and the E/B split and TE correlation of ``t``, with the
    polarized power EE + BB of ``measured`` times the TT factor. The factor this makes on the
    targets' EE + BB stays within SPLIT_RANGE and, below the end of a hand-over band
    ``handover = (l1, l2)`` (where the small scales carry little of the power and their ratio
    says little), keeps its value at ``l2`` (held rather than ramped to the targets' 1: the
    ramp fills the band's EE/BB dip but lowers Q/U's V0 overlap by ~0.04 on the tuning sky)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = t[1] + t[2]
        rho = np.where((measured[0] > 0) & (tp > 0),
                       (measured[1] + measured[2]) * t[0] / (measured[0] * tp), 1.0)
        rho = np.clip(rho, 1.0 / SPLIT_RANGE, SPLIT_RANGE)
        if handover is not None and int(handover[1]) < rho.size:
            l2 = int(handover[1])
            rho[:l2] = rho[l2]
        pol = rho * tp
        share = np.where(tp > 0, t[1] / tp, 0.5)
        r = np.where(t[0] * t[1] > 0, t[3] / np.sqrt(t[0] * t[1]), 0.0)
    ee, bb = pol * share, pol * (1.0 - share)
    return np.array([t[0], ee, bb, r * np.sqrt(t[0] * ee)])


def decorrelate(alm, ref, lmax_ref, width=SMOOTH_WIDTH):
    """Remove from ``alm`` (one array, or T, E, B rows; ``lmax`` from its size) in place the part
    that ``ref`` (same rows, to ``lmax_ref``) predicts linearly, multipole by multipole and row
    by row: ``a -= (C_ar / C_rr) r`` with smoothed spectra. The small scales then add their power
    to the large scales' in a hand-over band instead of partly cancelling or doubling it."""
    a2, r2 = np.atleast_2d(alm), np.atleast_2d(ref)
    lmax = hp.Alm.getlmax(a2.shape[-1])
    ell, emm = hp.Alm.getlm(lmax_ref)
    idx = hp.Alm.getidx(lmax, ell, emm)
    for a, r in zip(a2, r2):
        sub = a[idx]
        cross = running_mean(hp.alm2cl(sub, r, lmax=lmax_ref), width)
        auto = running_mean(hp.alm2cl(r, lmax=lmax_ref), width)
        beta = np.where(auto > 0, cross / np.where(auto > 0, auto, 1.0), 0.0)
        a[idx] = sub - beta[ell] * r
    return alm


def calibrate_alm(alm, targets, *, mode="spectra", handover=None, width=SMOOTH_WIDTH,
                  return_spectra=False):
    """Transform ``alm`` (T: one array; T, E, B: a (3, nalm) array, healpy ordering, ``lmax`` =
    ``len(targets) - 1``) in place so that its spectra become ``targets`` ((L,) TT or (4, L)
    TT EE BB TE). Modes for T, E, B: ``"spectra"`` (all four spectra become the targets);
    ``"intensity"`` (T, E and B all get the factor that takes TT to its target: the ratios
    EE/TT, BB/TT and TE/TT of ``alm`` are kept, for small scales whose polarization is built
    from the intensity's); ``"split"`` (TT becomes its target and EE + BB that of
    ``"intensity"``, the polarized power relative to the intensity's that ``alm`` has, while
    EE/BB and TE/sqrt(TT EE) become the targets'; below the end ``l2`` of a hand-over band
    ``handover = (l1, l2)`` the polarized-to-target ratio is held at its value at ``l2``).
    Returns ``alm`` (and the smoothed measured spectra)."""
    a = np.asarray(alm)
    t = np.asarray(targets, dtype=np.float64)
    lmax = t.shape[-1] - 1
    scalar = a.ndim == 1
    if scalar != (t.ndim == 1) or (not scalar and (a.shape[0] != 3 or t.shape[0] != 4)):
        raise ValueError(f"`alm` {a.shape} and `targets` {t.shape} must be (nalm,) and (L,), or "
                         "(3, nalm) T, E, B and (4, L) TT, EE, BB, TE")
    _checks.choice(mode, "mode", MODES)
    if a.shape[-1] != hp.Alm.getsize(lmax):
        raise ValueError(f"`alm` has {a.shape[-1]} coefficients, expected "
                         f"{hp.Alm.getsize(lmax)} for lmax {lmax} (the length of `targets` - 1)")
    measured = running_mean(np.atleast_2d(hp.alm2cl(a)), width)
    ell = hp.Alm.getlm(lmax)[0]
    if scalar:
        a *= transfer_matrices(measured[0], t)[ell]
    elif mode == "intensity":
        a *= transfer_matrices(measured[0], t[0])[ell]
    else:
        m = transfer_matrices(measured, t if mode == "spectra"
                              else _split_targets(measured, t, handover))
        t_, e_, b_ = a[0].copy(), a[1].copy(), a[2]
        a[0] = m[ell, 0, 0] * t_
        a[1] = m[ell, 1, 0] * t_ + m[ell, 1, 1] * e_
        a[2] = m[ell, 2, 0] * t_ + m[ell, 2, 1] * e_ + m[ell, 2, 2] * b_
    return (a, measured) if return_spectra else a
