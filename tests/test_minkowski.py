"""Minkowski functionals: analytic shapes, symmetries, Gaussian-field theory, backend agreement,
overlap_fraction and error paths."""
import numpy as np
import pytest
from scipy.special import erfc

from _shared import BACKENDS, needs_cpu, without_cuda_build
from forse import _dispatch
from forse import minkowski as mk


def report(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b))
    rel = d / np.maximum(np.abs(b), 1e-300)
    return (f"abs err min/mean/max {d.min():.3g}/{d.mean():.3g}/{d.max():.3g}, "
            f"rel err min/mean/max {rel.min():.3g}/{rel.mean():.3g}/{rel.max():.3g}")


def assert_close(a, b, rtol, atol, what=""):
    assert np.allclose(a, b, rtol=rtol, atol=atol), f"{what}: {report(a, b)}"


def distance_image(n, cx, cy):
    y, x = np.mgrid[:n, :n].astype(np.float64)
    return np.hypot(x - cx, y - cy)


# ------------------------------------------------------------------------------ analytic shapes
@pytest.mark.parametrize("backend", BACKENDS)
def test_disk_signed_distance(backend):
    """f = R - r is zero on a circle of radius R: area pi R^2, perimeter 2 pi R, one component."""
    n, radius = 161, 47.3
    f = radius - distance_image(n, 80.2, 79.6)
    u = np.array([0.0, 12.5])
    v0, v1, v2 = mk.functionals(f, u, backend=backend)
    r = radius - u
    assert_close(v0, np.pi * r**2, 2e-4, 0, "disk area")
    assert_close(v1, 2 * np.pi * r, 2e-4, 0, "disk perimeter")
    assert np.array_equal(v2, [1.0, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_square_exact(backend):
    """A k x k block of ones at u = 0.5: the boundary runs half a pixel outside the block with
    the four corners cut: area k^2 - 1/2, perimeter 4 (k - 1) + 2 sqrt(2), Euler 1."""
    k = 7
    img = np.zeros((20, 23))
    img[5:5 + k, 8:8 + k] = 1.0
    v0, v1, v2 = mk.functionals(img, [0.5], backend=backend)
    assert v0[0] == pytest.approx(k * k - 0.5, abs=1e-12)
    assert v1[0] == pytest.approx(4 * (k - 1) + 2 * np.sqrt(2), abs=1e-12)
    assert v2[0] == 1.0
    # a threshold above or below everything
    v0, v1, v2 = mk.functionals(img, [-1.0, 2.0], backend=backend)
    assert np.array_equal(v0, [19 * 22, 0.0]) and np.array_equal(v1, [0.0, 0.0])
    assert np.array_equal(v2, [0.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_binary_disk_annulus_two_disks(backend):
    n = 200
    r1 = distance_image(n, 70.3, 99.1)
    r2 = distance_image(n, 140.7, 101.4)
    disk = (r1 < 25).astype(np.float64)
    annulus = ((r1 < 30) & (r1 > 15)).astype(np.float64)
    two = ((r1 < 25) | (r2 < 20)).astype(np.float64)
    v0, v1, v2 = mk.functionals(np.stack([disk, annulus, two]), [0.5], backend=backend)
    assert list(v2[:, 0]) == [1.0, 0.0, 2.0]
    # pixelised shapes: area within 1 %, perimeter within 6 % (staircase corners are cut)
    assert v0[0, 0] == pytest.approx(np.pi * 25**2, rel=0.01)
    assert v0[1, 0] == pytest.approx(np.pi * (30**2 - 15**2), rel=0.01)
    assert v1[0, 0] == pytest.approx(2 * np.pi * 25, rel=0.06)
    assert v1[2, 0] == pytest.approx(2 * np.pi * 45, rel=0.06)


@pytest.mark.parametrize("backend", BACKENDS)
def test_saddle_resolution_by_mean(backend):
    """A 2x2 image with diagonal corners above: connected (Euler -1/2 over the single cell)
    when the mean is above the threshold, separate (+1/2) otherwise; area consistent."""
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    v0, v1, v2 = mk.functionals(img, [0.4, 0.6], backend=backend)
    # u = 0.4: mean 0.5 > u, connected: square minus two triangles with legs 0.4
    assert v0[0] == pytest.approx(1 - 2 * 0.5 * 0.4 * 0.4, abs=1e-14)
    assert v1[0] == pytest.approx(2 * 0.4 * np.sqrt(2), abs=1e-14)
    assert v2[0] == -0.5
    # u = 0.6: mean 0.5 < u, separate: two triangles with legs 0.4 at the above corners
    assert v0[1] == pytest.approx(2 * 0.5 * 0.4 * 0.4, abs=1e-14)
    assert v1[1] == pytest.approx(2 * 0.4 * np.sqrt(2), abs=1e-14)
    assert v2[1] == 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_and_transposition_invariance(backend):
    rng = np.random.default_rng(3)
    img = rng.standard_normal((2, 33, 41))
    u = np.linspace(-2, 2, 9)
    ref = mk.functionals(img, u, backend=backend)
    for other in (np.rot90(img, 1, axes=(1, 2)), np.rot90(img, 2, axes=(1, 2)),
                  np.rot90(img, 3, axes=(1, 2)), img.transpose(0, 2, 1), img[:, ::-1, :]):
        got = mk.functionals(other, u, backend=backend)
        for a, b in zip(got, ref):
            assert_close(a, b, 1e-12, 1e-9, "rotated/transposed")


# --------------------------------------------------------------------- Gaussian random fields
def gaussian_field(n, s, count, seed):
    """Periodic GRF: white noise filtered by exp(-k^2 s^2 / 2) (k in radians per pixel).
    Returns the fields, sigma and lambda = Var(df/dx) / sigma^2, both from the exact discrete
    spectrum, in pixel units."""
    rng = np.random.default_rng(seed)
    k = 2 * np.pi * np.fft.fftfreq(n)
    a2 = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) * s * s)
    w = rng.standard_normal((count, n, n))
    f = np.fft.ifft2(np.fft.fft2(w) * np.sqrt(a2)).real
    var = a2.sum() / n**2
    var_x = (k[:, None] ** 2 * a2).sum() / n**2
    return f, np.sqrt(var), var_x / var


@needs_cpu
def test_gaussian_field_theory():
    """Per unit area (pixel^2), with nu = u / sigma and lambda = Var(df/dx) / sigma^2:
    v0 = erfc(nu / sqrt 2) / 2, v1 = sqrt(lambda) / 2 exp(-nu^2 / 2) (Rice: E|grad f| times the
    density of f at u), v2 = lambda / (2 pi)^(3/2) nu exp(-nu^2 / 2). For a smoothing length
    s, lambda = 1 / (2 s^2)."""
    f, sigma, lam = gaussian_field(1024, 3.0, 4, seed=0)
    assert lam == pytest.approx(1 / (2 * 3.0**2), rel=1e-6)
    nu = np.linspace(-3, 3, 25)
    v0, v1, v2 = (v.mean(axis=0) for v in mk.functionals(f, nu * sigma, normalize=True))
    t0 = 0.5 * erfc(nu / np.sqrt(2))
    t1 = 0.5 * np.sqrt(lam) * np.exp(-nu**2 / 2)
    t2 = lam / (2 * np.pi) ** 1.5 * nu * np.exp(-nu**2 / 2)
    assert np.abs(v0 - t0).max() < 0.015, report(v0, t0)
    assert np.abs(v1 - t1).max() < 0.03 * t1.max(), report(v1, t1)
    assert np.abs(v2 - t2).max() < 0.06 * np.abs(t2).max(), report(v2, t2)


# --------------------------------------------------------------------------- backend agreement
TOL = {np.float64: 1e-11, np.float32: 1e-11}


@pytest.fixture(params=["simd", "portable"])
def cpu_path(request):
    """Run a test with the AVX2 path of the CPU kernel (where the CPU has it) and without."""
    core = _dispatch._core
    before = core.minkowski_cpu_simd(-1) if core is not None else False
    if core is not None:
        core.minkowski_cpu_simd(1 if request.param == "simd" else 0)
    yield request.param
    if core is not None:
        core.minkowski_cpu_simd(1 if before else 0)


@needs_cpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_cpu_matches_numpy(dtype, nthreads, cpu_path):
    rng = np.random.default_rng(11)
    img = rng.standard_normal((5, 37, 29)).astype(dtype)
    img[1, 10:14, 3:9] = dtype(0.25)  # plateau exactly at a threshold: equal corners
    img[2, 5, 7] = np.nan  # cells touching it are skipped
    u = rng.uniform(-2.5, 2.5, 17)
    u[[3, 4]] = u[5]  # duplicates
    u[0] = 0.25
    ref = mk.functionals(img, u, backend="numpy")
    got = mk.functionals(img, u, backend="cpu", nthreads=nthreads)
    for name, a, b in zip(("v0", "v1", "v2"), got, ref):
        assert a.dtype == np.float64 and a.shape == (5, 17)
        assert_close(a, b, TOL[dtype], TOL[dtype] * 37 * 29, f"{name} {dtype.__name__}")
    # float32 input is measured as float32 values (no rounding through float64 inputs)
    if dtype == np.float32:
        ref64 = mk.functionals(img.astype(np.float64), u, backend="numpy")
        assert np.array_equal(ref64[2], got[2])


@needs_cpu
def test_cpu_paths_agree_on_fields(cpu_path):
    """Smooth fields with many thresholds: cells crossed by several thresholds exercise every
    slot of the SIMD path and the per-cell remainder."""
    f, sigma, _ = gaussian_field(96, 1.2, 3, seed=7)
    f[1, 40, 50] = np.nan
    u = np.linspace(-3, 3, 64) * sigma
    ref = mk.functionals(f, u, backend="numpy")
    got = mk.functionals(f, u, backend="cpu")
    for name, a, b in zip(("v0", "v1", "v2"), got, ref):
        assert_close(a, b, 1e-11, 1e-11 * 96 * 96, name)


@needs_cpu
def test_cpu_deterministic_and_layouts():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 64, 80))
    u = np.linspace(-2, 2, 32)
    a = mk.functionals(base, u, backend="cpu", nthreads=1)
    b = mk.functionals(base, u, backend="cpu", nthreads=2)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)  # bitwise: the work split does not depend on threads
    strided = np.asfortranarray(base)[:, ::2, ::-1]
    c = mk.functionals(strided, u, backend="cpu")
    d = mk.functionals(np.ascontiguousarray(strided), u, backend="numpy")
    for x, y in zip(c, d):
        assert_close(x, y, 1e-11, 1e-8, "strided")
    big_endian = base.astype(">f8")
    for x, y in zip(mk.functionals(big_endian, u, backend="cpu"), a):
        assert np.array_equal(x, y)
    ints = (base * 10).astype(np.int32)
    for x, y in zip(mk.functionals(ints, u * 10, backend="cpu"),
                    mk.functionals(ints.astype(np.float64), u * 10, backend="numpy")):
        assert_close(x, y, 1e-11, 1e-8, "int32")


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_order_and_normalize(backend):
    rng = np.random.default_rng(2)
    img = rng.standard_normal((21, 30))
    u = np.array([0.5, -1.0, 0.0, 2.0])
    v = mk.functionals(img, u, backend=backend)
    assert all(x.shape == (4,) for x in v)
    order = np.argsort(u)
    vs = mk.functionals(img[None], u[order], backend=backend)
    for x, y in zip(v, vs):
        assert np.array_equal(x[order], y[0])
    vn = mk.functionals(img, u, normalize=True, backend=backend)
    for x, y in zip(vn, v):
        assert_close(x, y / (20 * 29), 1e-15, 0, "normalize")
    assert np.all((vn[0] >= 0) & (vn[0] <= 1))


