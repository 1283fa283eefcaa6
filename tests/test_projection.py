"""healpix_to_patches / patches_to_healpix: healpy as the oracle, the numpy reference against the
C++ backend per dtype, back-projection identities, round trips, spin 2, and every error path."""
import healpy as hp
import numpy as np
import pytest

from _shared import BACKENDS, HAS_CPU, needs_cpu, synalm, without_cuda_build
from forse import _dispatch, tiling
from forse import projection as P

# cpu vs numpy: same formulas, different rounding (libm vs numpy trig, FMA contraction).
TOL = {np.float64: 1e-10, np.float32: 2e-5}

# Centres over both poles, across lon 0/360, and elsewhere.
LON = np.array([0.0, 359.99, 0.01, 180.0, 123.4, 300.0, 45.0, 0.0])
LAT = np.array([90.0, 0.0, -30.0, -90.0, 89.9, -89.95, 60.0, 0.0])


def _rmap(nside, k=None, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shape = (12 * nside * nside,) if k is None else (k, 12 * nside * nside)
    return rng.standard_normal(shape).astype(dtype)


def _smooth_map(nside, fwhm_arcmin, seed=1):
    sigma = np.radians(fwhm_arcmin / 60.0) / np.sqrt(8 * np.log(2))
    lmax = min(3 * nside - 1, int(6.0 / sigma))  # the beam is < 1e-7 beyond
    alm = synalm((np.arange(lmax + 1) + 1.0) ** -2.0, lmax, np.random.default_rng(seed))
    return hp.alm2map(hp.smoothalm(alm, fwhm=np.radians(fwhm_arcmin / 60.0)), nside)


def _err(a, b):
    d = np.abs(a - b)
    r = d / np.maximum(np.abs(b), 1e-300)
    return (f"abs err min/mean/max {d.min():.3g}/{d.mean():.3g}/{d.max():.3g}, "
            f"rel err max {r.max():.3g}")


# ------------------------------------------------------------------ projection
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nest", [False, True])
@pytest.mark.parametrize("npix", [32, 33])
def test_bilinear_is_get_interp_val(backend, nest, npix):
    nside = 64
    m = _smooth_map(nside, 120.0) + 3.0  # smooth and away from 0: relative error is meaningful
    mm = hp.reorder(m, r2n=True) if nest else m
    p = P.healpix_to_patches(mm, LON, LAT, npix, 40.0, nest=nest, backend=backend)
    assert p.shape == (LON.size, npix, npix) and p.dtype == np.float64
    theta, phi = P.patch_angles(LON, LAT, npix, 40.0)
    ref = hp.get_interp_val(mm, theta.ravel(), phi.ravel(), nest=nest).reshape(p.shape)
    assert np.allclose(p, ref, rtol=1e-12, atol=0), _err(p, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bilinear_random_map_high_nside(backend):
    nside = 2048
    m = _rmap(nside, seed=3) + 10.0
    lon, lat = LON[:4], LAT[:4]
    p = P.healpix_to_patches(m, lon, lat, 24, 3.75, backend=backend)
    theta, phi = P.patch_angles(lon, lat, 24, 3.75)
    ref = hp.get_interp_val(m, theta.ravel(), phi.ravel()).reshape(p.shape)
    assert np.allclose(p, ref, rtol=1e-12, atol=0), _err(p, ref)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nest", [False, True])
def test_nearest(backend, nest):
    nside = 32
    m = _rmap(nside)
    p = P.healpix_to_patches(m, LON, LAT, 20, 60.0, nest=nest, interpolation="nearest",
                             backend=backend)
    theta, phi = P.patch_angles(LON, LAT, 20, 60.0)
    ref = m[hp.ang2pix(nside, theta, phi, nest=nest)]
    np.testing.assert_array_equal(p, ref)


def test_patch_orientation():
    """Row 0 is north of the centre, longitude grows with the column index."""
    theta, phi = P.patch_angles([30.0], [10.0], 11, 30.0)
    lat = 90 - np.degrees(theta[0])
    lon = np.degrees(phi[0])
    assert lat[0, 5] > lat[5, 5] > lat[10, 5]
    assert lon[5, 0] < lon[5, 5] < lon[5, 10]
    assert np.isclose(lon[5, 5], 30.0) and np.isclose(lat[5, 5], 10.0)
    # pixel_arcmin is the spacing at the tangent point
    assert np.isclose(lat[4, 5] - lat[5, 5], 0.5, rtol=1e-4)


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_project_cpu_vs_numpy(dtype, interpolation):
    m = _rmap(128, k=3, seed=5, dtype=dtype)
    a = P.healpix_to_patches(m, LON, LAT, 30, 30.0, interpolation=interpolation, backend="numpy")
    b = P.healpix_to_patches(m, LON, LAT, 30, 30.0, interpolation=interpolation, backend="cpu")
    assert a.shape == b.shape == (LON.size, 3, 30, 30)
    assert a.dtype == b.dtype == dtype
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype] * 10), _err(b, a)


