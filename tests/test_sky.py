import healpy as hp
import numpy as np
import pytest
from scipy.stats import kurtosis

from forse.masks import latitude_mask
from forse.sky import _ordered_direction, galactic_profile, noise_variance, synthetic_dust
from forse.skystats import PLANCK, angle_dispersion, polarization_stats, spectra_stats
from forse.smoothing import fit_power_law, smooth

NSIDE = 256
ELL = (30, 250)


@pytest.fixture(scope="module")
def tqu():
    return synthetic_dust(NSIDE, seed=3, stokes="TQU")


LMAX = 300


def _deconvolved_cl(m):
    cl = hp.anafast(m, lmax=LMAX, iter=0)
    b = hp.gauss_beam(np.radians(12 / 60), lmax=LMAX, pol=True)
    return cl, b


@pytest.fixture(scope="module")
def spectra(tqu):
    return _deconvolved_cl(tqu)


def test_shapes_units_and_positivity(tqu):
    t = synthetic_dust(64, seed=0)
    assert t.shape == (hp.nside2npix(64),) and t.dtype == np.float64
    assert tqu.shape == (3, hp.nside2npix(NSIDE))
    assert np.all(tqu[0] > 0)
    lat = latitude_mask(NSIDE, 60)
    low = ~latitude_mask(NSIDE, 3)
    # bright plane, faint high latitudes (uK_CMB, 353 GHz-like levels)
    assert np.median(tqu[0][low]) > 20 * np.median(tqu[0][lat])
    assert 10 < np.median(tqu[0][lat]) < 300


def test_reproducible_by_seed():
    a = synthetic_dust(32, seed=5, stokes="TQU")
    b = synthetic_dust(32, seed=5, stokes="TQU")
    c = synthetic_dust(32, seed=6, stokes="TQU")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.random.seed(0)  # numpy's global state must not matter
    np.testing.assert_array_equal(synthetic_dust(32, seed=5), a[0])


def test_spectral_slope_is_dust_like(spectra):
    cl, b = spectra
    for k, col in ((0, 0), (1, 1), (2, 2)):
        _, slope, _ = fit_power_law(cl[k] / b[:, min(col, 1)] ** 2, ELL)
        assert -2.95 < slope < -2.3, (k, slope)
    # the index follows alpha
    s = [fit_power_law(_deconvolved_cl(synthetic_dust(NSIDE, seed=1, alpha=a))[0]
                       / hp.gauss_beam(np.radians(0.2), lmax=LMAX) ** 2, ELL)[1]
         for a in (2.2, 3.0)]
    assert s[1] < s[0] - 0.4


def test_planck_spectra_ee_bb_te_and_slopes(tqu):
    """Planck 2018 XI over ell 40-600 at |b| > 30: EE/BB 2 and r_TE 0.35 at ell 80 (±15 %),
    alpha_EE -2.42 and alpha_BB -2.54 (±0.1), on the mean of three skies (one sky's EE/BB
    scatters by ~7 % at Nside 256); the ratios hold in every band, not only on average."""
    runs = [spectra_stats(tqu)] + [spectra_stats(synthetic_dust(NSIDE, seed=s, stokes="TQU"))
                                   for s in (4, 5)]
    st = {k: np.mean([r[k] for r in runs]) for k in runs[0] if k.startswith(("EE", "r_", "al"))}
    assert abs(st["EE_over_BB"] / PLANCK["EE_over_BB"] - 1) < 0.15, st["EE_over_BB"]
    assert abs(st["r_TE"] / PLANCK["r_TE"] - 1) < 0.15, st["r_TE"]
    assert abs(st["alpha_EE"] - PLANCK["alpha_EE"]) < 0.1, st["alpha_EE"]
    assert abs(st["alpha_BB"] - PLANCK["alpha_BB"]) < 0.1, st["alpha_BB"]
    for lo, hi in ((40, 100), (100, 200), (200, 400), (400, 600)):
        assert 1.5 < st[f"EE_over_BB_{lo}_{hi}"] < 3.0, (lo, st)
        assert 0.25 < st[f"r_TE_{lo}_{hi}"] < 0.5, (lo, st)


def test_version_1_keeps_its_falling_ee_bb():
    """The old sky is still what it was: EE/BB and TE fade towards small scales."""
    st = spectra_stats(synthetic_dust(NSIDE, seed=3, stokes="TQU", version=1))
    assert st["EE_over_BB_400_600"] < 0.8 * st["EE_over_BB_100_200"]


def test_polarization_fraction(tqu):
    p = np.hypot(tqu[1], tqu[2]) / tqu[0]
    assert p.max() <= 0.22 + 1e-12
    q = synthetic_dust(32, seed=1, stokes="TQU", p_max=0.05)
    assert (np.hypot(q[1], q[2]) / q[0]).max() <= 0.05 + 1e-12
    q1 = synthetic_dust(32, seed=1, stokes="TQU", p_max=0.05, version=1)
    assert (np.hypot(q1[1], q1[2]) / q1[0]).max() <= 0.05 + 1e-12