@needs_cpu
def test_many_small_images_and_empty_stack():
    """More images than one batch of the C++ kernel (2048), and no image at all."""
    rng = np.random.default_rng(8)
    img = rng.standard_normal((2100, 4, 5))
    u = np.array([-0.5, 0.0, 0.7])
    for a, b in zip(mk.functionals(img, u, backend="cpu"), mk.functionals(img, u, backend="numpy")):
        assert_close(a, b, 1e-12, 1e-12, "batches")
    for backend in BACKENDS:
        v = mk.functionals(np.zeros((0, 4, 5)), u, backend=backend)
        assert all(x.shape == (0, 3) for x in v)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_nan_image(backend):
    img = np.full((2, 8, 9), np.nan)
    v0, v1, v2 = mk.functionals(img, [0.0, 1.0], backend=backend)
    assert not np.any(v0) and not np.any(v1) and not np.any(v2)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_matches_cpu(dtype):
    cupy = pytest.importorskip("cupy")
    rng = np.random.default_rng(21)
    img = rng.standard_normal((7, 65, 90)).astype(dtype)
    img[3, 4, 4] = np.nan
    u = np.sort(rng.uniform(-3, 3, 32))
    ref = mk.functionals(img, u, backend="cpu")
    got = mk.functionals(cupy.asarray(img), u, backend="cuda")
    for a, b in zip(got, ref):
        assert isinstance(a, cupy.ndarray)
        assert_close(cupy.asnumpy(a), b, 1e-11, 1e-11 * 65 * 90, f"cuda {dtype.__name__}")
    again = mk.functionals(cupy.asarray(img), u, backend="cuda")
    for a, b in zip(got, again):
        assert bool((a == b).all())  # deterministic