@needs_cpu
@pytest.mark.parametrize("nthreads", [1, 2])
def test_project_noncontiguous_and_threads(nthreads):
    m = _rmap(64, k=2, seed=9)
    big = np.zeros((2, 2 * m.shape[1]))
    big[:, ::2] = m
    strided = big[:, ::2]
    assert not strided.flags.c_contiguous
    a = P.healpix_to_patches(strided, LON, LAT, 16, 50.0, backend="cpu", nthreads=nthreads)
    b = P.healpix_to_patches(m, LON, LAT, 16, 50.0, backend="cpu")
    np.testing.assert_array_equal(a, b)
    # A transposed (npix_map, k) array viewed as (k, npix_map) works too.
    c = P.healpix_to_patches(np.asfortranarray(m), LON, LAT, 16, 50.0, backend="cpu")
    np.testing.assert_array_equal(c, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [hp.UNSEEN, np.nan])
def test_unseen_touched_is_nan(backend, bad):
    nside = 32
    m = _rmap(nside) + 5
    rng = np.random.default_rng(1)
    hole = rng.choice(m.size, 300, replace=False)
    m[hole] = bad
    p = P.healpix_to_patches(m, LON, LAT, 25, 50.0, backend=backend)
    theta, phi = P.patch_angles(LON, LAT, 25, 50.0)
    pix, w = hp.get_interp_weights(nside, theta.ravel(), phi.ravel())
    touched = np.any(np.isin(pix, hole) & (w != 0), axis=0).reshape(p.shape)
    assert touched.any() and (~touched).any()
    np.testing.assert_array_equal(np.isnan(p), touched)
    clean = m.copy()
    clean[hole] = 0.0
    ref = hp.get_interp_val(clean, theta.ravel(), phi.ravel()).reshape(p.shape)
    assert np.allclose(p[~touched], ref[~touched], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unseen_float32(backend):
    m = np.full(12 * 16 * 16, 2.0, dtype=np.float32)
    m[:100] = hp.UNSEEN
    p = P.healpix_to_patches(m, [0.0], [90.0], 10, 60.0, backend=backend)
    assert np.isnan(p).any() and np.all(p[~np.isnan(p)] == 2.0)


# ------------------------------------------------------------------ back-projection
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("window", ["taper", "flat", "array"])
def test_constant_stays_constant(backend, interpolation, window):
    lon, lat = tiling.regular()
    npix = 41
    if window == "array":
        window = np.random.default_rng(2).uniform(0.1, 1.0, (npix, npix))
    patches = np.full((lon.size, npix, npix), 2.5)
    m, w = P.patches_to_healpix(patches, lon, lat, 16, 30.0, window=window,
                                interpolation=interpolation, return_weights=True, backend=backend)
    assert m.shape == w.shape == (12 * 16 * 16,)
    assert np.all(w > 0)
    assert np.allclose(m, 2.5, rtol=1e-13, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uncovered_is_unseen(backend):
    patches = np.ones((1, 10, 10))
    m, w = P.patches_to_healpix(patches, [10.0], [20.0], 32, 30.0, return_weights=True,
                                backend=backend)
    assert np.all(m[w == 0] == hp.UNSEEN) and np.allclose(m[w > 0], 1.0, rtol=1e-14)
    assert 0 < np.sum(w > 0) < m.size


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("nest", [False, True])
@pytest.mark.parametrize("window", ["taper", "flat", "array"])
def test_backproject_cpu_vs_numpy(dtype, interpolation, nest, window):
    lon, lat = tiling.adaptive()
    npix = 24
    rng = np.random.default_rng(4)
    if window == "array":
        window = rng.uniform(0.0, 1.0, (npix, npix))
    patches = rng.standard_normal((lon.size, 2, npix, npix)).astype(dtype)
    kw = dict(window=window, interpolation=interpolation, nest=nest, return_weights=True)
    a, wa = P.patches_to_healpix(patches, lon, lat, 32, 50.0, backend="numpy", **kw)
    b, wb = P.patches_to_healpix(patches, lon, lat, 32, 50.0, backend="cpu", **kw)
    assert a.dtype == b.dtype == dtype and a.shape == b.shape == (2, 12 * 32 * 32)
    assert np.allclose(wa, wb, rtol=0, atol=1e-10), _err(wb, wa)
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype]), _err(b, a)


