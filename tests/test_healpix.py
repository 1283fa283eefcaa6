"""The C++ HEALPix geometry (forse._core) against healpy: indices exact, angles and weights to
1e-12, RING and NEST, Nside 1 .. 8192."""
import healpy as hp
import numpy as np
import pytest

from _shared import needs_cpu
from forse import _dispatch

core = _dispatch._core
pytestmark = needs_cpu

NSIDES = [1, 2, 4, 8, 32, 256, 2048, 8192]


def _points(rng, n=20000):
    theta = np.arccos(rng.uniform(-1, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    # Poles, the equator, ring-boundary latitudes (z = +-2/3) and phi at 0 / just below 2 pi.
    special_t = [0.0, np.pi, 1e-10, np.pi - 1e-10, np.pi / 2, np.arccos(2 / 3), np.arccos(-2 / 3)]
    special_p = [0.0, np.nextafter(2 * np.pi, 0), 1e-12, np.pi, 0.5, 3.0, 6.0]
    theta[:len(special_t)] = special_t
    phi[:len(special_p)] = special_p
    return theta, phi


def _report(a, b):
    d = np.abs(a - b)
    return f"abs err min {d.min():.3g} mean {d.mean():.3g} max {d.max():.3g}"


@pytest.mark.parametrize("nside", NSIDES)
@pytest.mark.parametrize("nest", [False, True])
def test_ang2pix_pix2ang(nside, nest):
    rng = np.random.default_rng(nside + 7 * nest)
    theta, phi = _points(rng)
    np.testing.assert_array_equal(core.ang2pix(nside, theta, phi, nest),
                                  hp.ang2pix(nside, theta, phi, nest=nest))
    pix = rng.integers(0, 12 * nside * nside, 20000)
    pix[:2] = [0, 12 * nside * nside - 1]
    t1, p1 = core.pix2ang(nside, pix, nest)
    t2, p2 = hp.pix2ang(nside, pix, nest=nest)
    assert np.allclose(t1, t2, rtol=0, atol=1e-12), _report(t1, t2)
    assert np.allclose(p1, p2, rtol=0, atol=1e-12), _report(p1, p2)
    # round trip pix -> ang -> pix
    np.testing.assert_array_equal(core.ang2pix(nside, t1, p1, nest), pix)


@pytest.mark.parametrize("nside", NSIDES)
@pytest.mark.parametrize("nest", [False, True])
def test_interp_weights(nside, nest):
    rng = np.random.default_rng(100 + nside + nest)
    theta, phi = _points(rng)
    pix, w = core.interp_weights(nside, theta, phi, nest)
    pix2, w2 = hp.get_interp_weights(nside, theta, phi, nest=nest)
    np.testing.assert_array_equal(pix, pix2)
    assert np.allclose(w, w2, rtol=0, atol=1e-12), _report(w, w2)
    assert np.allclose(w.sum(axis=0), 1.0, atol=1e-12)


@pytest.mark.parametrize("nside", NSIDES)
def test_ring_nest(nside):
    rng = np.random.default_rng(nside)
    pix = rng.integers(0, 12 * nside * nside, 20000)
    np.testing.assert_array_equal(core.ring2nest(nside, pix), hp.ring2nest(nside, pix))
    np.testing.assert_array_equal(core.nest2ring(nside, pix), hp.nest2ring(nside, pix))
    np.testing.assert_array_equal(core.nest2ring(nside, core.ring2nest(nside, pix)), pix)


def test_geometry_errors():
    with pytest.raises(ValueError, match="nside must be a power of two"):
        core.ang2pix(3, [0.1], [0.2], False)
    with pytest.raises(ValueError, match="same size"):
        core.ang2pix(4, [0.1, 0.2], [0.2], False)
    with pytest.raises(ValueError, match="out of range"):
        core.pix2ang(4, [12 * 16], False)