# ----------------------------------------------------------------------------- overlap metric
def band_curves(lower, upper):
    """Two curves whose mean +- std (ddof=0) band is exactly [lower, upper]."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    return np.stack([lower, upper])


def test_overlap_identical_and_disjoint():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((10, 16))
    assert mk.overlap_fraction(a, a) == 1.0
    assert mk.overlap_fraction(a, a + 100.0) == 0.0
    flat = np.ones((3, 5))
    assert mk.overlap_fraction(flat, flat) == 1.0  # zero-width bands that coincide


def test_overlap_hand_computed():
    # band a = [0, 1]; band b from [-0.5, 0.5] to [0.5, 1.5] over x in [0, 1]:
    # intersection 0.5 + x for x < 0.5, 1.5 - x after: area 0.75; union 1 + 1 - 0.75 = 1.25
    a = band_curves([0, 0], [1, 1])
    b = band_curves([-0.5, 0.5], [0.5, 1.5])
    assert mk.overlap_fraction(a, b) == pytest.approx(0.6, abs=1e-15)
    # both edges of b crossing inside the interval: b lower from -0.5 to 1.5, width 1:
    # intersection 0.5 + 2x on [0, 0.25] (b's upper edge below 1), 1.5 - 2x on [0.25, 0.75],
    # 0 after: area 0.1875 + 0.25 = 0.4375; union 2 - 0.4375 = 1.5625
    b2 = band_curves([-0.5, 1.5], [0.5, 2.5])
    assert mk.overlap_fraction(a, b2) == pytest.approx(0.4375 / 1.5625, abs=1e-15)
    # the x axis: identical on the first interval, b moving up by 5 on the second, where the
    # intersection is 1 - 5s for s < 0.2 (area 0.1 per unit length) and the union 1.9
    a3 = band_curves([0, 0, 0], [1, 1, 1])
    b3 = band_curves([0, 0, 5], [1, 1, 6])
    assert mk.overlap_fraction(a3, b3) == pytest.approx(1.1 / 2.9, abs=1e-15)
    assert mk.overlap_fraction(a3, b3, x=[0, 10, 11]) == pytest.approx(10.1 / 11.9, abs=1e-15)


def brute_overlap(a, b, x, m=200001):
    xs = np.linspace(x[0], x[-1], m)

    def band(c):
        mu, sd = c.mean(0), c.std(0)
        return np.interp(xs, x, mu - sd), np.interp(xs, x, mu + sd)

    la, ua = band(a)
    lb, ub = band(b)
    inter = np.maximum(0, np.minimum(ua, ub) - np.maximum(la, lb))
    union = (ua - la) + (ub - lb) - inter
    return np.trapezoid(inter, xs) / np.trapezoid(union, xs)


def test_overlap_random_against_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(5):
        t = 12
        x = np.cumsum(rng.uniform(0.1, 1.0, t))
        a = rng.standard_normal((20, t)) + np.sin(x)
        b = 0.7 * rng.standard_normal((15, t)) + np.cos(x)
        exact = mk.overlap_fraction(a, b, x=x)
        assert 0 <= exact <= 1
        assert exact == pytest.approx(brute_overlap(a, b, x), abs=2e-6)
        assert mk.overlap_fraction(b, a, x=x) == pytest.approx(exact, abs=1e-14)


# ------------------------------------------------------------------------------- error paths
def test_errors():
    img = np.zeros((4, 5))
    with pytest.raises(ValueError, match="`thresholds` must be 1-D, got shape"):
        mk.functionals(img, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="`thresholds` must hold at least one value"):
        mk.functionals(img, [])
    with pytest.raises(ValueError, match="`thresholds` must be finite"):
        mk.functionals(img, [0.0, np.nan])
    with pytest.raises(TypeError, match="`thresholds` must be a real numeric array"):
        mk.functionals(img, ["a"])
    with pytest.raises(ValueError, match=r"`images` must be 2-D \(ny, nx\) or 3-D"):
        mk.functionals(np.zeros(5), [0.0])
    with pytest.raises(ValueError, match=r"`images` must be 2-D \(ny, nx\) or 3-D"):
        mk.functionals(np.zeros((2, 2, 3, 3)), [0.0])
    with pytest.raises(ValueError, match="at least 2x2 pixels"):
        mk.functionals(np.zeros((1, 5)), [0.0])
    with pytest.raises(TypeError, match="`images` must be a real numeric array"):
        mk.functionals(np.zeros((3, 3), complex), [0.0])
    with pytest.raises(ValueError, match="backend='gpu' is not one of"):
        mk.functionals(img, [0.0], backend="gpu")


@without_cuda_build
def test_cuda_on_cpu_only_build():
    with pytest.raises(RuntimeError, match="built without CUDA support"):
        mk.functionals(np.zeros((4, 5)), [0.0], backend="cuda")


@needs_cpu
def test_core_rejects_unvalidated_arrays():
    core = _dispatch._core
    u = np.zeros(2)
    with pytest.raises(ValueError, match="C-contiguous"):
        core.minkowski_cpu(np.zeros((2, 4, 6))[:, :, ::2], u, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        core.minkowski_cpu(np.zeros((2, 4, 6), np.int64), u, 0)
    with pytest.raises(TypeError, match="C-contiguous float64"):
        core.minkowski_cpu(np.zeros((2, 4, 6)), u.astype(np.float32), 0)
    with pytest.raises(ValueError, match="3-D"):
        core.minkowski_cpu(np.zeros((4, 6)), u, 0)


def test_overlap_errors():
    a = np.zeros((3, 5))
    with pytest.raises(ValueError, match="`curves_a` has 5 thresholds but `curves_b` has 4"):
        mk.overlap_fraction(a, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"`curves_b` must be \(N, T\) curves"):
        mk.overlap_fraction(a, np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="`curves_a` must be finite"):
        mk.overlap_fraction(np.full((3, 5), np.nan), a)
    with pytest.raises(TypeError, match="`curves_a` must be a real numeric array"):
        mk.overlap_fraction(np.zeros((3, 5), complex), a)
    with pytest.raises(ValueError, match="`x` must be"):
        mk.overlap_fraction(a, a, x=[0, 1, 1, 2, 3])


# ------------------------------------------------------- the quality metric: nu, minmax, ceiling
def test_thresholds_of_the_two_variants():
    np.testing.assert_allclose(mk.thresholds("nu"), np.linspace(-3, 3, 32))
    np.testing.assert_allclose(mk.thresholds("minmax"), np.linspace(-1, 1, 32))
    assert mk.thresholds("nu", 8).size == 8
    with pytest.raises(ValueError, match="variant"):
        mk.thresholds("sigma")
    with pytest.raises(ValueError, match="n_thresholds"):
        mk.thresholds("nu", 1)


def test_standardize_and_minmax_ignore_nan():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 20, 20)) * 4 + 9
    x[0, :2] = np.nan
    z = mk.standardize(x)
    assert np.isnan(z[0, :2]).all() and np.isfinite(z[0, 2:]).all()
    np.testing.assert_allclose(np.nanmean(z, axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(z, axis=(1, 2)), 1, rtol=1e-12)
    m = mk.minmax(x)
    np.testing.assert_allclose(np.nanmin(m, axis=(1, 2)), -1)
    np.testing.assert_allclose(np.nanmax(m, axis=(1, 2)), 1)
    const = np.full((1, 8, 8), 5.0)
    assert np.all(mk.standardize(const) == 0) and np.all(mk.minmax(const) == -1)


@pytest.mark.parametrize("variant", mk.VARIANTS)
def test_metric_is_invariant_to_affine_changes_of_a_patch(variant):
    """a * x + b (a > 0, per patch) changes neither the curves nor the score."""
    rng = np.random.default_rng(2)
    x = gaussian_field(64, 2.0, 6, seed=3)[0]
    a = rng.uniform(0.1, 50.0, size=(6, 1, 1))
    b = rng.uniform(-100.0, 100.0, size=(6, 1, 1))
    u, *c1 = mk.curves(x, variant)
    _, *c2 = mk.curves(a * x + b, variant)
    for p, q in zip(c1, c2):
        np.testing.assert_allclose(p, q, atol=1e-9)
    assert mk.score(x, a * x + b, variant) == pytest.approx(
        {"v0": 1.0, "v1": 1.0, "v2": 1.0, "score": 1.0}, abs=1e-9)
    # a sign flip is not an affine change with a > 0: V0 mirrors, the score drops
    if variant == "nu":
        assert mk.score(x, -x, variant)["v2"] < 0.9


@needs_cpu
def test_nu_v0_of_a_gaussian_field_matches_erfc():
    """Standardized per patch, a Gaussian random field's V0(nu) is erfc(nu / sqrt 2) / 2
    (forse.validate.gaussian_functionals), V1 and V2 follow Tomita's shapes."""
    from forse.validate import gaussian_functionals

    f, sigma, lam = gaussian_field(256, 3.0, 16, seed=4)
    nu, v0, v1, v2 = mk.curves(f, "nu")
    t0, t1, t2 = gaussian_functionals(nu, 1.0, np.sqrt(2 * lam))
    assert np.abs(v0.mean(axis=0) - t0).max() < 0.02, report(v0.mean(axis=0), t0)
    assert np.abs(v1.mean(axis=0) - t1).max() < 0.05 * t1.max()
    assert np.abs(v2.mean(axis=0) - t2).max() < 0.1 * np.abs(t2).max()