@needs_cpu
def test_backproject_nest_is_reordered_ring_and_deterministic():
    lon, lat = tiling.regular()
    patches = np.random.default_rng(5).standard_normal((lon.size, 20, 20))
    ring = P.patches_to_healpix(patches, lon, lat, 16, 60.0, backend="cpu", nthreads=1)
    nest = P.patches_to_healpix(patches, lon, lat, 16, 60.0, nest=True, backend="cpu", nthreads=2)
    np.testing.assert_array_equal(hp.reorder(ring, r2n=True), nest)
    again = P.patches_to_healpix(patches, lon, lat, 16, 60.0, backend="cpu", nthreads=2)
    np.testing.assert_array_equal(ring, again)  # bitwise, any thread count


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_patches_are_skipped(backend):
    lon, lat = tiling.regular()
    patches = np.full((lon.size, 20, 20), 1.0)
    patches[:, :3, :3] = np.nan
    m = P.patches_to_healpix(patches, lon, lat, 16, 60.0, backend=backend)
    assert not np.isnan(m).any()
    assert np.all((np.abs(m - 1.0) < 1e-14) | (m == hp.UNSEEN))
    allnan = P.patches_to_healpix(np.full((1, 8, 8), np.nan), [0.0], [0.0], 8, 60.0,
                                  backend=backend)
    assert np.all(allnan == hp.UNSEEN)


def _zones(nside, lon, lat, npix, pixel_arcmin, step):
    """Taper value of every `step`-th pixel in its nearest patch: 1 = patch centre, < 1 = overlap."""
    er, ee, en = P._frames(lon, lat)
    v = np.stack(hp.pix2vec(nside, np.arange(0, 12 * nside**2, step)), axis=-1)
    t = np.empty(len(v))
    c, d = (npix - 1) / 2, np.radians(pixel_arcmin / 60)
    for s in range(0, len(v), 1 << 16):
        vv = v[s:s + (1 << 16)]
        k = np.argmax(vv @ er.T, axis=1)
        dot = np.sum(vv * er[k], 1)
        col = c + np.sum(vv * ee[k], 1) / dot / d
        row = c - np.sum(vv * en[k], 1) / dot / d
        t[s:s + (1 << 16)] = P._taper_1d(row, npix, 0.25) * P._taper_1d(col, npix, 0.25)
    return t


