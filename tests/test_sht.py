"""forse.sht (ducc0) against healpy's transforms, on fresh random inputs."""
import healpy as hp
import numpy as np
import pytest

from _shared import synalm
from forse import sht
from forse._dispatch import nthreads


def _alm(rng, lmax, k):
    cl = 1.0 / (np.arange(lmax + 1) + 10.0) ** 2
    return np.array([synalm(cl, lmax, rng) for _ in range(k)]) if k else synalm(cl, lmax, rng)


@pytest.mark.parametrize("nside,lmax", [(16, 47), (64, 100), (128, 383)])
@pytest.mark.parametrize("pol", [False, True])
def test_alm2map_matches_healpy(nside, lmax, pol):
    rng = np.random.default_rng()
    alm = _alm(rng, lmax, 3 if pol else 0)
    ref = hp.alm2map(alm, nside, lmax=lmax, pol=pol)
    got = sht.alm2map(alm, nside, lmax, pol=pol)
    assert got.shape == np.shape(ref)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    got32 = sht.alm2map(alm, nside, lmax, pol=pol, dtype=np.float32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("iter_", [0, 1, 3])
@pytest.mark.parametrize("pol", [False, True])
def test_map2alm_matches_healpy(iter_, pol):
    nside, lmax = 64, 150
    rng = np.random.default_rng()
    m = rng.standard_normal((3, 12 * nside**2) if pol else 12 * nside**2)
    ref = hp.map2alm(m, lmax=lmax, iter=iter_, pol=pol)
    got = sht.map2alm(m, lmax, iter=iter_, pol=pol)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    # float32 maps are promoted for the transform
    got32 = sht.map2alm(m.astype(np.float32), lmax, iter=iter_, pol=pol)
    np.testing.assert_allclose(got32, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_spin2_alone_matches_healpy_spin():
    nside, lmax = 32, 70
    eb = _alm(np.random.default_rng(), lmax, 2)
    eb[:, hp.Alm.getlm(lmax)[0] < 2] = 0
    ref = np.array(hp.alm2map_spin(list(eb), nside, 2, lmax))
    got = sht.alm2map(eb, nside, lmax, pol=True)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    qu = np.random.default_rng().standard_normal((2, 12 * nside**2))
    ref = np.array(hp.map2alm_spin(list(qu), 2, lmax=lmax))
    np.testing.assert_allclose(sht.map2alm(qu, lmax, pol=True), ref, rtol=0,
                               atol=1e-10 * np.abs(ref).max())


def test_round_trip_band_limited():
    nside, lmax = 32, 60
    alm = _alm(np.random.default_rng(), lmax, 3)
    alm[1:, hp.Alm.getlm(lmax)[0] < 2] = 0  # E and B start at ell = 2
    back = sht.map2alm(sht.alm2map(alm, nside, lmax, pol=True), lmax, iter=10, pol=True)
    np.testing.assert_allclose(back, alm, rtol=0, atol=1e-9 * np.abs(alm).max())  # Jacobi converges


def test_out_is_written_in_place():
    nside, lmax = 16, 40
    alm = _alm(np.random.default_rng(), lmax, 3)
    out = np.full((3, 12 * nside**2), np.nan, dtype=np.float32)
    res = sht.alm2map(alm, nside, lmax, pol=True, out=out, dtype=np.float32)
    assert res is out and np.isfinite(out).all()
    one = np.empty(12 * nside**2)
    assert sht.alm2map(alm[0], nside, lmax, out=one) is one


def test_bad_inputs_are_named():
    alm = _alm(np.random.default_rng(), 10, 0)
    with pytest.raises(ValueError, match="`nside`"):
        sht.alm2map(alm, 12, 10)
    with pytest.raises(ValueError, match="`alms`.*lmax=11"):
        sht.alm2map(alm, 8, 11)
    with pytest.raises(ValueError, match="pol=True"):
        sht.alm2map(np.array([alm] * 4), 8, 10, pol=True)
    with pytest.raises(ValueError, match="`out`"):
        sht.alm2map(alm, 8, 10, out=np.empty(10))
    with pytest.raises(ValueError, match="`dtype`"):
        sht.alm2map(alm, 8, 10, dtype=np.int32)
    with pytest.raises(ValueError, match="`maps`"):
        sht.map2alm(np.zeros(100), 10)


def test_nthreads_env(monkeypatch):
    monkeypatch.setenv("FORSE_NUM_THREADS", "3")
    assert nthreads() == 3
    monkeypatch.delenv("FORSE_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert nthreads() == 1


def test_float32_maps_are_analysed_in_float32_to_their_precision():
    """map2alm of a float32 map (iter=0) runs in float32, no float64 copy: its alm equal the
    float64 analysis of the same values to ~1e-7 of the largest coefficient; with iter > 0 the
    refinement runs in float64."""
    rng = np.random.default_rng(51)
    nside, lmax = 64, 150
    m = rng.standard_normal((3, 12 * nside ** 2)).astype(np.float32)
    a32 = sht.map2alm(m, lmax, pol=True)
    a64 = sht.map2alm(m.astype(np.float64), lmax, pol=True)
    assert a32.dtype == np.complex128
    assert np.abs(a32 - a64).max() < 1e-6 * np.abs(a64).max()
    np.testing.assert_array_equal(sht.map2alm(m, lmax, iter=1, pol=True),
                                  sht.map2alm(m.astype(np.float64), lmax, iter=1, pol=True))