def test_ceiling_of_identical_halves_is_one_and_of_a_field_is_high():
    f = gaussian_field(64, 2.0, 8, seed=5)[0]
    for variant in mk.VARIANTS:
        c = mk.ceiling(np.concatenate([f, f]), variant)
        assert c == pytest.approx({"v0": 1.0, "v1": 1.0, "v2": 1.0, "score": 1.0}, abs=1e-12)
    # independent halves of one Gaussian field: high but below 1
    g = gaussian_field(64, 2.0, 64, seed=6)[0]
    c = mk.ceiling(g, "nu")
    assert 0.5 < c["score"] < 1.0
    # an odd count: first N // 2 against the rest
    a, b = mk.halves(tuple(np.arange(5)[:, None] * np.ones((1, 3)) for _ in range(3)))
    assert a[0].shape == (2, 3) and b[0].shape == (3, 3)
    with pytest.raises(ValueError, match="at least 2"):
        mk.ceiling(g[:1])


def test_score_separates_gaussian_from_non_gaussian():
    g = gaussian_field(64, 2.0, 32, seed=7)[0]
    h = gaussian_field(64, 2.0, 32, seed=8)[0]
    logn = np.exp(1.2 * h / h.std())  # skewed
    same = mk.score(h, g, "nu")
    other = mk.score(logn, g, "nu")
    assert same["score"] > 0.6 and other["v0"] < 0.2 and other["score"] < same["score"]


def test_score_errors():
    x = np.zeros((2, 16, 16))
    with pytest.raises(ValueError, match="same patch size"):
        mk.score(x, x[:, :8, :8])
    with pytest.raises(ValueError, match=r"stack \(N, ny, nx\)"):
        mk.score(x[0], x)
    with pytest.raises(ValueError, match="variant"):
        mk.score(x, x, "raw")