def _round_trip(nside, fwhm, npix, pixel_arcmin, layout, backend):
    m = _smooth_map(nside, fwhm)
    lon, lat = layout()
    p = P.healpix_to_patches(m, lon, lat, npix, pixel_arcmin, backend=backend)
    back = P.patches_to_healpix(p, lon, lat, nside, pixel_arcmin, backend=backend)
    err = (back - m) / m.std()
    rms = np.sqrt(np.mean(err**2))
    step = max(1, (12 * nside**2) // 3_000_000)  # a few million pixels are plenty for the zones
    zone = _zones(nside, lon, lat, npix, pixel_arcmin, step)
    err = err[::step]
    centre = np.sqrt(np.mean(err[zone == 1] ** 2))
    overlap = np.sqrt(np.mean(err[zone < 1] ** 2))
    return rms, centre, overlap


@pytest.mark.parametrize("layout", [tiling.regular, tiling.adaptive])
def test_round_trip_scaled_down(layout):
    """The Nside-2048 / 12' / 3.75' round trip scaled down 8x (Nside 256, 96', 30'): same
    pixel ratios, same 20 deg patches; relative RMS < 1 %, no excess error in overlaps."""
    backend = "cpu" if HAS_CPU else "numpy"
    rms, centre, overlap = _round_trip(256, 96.0, 40, 30.0, layout, backend)
    assert rms < 0.01, rms
    # A seam would show as a clear excess; allow 5 % for the different pixel mix.
    assert overlap <= 1.05 * centre, (overlap, centre)


@pytest.mark.slow
@needs_cpu
@pytest.mark.parametrize("layout", [tiling.regular, tiling.adaptive])
def test_round_trip_nside2048(layout):
    rms, centre, overlap = _round_trip(2048, 12.0, 320, 3.75, layout, "cpu")
    assert rms < 0.01, rms
    assert overlap <= 1.05 * centre, (overlap, centre)


# ------------------------------------------------------------------ spin 2
def _flat_eb(q, u, pixel_arcmin, ell_lo, ell_hi):
    """E and B power of a flat patch (x along columns, y up = -rows) in an ell band."""
    n = q.shape[-1]
    win = np.outer(np.hanning(n), np.hanning(n))
    fq, fu = np.fft.fft2(q * win), np.fft.fft2(u * win)
    kx = np.fft.fftfreq(n)[None, :] * np.ones((n, 1))
    ky = -np.fft.fftfreq(n)[:, None] * np.ones((1, n))
    ang = np.arctan2(ky, kx)
    e = fq * np.cos(2 * ang) + fu * np.sin(2 * ang)
    b = -fq * np.sin(2 * ang) + fu * np.cos(2 * ang)
    ell = 2 * np.pi * np.hypot(kx, ky) / np.radians(pixel_arcmin / 60)
    band = (ell > ell_lo) & (ell < ell_hi)
    return np.sum(np.abs(e[band]) ** 2), np.sum(np.abs(b[band]) ** 2)


@pytest.fixture(scope="module")
def pure_e_sky():
    nside, lmax = 256, 767
    ell = np.arange(lmax + 1)
    cl = np.zeros(lmax + 1)
    cl[100:] = np.exp(-(ell[100:] / 300.0) ** 2)
    zero = np.zeros_like(cl)
    alm = synalm([zero, cl, zero, zero, zero, zero], lmax, np.random.default_rng(3))
    return hp.alm2map(alm, nside, lmax=lmax, pol=True)  # T (zero), Q, U


@pytest.mark.parametrize("backend", BACKENDS)
def test_spin2_pure_e_stays_e(backend, pure_e_sky, capsys):
    _, q, u = pure_e_sky
    lon = np.array([0, 60, 120, 200, 300, 45, 0, 100.0])
    lat = np.array([80, 70, 60, -75, -85, 30, 0, 89.0])
    ratio = {}
    for pol in (True, False):
        p = P.healpix_to_patches(np.stack([q, u]), lon, lat, 128, 12.0, pol=pol, backend=backend)
        eb = np.array([_flat_eb(p[i, 0], p[i, 1], 12.0, 200, 400) for i in range(lon.size)])
        ratio[pol] = eb[:, 1].sum() / eb[:, 0].sum()
    with capsys.disabled():
        print(f"\n[{backend}] B/E power on flat patches of a pure-E sky: "
              f"{ratio[True]:.2e} with the spin-2 rotation, {ratio[False]:.2e} without")
    assert ratio[True] < 0.01
    assert ratio[False] > 10 * ratio[True]


def test_spin2_round_trip():
    backend = "cpu" if HAS_CPU else "numpy"
    # A red pure-E sky smoothed to 96' (the 8x scaled-down round trip of 12' at Nside 2048).
    nside, lmax = 256, 767
    cl = (np.arange(lmax + 1) + 1.0) ** -2.0
    zero = np.zeros_like(cl)
    alm = synalm([cl, cl, zero, zero, zero, zero], lmax, np.random.default_rng(4))
    alm = [hp.smoothalm(a, fwhm=np.radians(96 / 60.0)) for a in alm]
    tqu = hp.alm2map(alm, nside, lmax=lmax, pol=True)
    lon, lat = tiling.regular()
    p = P.healpix_to_patches(tqu, lon, lat, 40, 30.0, pol=True, backend=backend)
    assert p.shape == (lon.size, 3, 40, 40)
    plain = P.healpix_to_patches(tqu, lon, lat, 40, 30.0, backend=backend)
    np.testing.assert_array_equal(p[:, 0], plain[:, 0])  # T untouched
    # |P| is invariant under the rotation
    assert np.allclose(np.hypot(p[:, 1], p[:, 2]), np.hypot(plain[:, 1], plain[:, 2]), atol=1e-12)
    back = P.patches_to_healpix(p, lon, lat, 256, 30.0, pol=True, backend=backend)
    wrong = P.patches_to_healpix(p, lon, lat, 256, 30.0, pol=False, backend=backend)
    for a in (1, 2):
        good = np.sqrt(np.mean((back[a] - tqu[a]) ** 2)) / tqu[a].std()
        bad = np.sqrt(np.mean((wrong[a] - tqu[a]) ** 2)) / tqu[a].std()
        assert good < 0.02 and bad > 10 * good, (a, good, bad)


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spin2_cpu_vs_numpy(dtype):
    m = _rmap(64, k=3, seed=11, dtype=dtype)
    a = P.healpix_to_patches(m, LON, LAT, 20, 40.0, pol=True, backend="numpy")
    b = P.healpix_to_patches(m, LON, LAT, 20, 40.0, pol=True, backend="cpu")
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype] * 10), _err(b, a)
    lon, lat = tiling.regular()
    patches = np.random.default_rng(1).standard_normal((lon.size, 2, 20, 20)).astype(dtype)
    a = P.patches_to_healpix(patches, lon, lat, 16, 60.0, pol=True, backend="numpy")
    b = P.patches_to_healpix(patches, lon, lat, 16, 60.0, pol=True, backend="cpu")
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype]), _err(b, a)


