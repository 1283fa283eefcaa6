"""Harmonic calibration: spectra in, target spectra out, morphology kept."""
import healpy as hp
import numpy as np
import pytest

from forse.calibrate import calibrate_alm, running_mean, transfer_matrices
from forse.smoothing import gaussian_alm

LMAX = 256


def _law(slope, amp=1.0):
    ell = np.arange(LMAX + 1.0)
    return np.where(ell >= 2, amp * (np.maximum(ell, 1) / 50.0) ** slope, 0.0)


def _binned_ratio(cl, want, lo=10, width=24):
    edges = np.arange(lo, LMAX - width, width)
    return np.array([cl[a:a + width].sum() / want[a:a + width].sum() for a in edges]), edges


def test_running_mean_of_a_constant_and_of_a_line():
    c = np.full(300, 3.0)
    np.testing.assert_allclose(running_mean(c), 3.0)
    line = np.arange(300.0)
    m = running_mean(line, width=0.1)
    assert np.all(np.abs(m[50:250] - line[50:250]) < 0.02 * line[50:250])  # mode-weighted, ~exact


@pytest.mark.parametrize("seed", [1, 2])
def test_gaussian_input_comes_back_with_the_target_spectra(seed):
    """Independent T, E, B with one set of spectra -> TT, EE, BB, TE of the targets, binned
    within the sample variance of the bins."""
    rng = np.random.default_rng(seed)
    alm = gaussian_alm(rng, [_law(-1.0), _law(-3.0, 0.3), _law(-2.0, 0.8), 0 * _law(-1.0)], LMAX)
    tt, ee, bb = _law(-2.5, 5.0), _law(-2.6, 2.0), _law(-2.4, 1.0)
    te = 0.4 * np.sqrt(tt * ee)
    out = calibrate_alm(alm.copy(), np.array([tt, ee, bb, te]))
    cl = hp.alm2cl(out)
    for got, want in ((cl[0], tt), (cl[1], ee), (cl[2], bb), (cl[3], te)):
        ratio, edges = _binned_ratio(got, want)
        modes = (2 * edges + 25) * 24
        tol = 4 * np.sqrt(2.0 / modes) + 0.02
        assert np.all(np.abs(ratio - 1) < tol / 0.4 if want is te else tol), ratio
    np.testing.assert_allclose(cl[4][10:].sum() / np.sqrt(ee[10:].sum() * bb[10:].sum()), 0,
                               atol=0.02)  # EB


def test_te_of_a_correlated_input_is_kept():
    rng = np.random.default_rng(5)
    tt, ee, bb = _law(-2.0), _law(-2.0, 0.5), _law(-2.0, 0.25)
    alm = gaussian_alm(rng, [tt, ee, bb, 0.5 * np.sqrt(tt * ee)], LMAX)
    targets = np.array([4 * tt, 3 * ee, 2 * bb, 0.5 * np.sqrt(12 * tt * ee)])
    cl = hp.alm2cl(calibrate_alm(alm.copy(), targets))
    r = cl[3][20:].sum() / np.sqrt(cl[0][20:].sum() * cl[1][20:].sum())
    assert r == pytest.approx(0.5, abs=0.03)
    # T is only rescaled per multipole, by a positive factor: its phases are unchanged, and the
    # factors follow the smooth ratio of the spectra (2 here), not the scatter of each multipole
    out = calibrate_alm(alm.copy(), targets)[0]
    ell = hp.Alm.getlm(LMAX)[0]
    use = (ell >= 20) & (np.abs(alm[0]) > 0)
    np.testing.assert_allclose(np.angle(out[use]), np.angle(alm[0][use]), atol=1e-9)
    factor = np.abs(out[use]) / np.abs(alm[0][use])
    assert np.all(np.abs(factor - 2) < 0.5) and abs(np.median(factor) - 2) < 0.1


def test_scalar_calibration_and_zero_targets():
    rng = np.random.default_rng(7)
    alm = gaussian_alm(rng, _law(-2.0), LMAX)
    target = _law(-3.0, 2.0)
    target[:30] = 0.0  # below a hand-over: nothing of the small scales is kept there
    out = calibrate_alm(alm.copy(), target)
    cl = hp.alm2cl(out)
    assert np.all(cl[:30] == 0)
    ratio, _ = _binned_ratio(cl, target, lo=40)
    assert np.all(np.abs(ratio - 1) < 0.2), ratio


def test_transfer_matrices_are_lower_triangular_and_exact_on_smooth_spectra():
    tt, ee, bb = _law(-2.0), _law(-2.0, 0.5), _law(-2.0, 0.25)
    zero = np.zeros_like(tt)
    meas = np.array([tt, ee, bb, 0.2 * np.sqrt(tt * ee), zero, zero])
    tgt = np.array([2 * tt, ee, bb, 0.6 * np.sqrt(2 * tt * ee)])
    m = transfer_matrices(meas, tgt)
    assert np.all(np.triu(m, 1) == 0)
    cov = np.stack([np.stack([tt, meas[3], zero], -1), np.stack([meas[3], ee, zero], -1),
                    np.stack([zero, zero, bb], -1)], -2)
    out = np.einsum("lij,ljk,lmk->lim", m, cov, m)
    ell = slice(2, None)
    np.testing.assert_allclose(out[ell, 0, 0], tgt[0][ell], rtol=1e-6)
    np.testing.assert_allclose(out[ell, 1, 0], tgt[3][ell], rtol=1e-6)
    np.testing.assert_allclose(out[ell, 2, 2], tgt[2][ell], rtol=1e-6)


def test_bad_shapes():
    rng = np.random.default_rng(0)
    alm = gaussian_alm(rng, _law(-2.0), LMAX)
    with pytest.raises(ValueError, match="`alm`"):
        calibrate_alm(alm, np.ones((4, LMAX + 1)))
    with pytest.raises(ValueError, match="coefficients"):
        calibrate_alm(alm, np.ones(LMAX))


def test_split_mode_takes_polarized_power_from_the_input_alm():
    """"split": TT, the E/B split and TE from the targets; EE + BB relative to TT from the
    small scales themselves (here half the targets'), within SPLIT_RANGE."""
    rng = np.random.default_rng(9)
    tt = _law(-2.0)
    alm = gaussian_alm(rng, [tt, 0.25 * tt, 0.25 * tt, 0 * tt], LMAX)  # (EE + BB)/TT = 0.5
    targets = np.array([3 * tt, 2 * tt, 1 * tt, 0.3 * np.sqrt(6) * tt])  # (EE + BB)/TT = 1
    cl = hp.alm2cl(calibrate_alm(alm.copy(), targets, mode="split"))
    band = slice(20, None)
    assert cl[0][band].sum() / targets[0][band].sum() == pytest.approx(1, abs=0.05)
    assert cl[1][band].sum() / cl[2][band].sum() == pytest.approx(2, abs=0.15)
    pol = (cl[1][band].sum() + cl[2][band].sum()) / cl[0][band].sum()
    assert pol == pytest.approx(0.5, abs=0.05)
    r = cl[3][band].sum() / np.sqrt(cl[0][band].sum() * cl[1][band].sum())
    assert r == pytest.approx(0.3, abs=0.05)
    intensity = hp.alm2cl(calibrate_alm(alm.copy(), targets, mode="intensity"))
    assert intensity[1][band].sum() / intensity[2][band].sum() == pytest.approx(1, abs=0.1)
    with pytest.raises(ValueError, match="`mode`"):
        calibrate_alm(alm.copy(), targets, mode="other")
