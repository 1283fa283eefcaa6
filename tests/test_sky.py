import healpy as hp
import numpy as np
import pytest
from scipy.stats import skew

from forse.masks import latitude_mask
from forse.sky import galactic_profile, noise_variance, synthetic_dust
from forse.smoothing import fit_power_law, gaussian_small_scales, smooth

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


def test_ee_bb_and_te(spectra):
    cl, _ = spectra
    sel = slice(*ELL)
    ratio = cl[1][sel].mean() / cl[2][sel].mean()
    assert 1.4 < ratio < 3.5, ratio
    assert np.all(cl[3][sel] > 0)  # TE > 0 at every multipole of the range


def test_small_scales_are_non_gaussian(tqu):
    """hr/lr of the log-normal sky is clearly skewed; the Gaussian baseline's is not."""
    t = tqu[0]
    lr = smooth(t, 80.0)
    high = latitude_mask(NSIDE, 20)
    s_dust = skew((t / lr)[high])
    base = gaussian_small_scales(lr, 80.0, 12.0, seed=1)
    s_gauss = skew((base / lr)[high])
    assert s_dust > 0.25
    assert abs(s_gauss) < 0.5 * s_dust


def test_polarization_fraction(tqu):
    p = np.hypot(tqu[1], tqu[2]) / tqu[0]
    assert p.max() <= 0.2 + 1e-12
    assert 0.03 < np.median(p) < 0.15
    q = synthetic_dust(32, seed=1, stokes="TQU", p_max=0.05)
    assert (np.hypot(q[1], q[2]) / q[0]).max() <= 0.05 + 1e-12


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
])
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        synthetic_dust(**kw)


def test_noise_variance_errors():
    with pytest.raises(ValueError, match="depth_uk_arcmin"):
        noise_variance(16, depth_uk_arcmin=0)
    with pytest.raises(ValueError, match="power of two"):
        noise_variance(12)