# ------------------------------------------------------------------ errors
M16 = np.zeros(12 * 16 * 16)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(m=np.zeros(1000)), ValueError, "1000 pixels, which is not 12"),
    (dict(m=np.zeros((2, 2, 3072))), ValueError, "`m` must be 1-D"),
    (dict(m=np.array(["a"] * 3072)), TypeError, "`m` must be a real numeric array"),
    (dict(lon_deg=[0.0, 1.0]), ValueError, "`lon_deg` has 2 entries but `lat_deg` has 1"),
    (dict(lat_deg=[91.0]), ValueError, "within \\[-90, 90\\]"),
    (dict(lon_deg=[], lat_deg=[]), ValueError, "empty"),
    (dict(npix=1), ValueError, "`npix` must be an integer >= 2, got 1"),
    (dict(npix=3.5), ValueError, "`npix` must be an integer >= 2"),
    (dict(pixel_arcmin=0.0), ValueError, "`pixel_arcmin` must be a positive number"),
    (dict(pixel_arcmin=-3.0), ValueError, "`pixel_arcmin` must be a positive number"),
    (dict(interpolation="cubic"), ValueError, "`interpolation` must be one of"),
    (dict(backend="gpu"), ValueError, "backend='gpu' is not one of"),
    (dict(nthreads=-1), ValueError, "`nthreads` must be an integer >= 0"),
    (dict(pol=True), ValueError, "pol=True needs `m` to stack 2"),
])
def test_project_errors(kwargs, exc, match):
    args = dict(m=M16, lon_deg=[0.0], lat_deg=[0.0], npix=8, pixel_arcmin=60.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        P.healpix_to_patches(args.pop("m"), args.pop("lon_deg"), args.pop("lat_deg"), **args)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(patches=np.zeros((2, 8, 8))), ValueError, "`patches` has 2 patches but 1 centres"),
    (dict(patches=np.zeros((1, 8, 7))), ValueError, "`patches` must be \\(N, npix, npix\\)"),
    (dict(patches=np.zeros((8, 8))), ValueError, "`patches` must be \\(N, npix, npix\\)"),
    (dict(patches=np.zeros((1, 1, 1))), ValueError, "`npix` must be an integer >= 2"),
    (dict(patches=np.zeros((1, 8, 8), dtype=complex)), TypeError, "`patches` must be a real"),
    (dict(nside=12), ValueError, "`nside` must be a power of two"),
    (dict(nside=0), ValueError, "`nside` must be a power of two"),
    (dict(pixel_arcmin=float("nan")), ValueError, "`pixel_arcmin` must be a positive"),
    (dict(window="hann"), ValueError, "`window` must be one of"),
    (dict(window=np.ones((7, 7))), ValueError, "`window` array has shape \\(7, 7\\), expected"),
    (dict(window=-np.ones((8, 8))), ValueError, "non-negative"),
    (dict(window=np.zeros((8, 8))), ValueError, "not all zero"),
    (dict(window=np.array([["a"] * 8] * 8)), TypeError, "`window` must be"),
    (dict(interpolation="nearest"), ValueError, "`interpolation` must be one of"),
    (dict(taper_fraction=0.7), ValueError, "`taper_fraction` must be in"),
    (dict(lat_deg=[0.0, 1.0]), ValueError, "`lon_deg` has 1 entries but `lat_deg` has 2"),
    (dict(backend="tpu"), ValueError, "backend='tpu' is not one of"),
    (dict(pol=True), ValueError, "pol=True needs `patches` to stack 2"),
])
def test_backproject_errors(kwargs, exc, match):
    args = dict(patches=np.zeros((1, 8, 8)), lon_deg=[0.0], lat_deg=[0.0], nside=8,
                pixel_arcmin=60.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        P.patches_to_healpix(args.pop("patches"), args.pop("lon_deg"), args.pop("lat_deg"),
                             args.pop("nside"), **args)


@without_cuda_build
def test_cuda_requested_without_cuda_build():
    with pytest.raises(RuntimeError, match="built without CUDA support"):
        P.healpix_to_patches(M16, [0.0], [0.0], 8, 60.0, backend="cuda")
    with pytest.raises(RuntimeError, match="built without CUDA support"):
        P.patches_to_healpix(np.zeros((1, 8, 8)), [0.0], [0.0], 8, 60.0, backend="cuda")


# ------------------------------------------------------------------ the CUDA algorithm on CPU
@needs_cpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cubic", [False, True])
@pytest.mark.parametrize("nest", [False, True])
def test_gather_algorithm_matches_ring_algorithm(dtype, cubic, nest):
    """The per-pixel gather of the CUDA kernel (run here on the CPU) equals the CPU back-projection."""
    core = _dispatch._core
    lon, lat = tiling.adaptive()
    rng = np.random.default_rng(8)
    p = rng.standard_normal((lon.size, 3, 24, 24)).astype(dtype)
    win = rng.uniform(0, 1, (24, 24))
    for kind, w in ((0, np.zeros((1, 1))), (2, win)):
        args = (p, lon, lat, 32, np.radians(50 / 60), kind, w, 0.25, cubic, nest, True, True, 0)
        a, wa = core.patches_to_healpix(*args)
        b, wb = core.patches_to_healpix_gather(*args)
        assert np.allclose(a, b, rtol=0, atol=TOL[dtype]), _err(b, a)
        assert np.allclose(wa, wb, rtol=0, atol=1e-12), _err(wb, wa)


# ------------------------------------------------------------------ CUDA (skips without a GPU)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("pol", [False, True])
def test_cuda_project_matches_cpu(dtype, interpolation, pol):
    cp = pytest.importorskip("cupy")
    m = _rmap(256, k=3, seed=21, dtype=dtype)
    a = P.healpix_to_patches(m, LON, LAT, 64, 15.0, interpolation=interpolation, pol=pol,
                             backend="cpu")
    b = P.healpix_to_patches(cp.asarray(m), LON, LAT, 64, 15.0, interpolation=interpolation,
                             pol=pol, backend="cuda")
    assert isinstance(b, cp.ndarray) and b.dtype == dtype
    b = cp.asnumpy(b)
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype] * 10, equal_nan=True), _err(b, a)
    # auto picks CUDA for CuPy input; non-contiguous (Fortran-ordered) CuPy input works
    f = cp.asarray(np.asfortranarray(m))
    assert not f.flags.c_contiguous
    c = P.healpix_to_patches(f, LON, LAT, 64, 15.0, interpolation=interpolation, pol=pol)
    assert isinstance(c, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(c), b)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("nest", [False, True])
