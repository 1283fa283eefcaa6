import healpy as hp
import numpy as np
import pytest

from forse.smoothing import (
    beam_lmax,
    default_ell_fit,
    default_ell_transition,
    fit_power_law,
    gaussian_alm,
    gaussian_small_scales,
    smooth,
)

ARC = np.pi / 180 / 60


def _bandlimited(nside, lmax, seed, pol=False):
    rng = np.random.default_rng(seed)
    cl = np.zeros(lmax + 1)
    cl[2:] = np.arange(2, lmax + 1, dtype=float) ** -2.5
    if pol:
        alm = gaussian_alm(rng, [cl, 0.5 * cl, 0.2 * cl, 0.3 * cl], lmax)
        return alm, hp.alm2map(alm, nside, lmax=lmax, pol=True)
    alm = gaussian_alm(rng, cl, lmax)
    return alm, hp.alm2map(alm, nside, lmax=lmax)


def test_beam_lmax():
    assert beam_lmax(80.0, 2048) == 486
    assert beam_lmax(12.0, 2048) == 3238
    assert beam_lmax(12.0, 2048, eps=1e-3) == 2508
    assert beam_lmax(12.0, 64) == 191  # capped at 3*nside-1
    b = hp.gauss_beam(80 * ARC, lmax=600)
    assert b[486] < 1e-5 < b[480]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_smooth_matches_analytic_beam_on_bandlimited_map(dtype):
    """A band-limited map smoothed = alm2map(alm * B_ell): an exact oracle."""
    nside, lmax = 64, 60
    alm, m = _bandlimited(nside, lmax, seed=2)
    fwhm = 200.0
    expected = hp.alm2map(hp.almxfl(alm, hp.gauss_beam(fwhm * ARC, lmax=lmax)), nside, lmax=lmax)
    got = smooth(m.astype(dtype), fwhm, lmax=lmax, iter=3)
    tol = 1e-6 if dtype == np.float64 else 1e-5  # HEALPix quadrature (3 iterations) ~1e-7
    err = np.abs(got - expected).max() / np.abs(expected).max()
    assert err < tol, f"max rel error {err:.2e}"
    assert got.dtype == np.float64


def test_smooth_matches_healpy_and_default_lmax_is_enough():
    _, m = _bandlimited(256, 3 * 256 - 1, seed=0)  # red spectrum, power up to the pixel scale
    ref = hp.smoothing(m, fwhm=80 * ARC, iter=3)  # full 3*nside-1, 3 iterations
    got = smooth(m, 80.0)  # beam-limited lmax, iteration chosen for speed
    err = np.abs(got - ref)
    assert err.max() < 2e-3 * ref.std() and err.mean() < 2e-4 * ref.std()
    np.testing.assert_allclose(smooth(m, 80.0, lmax=3 * 256 - 1, iter=3), ref, rtol=0, atol=1e-12)


def test_smooth_pol_and_stack():
    nside, lmax = 32, 40
    alm, m = _bandlimited(nside, lmax, seed=4, pol=True)
    fwhm = 300.0
    b = hp.gauss_beam(fwhm * ARC, lmax=lmax, pol=True)
    expected = hp.alm2map([hp.almxfl(alm[0], b[:, 0]), hp.almxfl(alm[1], b[:, 1]),
                           hp.almxfl(alm[2], b[:, 2])], nside, lmax=lmax, pol=True)
    got = smooth(m, fwhm, lmax=lmax, iter=3)
    assert np.abs(got - expected).max() < 3e-6 * np.abs(expected).max()
    rows = smooth(m, fwhm, pol=False, lmax=lmax, iter=3)  # three scalar maps
    np.testing.assert_allclose(rows[0], got[0], atol=1e-12 * np.abs(got[0]).max())
    with pytest.raises(ValueError, match="pol=True needs"):
        smooth(m[:2], fwhm, pol=True)


def test_smooth_keeps_unseen():
    m = np.ones(hp.nside2npix(16))
    m[5] = hp.UNSEEN
    m[7] = np.nan
    out = smooth(m, 600.0)
    assert out[5] == hp.UNSEEN and out[7] == hp.UNSEEN
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("args, exc, match", [
    ((np.zeros(12), 0.0), ValueError, "fwhm_arcmin"),
    ((np.zeros(13), 10.0), ValueError, "not 12\\*nside"),
    ((np.array(["x"] * 12), 10.0), TypeError, "dtype"),
])
def test_smooth_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        smooth(*args)
    with pytest.raises(ValueError, match="lmax"):
        smooth(np.zeros(12), 10.0, lmax=100)


