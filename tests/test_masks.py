import healpy as hp
import numpy as np
import pytest

from forse.masks import latitude_mask, training_mask, valid_pixels

NSIDE = 64


def _lat(nside):
    theta, _ = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    return 90.0 - np.degrees(theta)


@pytest.mark.parametrize("nside, bmin", [(16, 10.0), (64, 30.0), (128, 0.5)])
def test_latitude_mask_matches_pix2ang(nside, bmin):
    np.testing.assert_array_equal(latitude_mask(nside, bmin), np.abs(_lat(nside)) > bmin)


def test_snr_threshold_exact_without_smoothing():
    rng = np.random.default_rng(0)
    var = rng.uniform(1.0, 4.0, hp.nside2npix(NSIDE))
    snr = rng.uniform(0.0, 16.0, var.size)
    m = snr * np.sqrt(var)
    got = training_mask(m, var, smooth_fwhm_deg=0, bmin_deg=10.0)
    np.testing.assert_array_equal(got, (snr > 8.0) & (np.abs(_lat(NSIDE)) > 10.0))
    got = training_mask(m, var, snr=4.0, smooth_fwhm_deg=0, bmin_deg=0)
    np.testing.assert_array_equal(got, snr > 4.0)


def test_smoothing_removes_isolated_pixels_and_keeps_large_regions():
    npix = hp.nside2npix(NSIDE)
    lat = _lat(NSIDE)
    var = np.ones(npix)
    m = np.where(lat > 40, 100.0, 1.0)  # a large high-S/N cap
    isolated = hp.ang2pix(NSIDE, 90.0, -30.0, lonlat=True)
    m[isolated] = 100.0  # one bright pixel in the low-S/N south
    mask = training_mask(m, var, smooth_fwhm_deg=3.0, bmin_deg=0)
    assert not mask[isolated]
    assert mask[lat > 46].all()  # well inside the cap
    assert not mask[lat < 38].any()  # the cut at 0.9 trims the edge


def test_unseen_excluded_with_a_margin():
    npix = hp.nside2npix(NSIDE)
    m = np.full(npix, 100.0)
    var = np.ones(npix)
    hole = hp.query_disc(NSIDE, hp.ang2vec(0.0, 60.0, lonlat=True), np.radians(5))
    m[hole] = hp.UNSEEN
    var[0] = np.nan
    mask = training_mask(m, var, smooth_fwhm_deg=2.0)
    assert not mask[hole].any() and not mask[0]
    ring = np.setdiff1d(hp.query_disc(NSIDE, hp.ang2vec(0.0, 60.0, lonlat=True), np.radians(5.5)), hole)
    assert not mask[ring].any()  # smoothing a zero-filled hole leaves a margin
    far = hp.ang2pix(NSIDE, 180.0, 60.0, lonlat=True)
    assert mask[far]


def test_tqu_stack_uses_intensity():
    rng = np.random.default_rng(1)
    npix = hp.nside2npix(16)
    m = np.vstack([np.full(npix, 100.0), rng.normal(size=(2, npix))])
    v = np.ones((3, npix))
    np.testing.assert_array_equal(training_mask(m, v, smooth_fwhm_deg=0),
                                  training_mask(m[0], v[0], smooth_fwhm_deg=0))


def test_valid_pixels():
    m = np.array([[1.0, np.nan, 3.0, hp.UNSEEN], [1.0, 1.0, np.inf, 1.0]])
    np.testing.assert_array_equal(valid_pixels(m), [True, False, False, False])


def test_errors():
    npix = hp.nside2npix(16)
    m = np.ones(npix)
    with pytest.raises(ValueError, match="variance <= 0"):
        training_mask(m, np.zeros(npix))
    with pytest.raises(ValueError, match="1 pixel\\(s\\) have variance <= 0"):
        v = np.ones(npix)
        v[3] = -1.0
        training_mask(m, v)
    with pytest.raises(ValueError, match="same Nside"):
        training_mask(m, np.ones(hp.nside2npix(32)))
    with pytest.raises(ValueError, match="not 12\\*nside"):
        training_mask(np.ones(100), np.ones(100))
    with pytest.raises(ValueError, match="`cut`"):
        training_mask(m, np.ones(npix), cut=1.0)
    with pytest.raises(ValueError, match="`snr`"):
        training_mask(m, np.ones(npix), snr=-1)
    with pytest.raises(ValueError, match="`bmin_deg`"):
        training_mask(m, np.ones(npix), bmin_deg=95)
    with pytest.raises(ValueError, match="no pixel valid"):
        training_mask(np.full(npix, hp.UNSEEN), np.ones(npix))
    with pytest.raises(TypeError, match="dtype"):
        training_mask(m.astype(str), np.ones(npix))