def test_planck_polarization_fraction_and_dispersion_at_80arcmin(tqu):
    """Planck 2018 XII: p up to ~22 %, p falls with column density, S ∝ 1/p."""
    st = polarization_stats(tqu)
    assert 0.18 < st["p_99.9"] <= 0.22 + 1e-9, st
    assert 0.02 < st["p_median"] < 0.10, st
    assert st["rho_p_I"] < -0.4, st
    assert st["rho_S_p"] < -0.6, st
    assert -1.3 < st["slope_logS_logp"] < -0.7, st


def test_angle_dispersion_limits():
    """Random angles: S = RMS of a difference uniform on [0, 90] deg = 90/sqrt(3) = 52 deg; a
    smooth field (a uniform 3D field projected): S of its 8-neighbour differences ≈ 0."""
    rng = np.random.default_rng()
    psi = rng.uniform(0, np.pi, hp.nside2npix(32))
    s = angle_dispersion(np.cos(2 * psi), np.sin(2 * psi))
    assert abs(np.mean(s) - 90 / np.sqrt(3)) < 1.0
    theta, phi = hp.pix2ang(32, np.arange(hp.nside2npix(32)))
    q, u = _ordered_direction(theta, phi)
    s = angle_dispersion(q, u)
    amp = np.hypot(q, u)
    assert np.median(s[amp > 0.5]) < 1.0


def test_polarization_is_non_gaussian(tqu):
    """Q, U small scales carry the intensity's kind of structure: heavy tails."""
    high = latitude_mask(NSIDE, 30)
    for k in (1, 2):
        small = tqu[k] - smooth(tqu[k], 80.0)
        assert kurtosis((small / smooth(tqu[0], 80.0))[high]) > 1.0


def test_versions_share_the_intensity_and_version_1_is_pinned():
    a = synthetic_dust(16, seed=5, stokes="TQU", version=1)
    b = synthetic_dust(16, seed=5, stokes="TQU")
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1:], b[1:])
    # recorded from the version-1 code before version 2 existed
    np.testing.assert_allclose(a.sum(axis=1), [2438950.83389559, 42768.09099836, -45995.08051661],
                               rtol=1e-9)
    np.testing.assert_allclose(a[:, [0, 100, 2000]],
                               [[9.81515098, 33.39281328, 82.08260895],
                                [-0.16963187, 0.36783403, 2.20155702],
                                [-0.59542583, -2.55073099, 6.12641037]], rtol=1e-7)


def test_profile():
    assert galactic_profile(0.0, 0.0) > galactic_profile(180.0, 0.0) > galactic_profile(0.0, 90.0)
    np.testing.assert_allclose(galactic_profile(10.0, 30.0), galactic_profile(10.0, -30.0))


def test_noise_variance():
    v = noise_variance(32, "TQU")
    assert v.shape == (3, hp.nside2npix(32)) and np.all(v > 0)
    np.testing.assert_allclose(v[1], 2 * v[0])
    # deeper (smaller variance) towards the ecliptic poles, as Planck's scanning
    rot = hp.Rotator(coord=["E", "G"])
    pole = hp.vec2pix(32, *rot([0.0, 0.0, 1.0]))
    equ = hp.vec2pix(32, *rot([1.0, 0.0, 0.0]))
    assert v[0][pole] < v[0][equ] / 3
    # white-noise pixel variance through a beam, depth^2 / (4 pi sigma^2), over the hit
    # pattern 1 + 3 sin^8(ecliptic latitude), evaluated directly at every pixel
    sig = 12 / np.sqrt(8 * np.log(2))
    ecl = hp.Rotator(coord=["G", "E"])(np.array(hp.pix2vec(32, np.arange(v.shape[1]))))
    exact = 60.0 ** 2 / (4 * np.pi * sig ** 2) / (1 + 3 * ecl[2] ** 8)
    np.testing.assert_allclose(v[0], exact, rtol=1e-10)
    v2 = noise_variance(32, depth_uk_arcmin=30.0)
    np.testing.assert_allclose(v2, v[0] / 4)


@pytest.mark.parametrize("kw, match", [
    (dict(nside=30), "power of two"),
    (dict(nside=16, stokes="QU"), "'T' or 'TQU'"),
    (dict(nside=16, fwhm_arcmin=0), "fwhm_arcmin"),
    (dict(nside=16, p_max=1.5), "p_max"),
    (dict(nside=16, sigma_g=-1), "sigma_g"),
    (dict(nside=16, b_to_e=-0.1), "b_to_e"),
    (dict(nside=16, version=3), "version"),
    (dict(nside=16, e_indep=1.0), "no parameter 'e_indep'"),
    (dict(nside=16, version=1, te_weight=0.3), "no parameter 'te_weight'"),
    (dict(nside=16, te_weight=1.5), "te_weight"),
    (dict(nside=16, alpha_e=float("nan")), "alpha_e"),
])
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        synthetic_dust(**kw)


def test_noise_variance_errors():
    with pytest.raises(ValueError, match="depth_uk_arcmin"):
        noise_variance(16, depth_uk_arcmin=0)
    with pytest.raises(ValueError, match="power of two"):
        noise_variance(12)