def test_fit_power_law_exact():
    ell = np.arange(301, dtype=float)
    cl = np.zeros(301)
    cl[1:] = 3.0 * (ell[1:] / 50.0) ** -2.7
    amp, slope, piv = fit_power_law(cl, (20, 200))
    assert slope == pytest.approx(-2.7, abs=1e-10)
    assert amp * (50.0 / piv) ** slope == pytest.approx(3.0, rel=1e-10)
    with pytest.raises(ValueError, match=r"`ell_fit`=\(20, 200\).*0 of 181 positive"):
        fit_power_law(np.zeros(301), (20, 200))
    nan_bins = cl.copy()
    nan_bins[20:150] = np.nan
    with pytest.raises(ValueError, match="positive finite multipoles"):
        fit_power_law(nan_bins, (20, 200))


def test_gaussian_alm_statistics_and_seed():
    lmax = 200
    cl = np.linspace(1.0, 2.0, lmax + 1)
    a = gaussian_alm(np.random.default_rng(1), cl, lmax)
    np.testing.assert_array_equal(a, gaussian_alm(np.random.default_rng(1), cl, lmax))
    ell, m = hp.Alm.getlm(lmax)
    assert np.all(a[m == 0].imag == 0)
    ratio = hp.alm2cl(a)[50:] / cl[50:]
    assert abs(ratio.mean() - 1) < 0.03
    tt, ee, bb, te = cl, 0.5 * cl, 0.1 * cl, 0.6 * np.sqrt(0.5) * cl
    t, e, b = gaussian_alm(np.random.default_rng(2), [tt, ee, bb, te], lmax)
    rho = hp.alm2cl(t, e)[20:].sum() / np.sqrt(hp.alm2cl(t)[20:].sum() * hp.alm2cl(e)[20:].sum())
    assert rho == pytest.approx(0.6, abs=0.03)
    assert abs(hp.alm2cl(t, b)[20:].sum()) / hp.alm2cl(t)[20:].sum() < 0.05


def _power_law_sky(nside, slope, seed, fwhm, pol=False):
    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = (ell[2:] / 100.0) ** slope
    b = hp.gauss_beam(fwhm * ARC, lmax=lmax, pol=True)
    rng = np.random.default_rng(seed)
    if pol:
        alm = gaussian_alm(rng, [cl, 0.4 * cl, 0.2 * cl, 0.2 * cl], lmax)
        alm = [hp.almxfl(alm[0], b[:, 0]), hp.almxfl(alm[1], b[:, 1]), hp.almxfl(alm[2], b[:, 2])]
        return hp.alm2map(alm, nside, lmax=lmax, pol=True)
    return hp.alm2map(hp.almxfl(gaussian_alm(rng, cl, lmax), b[:, 0]), nside, lmax=lmax)


def test_gaussian_small_scales_recovers_the_missing_power():
    """On a Gaussian power-law sky seen at 80', the baseline's fitted slope is the truth's and
    its spectrum at small scales is the 12' truth's (no modulation: a stationary sky)."""
    nside = 256
    lr = _power_law_sky(nside, -2.6, seed=3, fwhm=80.0)
    out, info = gaussian_small_scales(lr, 80.0, 12.0, seed=1, modulate=False, return_info=True)
    assert info["TT"]["slope"] == pytest.approx(-2.6, abs=0.1)
    ell = np.arange(3 * nside)
    truth_cl = np.zeros(3 * nside)
    truth_cl[2:] = (ell[2:] / 100.0) ** -2.6 * hp.gauss_beam(12 * ARC, lmax=3 * nside - 1)[2:] ** 2
    cl = hp.anafast(out, lmax=3 * nside - 1, iter=0)
    band = slice(300, 500)  # where the 80' map has lost > 99.9 % of the power
    assert cl[band].sum() / truth_cl[band].sum() == pytest.approx(1.0, abs=0.15)
    # large scales (below ell_transition[0] = 217): the input deconvolved to 12', exactly
    low = slice(5, 200)
    b = hp.gauss_beam(12 * ARC, lmax=199) / hp.gauss_beam(80 * ARC, lmax=199)
    expect = hp.anafast(lr, lmax=199, iter=3)[low] * b[low] ** 2
    np.testing.assert_allclose(hp.anafast(out, lmax=199, iter=3)[low], expect, rtol=2e-3)
    assert info["ell_transition"] == (217, 307) and info["ell_fit"] == (57, 307)