def test_cuda_backproject_matches_cpu(dtype, interpolation, nest):
    cp = pytest.importorskip("cupy")
    lon, lat = tiling.regular()
    p = np.random.default_rng(22).standard_normal((lon.size, 3, 40, 40)).astype(dtype)
    kw = dict(interpolation=interpolation, nest=nest, pol=True, return_weights=True)
    a, wa = P.patches_to_healpix(p, lon, lat, 64, 30.0, backend="cpu", **kw)
    b, wb = P.patches_to_healpix(cp.asarray(p), lon, lat, 64, 30.0, backend="cuda", **kw)
    assert isinstance(b, cp.ndarray) and isinstance(wb, cp.ndarray)
    b, wb = cp.asnumpy(b), cp.asnumpy(wb)
    assert np.allclose(a, b, rtol=0, atol=TOL[dtype]), _err(b, a)
    assert np.allclose(wa, wb, rtol=0, atol=1e-12), _err(wb, wa)
    again = cp.asnumpy(P.patches_to_healpix(cp.asarray(p), lon, lat, 64, 30.0, backend="cuda",
                                            **kw)[0])
    np.testing.assert_array_equal(b, again)  # deterministic: no atomics


@needs_cpu
def test_large_stacks_are_chunked():
    """More maps than one kernel call takes (16) are split and put back in order."""
    m = _rmap(8, k=17, seed=12)
    a = P.healpix_to_patches(m, LON[:3], LAT[:3], 6, 120.0, backend="numpy")
    b = P.healpix_to_patches(m, LON[:3], LAT[:3], 6, 120.0, backend="cpu")
    assert b.shape == (3, 17, 6, 6)
    assert np.allclose(a, b, rtol=0, atol=1e-10), _err(b, a)
    lon, lat = tiling.regular()
    p = np.random.default_rng(3).standard_normal((lon.size, 17, 8, 8))
    a, wa = P.patches_to_healpix(p, lon, lat, 4, 150.0, backend="numpy", return_weights=True)
    b, wb = P.patches_to_healpix(p, lon, lat, 4, 150.0, backend="cpu", return_weights=True)
    assert b.shape == (17, 192)
    assert np.allclose(a, b, rtol=0, atol=1e-10) and np.allclose(wa, wb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_centre_and_integer_map(backend):
    m = np.arange(12 * 4 * 4)  # integers become float64
    p = P.healpix_to_patches(m, 10.0, 20.0, 5, 60.0, backend=backend)
    assert p.shape == (1, 5, 5) and p.dtype == np.float64


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_quadrature_blend_is_sum_over_root_sum_of_squares(backend):
    """blend="quadrature": sum_k w_k p_k / sqrt(sum_k w_k^2). Flat windows and unit patches give
    sqrt(number of covering patches); the taper window agrees between backends."""
    lon, lat = tiling.regular(20.0, 5.0)
    lon, lat = lon[:60], lat[:60]
    nside, npix, px = 64, 40, 30.0
    ones = np.ones((lon.size, npix, npix))
    m, w = P.patches_to_healpix(ones, lon, lat, nside, px, window="flat",
                                         blend="quadrature", return_weights=True, backend=backend)
    cov = w > 0
    np.testing.assert_allclose(m[cov], np.sqrt(w[cov]), rtol=1e-12)
    assert np.all(m[~cov] == hp.UNSEEN)
    rng = np.random.default_rng()
    p = rng.standard_normal((lon.size, npix, npix))
    a = P.patches_to_healpix(p, lon, lat, nside, px, blend="quadrature", backend=backend)
    b = P.patches_to_healpix(p, lon, lat, nside, px, blend="quadrature", backend="numpy")
    ok = a != hp.UNSEEN
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="`blend`"):
        P.patches_to_healpix(p, lon, lat, nside, px, blend="max", backend=backend)