def test_gaussian_small_scales_matches_the_truth_ratio_statistics():
    """On the synthetic sky, the baseline's small-scale ratio hr/lr has the truth's spread
    (within 15 %) but no skewness: a fair Gaussian opponent."""
    from scipy.stats import skew

    from forse.masks import latitude_mask
    from forse.sky import synthetic_dust

    truth = synthetic_dust(256, seed=1, fwhm_arcmin=24.0)
    lr = smooth(truth, 120.0)
    base = gaussian_small_scales(lr, 120.0, 24.0, seed=1)
    high = latitude_mask(256, 20)
    rt, rb = (truth / lr)[high], (base / lr)[high]
    assert rb.std() == pytest.approx(rt.std(), rel=0.15)
    assert skew(rt) > 0.3 and abs(skew(rb)) < 0.1


def test_baseline_draws_are_independent_of_the_sky_with_the_same_seed():
    """The same seed for the sky and the baseline must not reproduce the sky's small scales."""
    from forse.sky import synthetic_dust

    truth = synthetic_dust(128, seed=4, fwhm_arcmin=30.0)
    lr = smooth(truth, 120.0)
    # the fit and hand-over below ell 144 leave the Gaussian part many modes at Nside 128
    base, info = gaussian_small_scales(lr, 120.0, 30.0, seed=4, return_info=True,
                                       ell_fit=(36, 144))
    lmax = 3 * 128 - 1
    keep = (np.arange(lmax + 1) > info["ell_transition"][1]).astype(float)  # the Gaussian part
    hp_base, hp_truth = (hp.alm2map(hp.almxfl(hp.map2alm(m, lmax=lmax), keep), 128, lmax=lmax)
                         for m in (base, truth))
    rho = np.corrcoef(hp_base, hp_truth)[0, 1]
    assert abs(rho) < 0.05


def test_gaussian_small_scales_tqu_and_modulation():
    nside = 128
    lr = _power_law_sky(nside, -2.5, seed=5, fwhm=80.0, pol=True)
    lr[0] += 10 * np.abs(lr[0]).max() * (1 + np.cos(hp.pix2ang(nside, np.arange(lr.shape[1]))[0]))
    # fit below ell 217: at Nside 128 the big offset's pixelization leaks into higher multipoles
    out, info = gaussian_small_scales(lr, 80.0, 12.0, seed=2, return_info=True, ell_fit=(54, 217))
    assert out.shape == lr.shape
    for k in ("TT", "EE", "BB"):
        assert info[k]["slope"] == pytest.approx(-2.5, abs=0.3), k
    ss = out[0] - lr[0]
    bright = lr[0] > np.median(lr[0])
    assert np.std(ss[bright]) > 1.5 * np.std(ss[~bright])  # modulated by the local amplitude
    again = gaussian_small_scales(lr, 80.0, 12.0, seed=2, ell_fit=(54, 217))
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, gaussian_small_scales(lr, 80.0, 12.0, seed=3,
                                                         ell_fit=(54, 217)))


def test_gaussian_small_scales_unseen_and_errors():
    nside = 64
    lr = 100 + _power_law_sky(nside, -2.5, seed=1, fwhm=120.0)
    lr[:50] = hp.UNSEEN
    out = gaussian_small_scales(lr, 120.0, 30.0, seed=0)
    assert np.all(out[:50] == hp.UNSEEN) and np.all(np.isfinite(out[50:]))
    with pytest.raises(ValueError, match="must be larger than `fwhm_hr_arcmin`"):
        gaussian_small_scales(lr, 12.0, 12.0)
    with pytest.raises(ValueError, match="must be larger than `fwhm_hr_arcmin`"):
        gaussian_small_scales(lr, 10.0, 12.0)
    with pytest.raises(ValueError, match="ell_fit"):
        gaussian_small_scales(lr, 120.0, 30.0, ell_fit=(50, 20))
    with pytest.raises(ValueError, match="ell_transition"):
        gaussian_small_scales(lr, 120.0, 30.0, ell_transition=(80, 60))
    with pytest.raises(ValueError, match="exceeds 3\\*nside-1"):
        gaussian_small_scales(lr, 120.0, 30.0, ell_fit=(20, 500))
    with pytest.raises(ValueError, match="T, Q, U stack"):
        gaussian_small_scales(np.zeros((2, 12 * 64 * 64)), 120.0, 30.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        gaussian_small_scales(np.full(12 * 16 * 16, hp.UNSEEN), 120.0, 30.0)


def test_default_ell_fit_and_transition():
    """The fit runs where the 80' beam transmits 0.85 down to 0.01; the hand-over from 0.1."""
    lo, hi = default_ell_fit(80.0)
    b = hp.gauss_beam(80 * ARC, lmax=400)
    assert (lo, hi) == (57, 307)
    assert b[lo] == pytest.approx(0.85, rel=0.02) and b[hi] == pytest.approx(0.01, rel=0.05)
    l1, l2 = default_ell_transition(80.0, (lo, hi))
    assert l2 == hi and b[l1] == pytest.approx(0.1, rel=0.03)
    assert default_ell_fit(80.0, nside=64) == (57, 128)  # capped at 2 nside
    assert default_ell_fit(600.0, nside=16) == (7, 32)  # capped at 2 nside


def test_spectral_model_refuses_inputs_without_a_usable_fit():
    """A constant map, NaN-only bins or a fit range beyond the input's beam: a clear error
    naming the option, never a NaN map."""
    from forse.smoothing import spectral_model

    nside = 64
    with pytest.raises(ValueError, match="no fluctuations over `ell_fit`"):
        spectral_model(np.full(12 * nside**2, 30.0), 120.0, 30.0)
    lr = 100 + _power_law_sky(nside, -2.5, seed=1, fwhm=120.0)
    with pytest.raises(ValueError, match="`ell_fit` upper end 150 is where the input beam"):
        spectral_model(lr, 240.0, 30.0, ell_fit=(60, 150))
    tqu = np.array([lr, np.zeros_like(lr), np.zeros_like(lr)])
    with pytest.raises(ValueError, match="field Q has no fluctuations"):
        spectral_model(tqu, 120.0, 30.0)


def test_fit_mask_removes_a_point_source_from_the_fit():
    from forse.sky import synthetic_dust

    nside, fl = 128, 240.0
    t = smooth(synthetic_dust(nside, seed=5, fwhm_arcmin=60.0), fl)
    src = np.zeros_like(t)
    pix = hp.ang2pix(nside, np.radians(30.0), 2.0)
    src[pix] = 1e4 * np.median(t)
    with_src = t + hp.smoothing(src, fwhm=np.radians(fl / 60), iter=0)
    keep = np.ones(t.size, bool)
    keep[hp.query_disc(nside, hp.pix2vec(nside, pix), np.radians(20))] = False
    _, clean = gaussian_small_scales(t, fl, 60.0, fit_mask=keep, return_info=True)
    _, masked = gaussian_small_scales(with_src, fl, 60.0, fit_mask=keep, return_info=True)
    _, polluted = gaussian_small_scales(with_src, fl, 60.0, return_info=True)
    assert masked["TT"]["slope"] == pytest.approx(clean["TT"]["slope"], abs=1e-6)
    assert masked["TT"]["amplitude"] == pytest.approx(clean["TT"]["amplitude"], rel=1e-6)
    assert polluted["TT"]["slope"] > clean["TT"]["slope"] + 0.1  # a bright source flattens it
    with pytest.raises(ValueError, match="`fit_mask` must be"):
        gaussian_small_scales(t, fl, 60.0, fit_mask=np.ones(12, bool))
    with pytest.raises(ValueError, match="less than 1 %"):
        gaussian_small_scales(t, fl, 60.0, fit_mask=np.zeros(t.size, bool))


def test_baseline_from_a_given_spectral_model_is_the_same():
    from forse.smoothing import spectral_model

    lr = _power_law_sky(64, -2.5, seed=5, fwhm=120.0, pol=True)
    lr[0] += 5 * np.abs(lr[0]).max()
    lr[:, :40] = hp.UNSEEN
    a = gaussian_small_scales(lr, 120.0, 30.0, seed=3)
    b = gaussian_small_scales(lr, 120.0, 30.0, seed=3, model=spectral_model(lr, 120.0, 30.0))
    np.testing.assert_array_equal(a, b)
