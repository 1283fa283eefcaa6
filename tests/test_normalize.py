"""forse.normalize: rescaling for the network and normalization to physical units."""
import importlib
import sys
import types

import numpy as np
import pytest

from forse.normalize import rescale, rescale_back, to_physical

PIX = 3.75  # arcmin
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _private_flat_power_spectrum(images, pixel_arcmin, *, ell_edges, apodize_deg=1.0):
    """Apodized binned FFT estimator, used only while forse.spectra is not in this branch."""
    a = np.asarray(images, dtype=np.float64)
    single = a.ndim == 2
    a = a.reshape((-1,) + a.shape[-2:])
    n = a.shape[-1]
    pix = pixel_arcmin * np.pi / 10800.0
    width = apodize_deg * 60.0 / pixel_arcmin
    d = np.minimum(np.arange(n), n - 1 - np.arange(n)).astype(float)
    w1 = np.where(d < width, 0.5 * (1 - np.cos(np.pi * d / max(width, 1e-12))), 1.0)
    win = w1[:, None] * w1[None, :]
    a = a - a.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(a * win)) ** 2 * pix ** 2 / (n * n * np.mean(win ** 2))
    k = 2 * np.pi * np.fft.fftfreq(n, d=pix)
    ell = np.hypot(k[:, None], k[None, :]).ravel()
    idx = np.digitize(ell, ell_edges) - 1
    nb = len(ell_edges) - 1
    ok = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[ok], minlength=nb)
    cl = np.stack([np.bincount(idx[ok], weights=p.ravel()[ok], minlength=nb) / counts
                   for p in power])
    ell_eff = np.bincount(idx[ok], weights=ell[ok], minlength=nb) / counts
    return ell_eff, (cl[0] if single else cl)


@pytest.fixture(autouse=True)
def _spectra(monkeypatch):
    try:
        importlib.import_module("forse.spectra")
    except ImportError:
        mod = types.ModuleType("forse.spectra")
        mod.flat_power_spectrum = _private_flat_power_spectrum
        monkeypatch.setitem(sys.modules, "forse.spectra", mod)


def field(rng, shape, smooth_pix, amp=1.0):
    """Gaussian random field with a Gaussian-smoothed white spectrum, unit std times ``amp``."""
    n = shape[-1]
    k = np.fft.fftfreq(n)
    filt = np.exp(-0.5 * (2 * np.pi * smooth_pix) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    f = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * filt))
    f -= f.mean(axis=(-2, -1), keepdims=True)
    return amp * f / f.std(axis=(-2, -1), keepdims=True)


def sky(rng, shape):
    """(lr, gauss): a smooth positive patch and the same plus modulated small scales."""
    lr = 100.0 + field(rng, shape, 6.0, 15.0)
    gauss = lr * (1.0 + 0.05 * field(rng, shape, 1.0))
    return lr, gauss


def blob(n, sigma_pix, height):
    y, x = np.mgrid[:n, :n] - (n - 1) / 2.0
    r2 = x ** 2 + y ** 2
    return height * np.exp(-0.5 * r2 / sigma_pix ** 2), np.sqrt(r2)


# ----------------------------------------------------------------------------- rescale
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(16, 16), (3, 16, 16), (2, 3, 15, 15)])
def test_rescale_minmax_and_back(dtype, shape):
    rng = np.random.default_rng(1)
    x = (50 + 10 * rng.standard_normal(shape)).astype(dtype)
    y, lo, hi = rescale(x, robust=False)
    assert y.dtype == dtype and y.shape == shape
    assert lo.shape == shape[:-2] and hi.shape == shape[:-2] and lo.dtype == dtype
    np.testing.assert_array_equal(lo, x.min(axis=(-2, -1)))
    np.testing.assert_array_equal(hi, x.max(axis=(-2, -1)))
    np.testing.assert_allclose(y.min(axis=(-2, -1)), -1.0, **TOL[dtype])
    np.testing.assert_allclose(y.max(axis=(-2, -1)), 1.0, **TOL[dtype])
    ref = 2 * (x.astype(float) - x.min(axis=(-2, -1), keepdims=True)) / np.ptp(
        x.astype(float), axis=(-2, -1), keepdims=True) - 1
    np.testing.assert_allclose(y, ref, **TOL[dtype])
    back = rescale_back(y, lo, hi)
    assert back.dtype == dtype
    np.testing.assert_allclose(back, x, rtol=TOL[dtype]["rtol"] * 10, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rescale_robust_percentiles_and_clip(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 32, 32)).astype(dtype)
    y, lo, hi = rescale(x, percentiles=(2.0, 98.0))
    # a Gaussian patch has no pixel beyond OUTLIER_NSIGMA: plain percentiles
    np.testing.assert_allclose(lo, np.percentile(x.astype(float), 2.0, axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(hi, np.percentile(x.astype(float), 98.0, axis=(1, 2)), rtol=1e-6)
    assert y.min() == -1 and y.max() == 1
    inside = (x > lo[:, None, None]) & (x < hi[:, None, None])
    np.testing.assert_allclose(rescale_back(y, lo, hi)[inside], x[inside], **TOL[dtype])
    clipped = ~inside
    assert 0.03 < clipped.mean() < 0.05  # 4 % clipped, back at the bounds
    np.testing.assert_allclose(np.abs(y[clipped]), 1.0)


def test_rescale_ignores_and_keeps_nan():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 16))
    x[0, :4] = np.nan
    y, lo, hi = rescale(x, robust=False)
    assert np.isnan(y[0, :4]).all() and np.isfinite(y[0, 4:]).all() and np.isfinite(y[1]).all()
    assert lo[0] == np.nanmin(x[0]) and hi[0] == np.nanmax(x[0])
    y, lo, hi = rescale(x)
    assert np.isnan(y[0, :4]).all() and np.isfinite(lo).all() and np.isfinite(hi).all()


def test_rescale_int_input_is_float64():
    y, lo, hi = rescale(np.arange(16).reshape(4, 4), robust=False)
    assert y.dtype == np.float64 and lo == 0 and hi == 15


@pytest.mark.parametrize("fwhm_arcmin", [12.0, 80.0])
def test_rescale_bright_source_does_not_squash_patch(fwhm_arcmin):
    rng = np.random.default_rng(4)
    n = 128
    x = 100 + field(rng, (n, n), 5.0, 10.0)
    # at 80 arcmin the source covers far more pixels than the 0.5 % tail of the percentiles
    sigma = fwhm_arcmin / 2.355 / PIX
    src, r = blob(n, sigma, 1e4)
    ys, los, his = rescale(x + src)
    y0, lo0, hi0 = rescale(x)
    far = r > 5 * sigma
    assert abs(his - hi0) < 0.05 * (hi0 - lo0) and abs(los - lo0) < 0.05 * (hi0 - lo0)
    np.testing.assert_allclose(ys[far], y0[far], atol=0.08)
    # ForSE's min-max range is set by the source: the rest of the patch is squashed near -1
    ym, _, _ = rescale(x + src, robust=False)
    assert np.ptp(ym[far]) < 0.02


def test_rescale_many_compact_sources_and_inf():
    rng = np.random.default_rng(17)
    n = 128
    x = 100 + field(rng, (n, n), 5.0, 10.0)
    y0, lo0, hi0 = rescale(x)
    xs = x.copy()
    src = np.zeros((n, n))
    iy, ix = rng.integers(4, n - 4, size=(2, 40))
    src[iy, ix] = rng.uniform(1e3, 1e5, 40)
    k = np.fft.fftfreq(n)
    beam = np.exp(-0.5 * (2 * np.pi * 12 / 2.355 / PIX) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    xs += np.real(np.fft.ifft2(np.fft.fft2(src) * beam))
    _, lo, hi = rescale(xs)
    assert abs(hi - hi0) < 0.05 * (hi0 - lo0) and abs(lo - lo0) < 0.05 * (hi0 - lo0)
    xs[0, 0] = np.inf
    for robust in (True, False):
        _, lo, hi = rescale(xs, robust=robust)
        assert np.isfinite(lo) and np.isfinite(hi)


@pytest.mark.parametrize("shape,match", [
    ((3, 8, 8), r"`x` patch 1 has zero range"),
    ((2, 3, 8, 8), r"`x` patch \(0, 1\) has zero range"),
])
def test_rescale_zero_range_names_patch(shape, match):
    x = np.random.default_rng(5).standard_normal(shape)
    x.reshape((-1, 8, 8))[1] = 7.0
    for robust in (True, False):
        with pytest.raises(ValueError, match=match):
            rescale(x, robust=robust)


def test_rescale_errors():
    with pytest.raises(ValueError, match=r"`x` has zero range"):
        rescale(np.ones((4, 4)))
    x = np.zeros((2, 4, 4))
    x[1] = np.nan
    x[0, 0, 0] = 1
    with pytest.raises(ValueError, match=r"`x` patch 1 has no finite pixel"):
        rescale(x)
    with pytest.raises(ValueError, match=r"`x` must have at least 2 dimensions.*\(5,\)"):
        rescale(np.arange(5.0))
    with pytest.raises(TypeError, match=r"`x` must be a real numeric array, got dtype complex"):
        rescale(np.ones((4, 4), complex))
    with pytest.raises(ValueError, match=r"`percentiles` must be two increasing"):
        rescale(np.eye(4), percentiles=(99, 1))
    with pytest.raises(ValueError, match=r"`lo` has shape \(2,\), expected \(3,\)"):
        rescale_back(np.zeros((3, 4, 4)), np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match=r"`hi` has shape \(3,\), expected \(\)"):
        rescale_back(np.zeros((4, 4)), 0.0, np.ones(3))


# ----------------------------------------------------------------------------- to_physical
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("robust", [True, False])
def test_to_physical_identity(dtype, robust):
    """A generated patch equal to the rescaled Gaussian ratio comes back as the Gaussian patch."""
    rng = np.random.default_rng(6)
    lr, gauss = sky(rng, (3, 64, 64))
    lr, gauss = lr.astype(dtype), gauss.astype(dtype)
    gen, lo, hi = rescale(gauss.astype(float) / lr, robust=robust)
    hr, info = to_physical(gen.astype(dtype), lr, gauss, pixel_arcmin=PIX, robust=robust,
                           return_info=True)
    assert hr.dtype == dtype and hr.shape == lr.shape
    tol = dict(rtol=1e-5, atol=0) if dtype == np.float32 else dict(rtol=1e-11, atol=0)
    np.testing.assert_allclose(info["amplitude"], 1.0, **tol)
    # clipped pixels carry no amplitude information: they come back at the rescale bounds
    free = np.abs(gen) < 1 if robust else np.ones(gen.shape, bool)
    assert free.mean() > 0.98
    np.testing.assert_allclose(hr[free], gauss[free], **tol)
    bound = np.where(gen > 0, hi[:, None, None], lo[:, None, None])
    np.testing.assert_allclose((hr / lr)[~free], bound[~free], rtol=10 * tol["rtol"])
    np.testing.assert_allclose(info["mean"], np.mean(gauss.astype(float) / lr, axis=(1, 2)),
                               rtol=1e-4 if robust else 1e-10)


def test_to_physical_single_patch_matches_stack():
    rng = np.random.default_rng(7)
    lr, gauss = sky(rng, (3, 48, 48))
    gen = np.tanh(field(rng, (3, 48, 48), 1.2))
    stack = to_physical(gen, lr, gauss, pixel_arcmin=PIX)
    for i in range(3):
        np.testing.assert_allclose(to_physical(gen[i], lr[i], gauss[i], pixel_arcmin=PIX),
                                   stack[i], rtol=1e-12)
    deep = to_physical(gen[None], lr[None], gauss[None], pixel_arcmin=PIX)
    assert deep.shape == (1, 3, 48, 48)
    np.testing.assert_allclose(deep[0], stack, rtol=1e-12)


def test_to_physical_mixed_dtypes_promote():
    rng = np.random.default_rng(8)
    lr, gauss = sky(rng, (2, 32, 32))
    gen = np.tanh(field(rng, (2, 32, 32), 1.0)).astype(np.float32)
    assert to_physical(gen, lr.astype(np.float32), gauss.astype(np.float32),
                       pixel_arcmin=PIX).dtype == np.float32
    assert to_physical(gen, lr, gauss.astype(np.float32), pixel_arcmin=PIX).dtype == np.float64


@pytest.mark.parametrize("robust", [True, False])
def test_to_physical_statistics_match_gaussian_ratio(robust):
    """After b and c: same mean as gauss/lr, and the same band power over ell_range."""
    rng = np.random.default_rng(9)
    lr, gauss = sky(rng, (4, 64, 64))
    gen = np.tanh(1.5 * field(rng, (4, 64, 64), 0.8) + 0.3)  # skewed, different spectrum
    hr = to_physical(gen, lr, gauss, pixel_arcmin=PIX, robust=robust, ell_range=(300, 1000))
    ratio, ref = hr / lr, gauss / lr
    np.testing.assert_allclose(ratio.mean(axis=(1, 2)), ref.mean(axis=(1, 2)), rtol=1e-3)
    edges = np.linspace(300, 1000, 8)
    apod = 0.125 * 64 * PIX / 60
    _, c_out = _private_flat_power_spectrum(ratio - ratio.mean(), PIX, ell_edges=edges,
                                            apodize_deg=apod)
    _, c_ref = _private_flat_power_spectrum(ref - ref.mean(), PIX, ell_edges=edges,
                                            apodize_deg=apod)
    np.testing.assert_allclose(c_out.sum(axis=1), c_ref.sum(axis=1), rtol=0.05 if robust else 1e-8)


@pytest.mark.parametrize("factor", [0.3, 2.5])
def test_to_physical_recovers_small_scale_amplitude(factor):
    """Scaling the Gaussian small scales by a known factor scales the output's by the same."""
    rng = np.random.default_rng(10)
    lr, gauss = sky(rng, (3, 64, 64))
    gen = np.tanh(field(rng, (3, 64, 64), 1.0))
    base = to_physical(gen, lr, gauss, pixel_arcmin=PIX) - lr
    scaled = to_physical(gen, lr, lr + factor * (gauss - lr), pixel_arcmin=PIX) - lr
    np.testing.assert_allclose(scaled, factor * base, rtol=1e-9, atol=1e-9 * np.abs(base).max())


def test_to_physical_spectrum_refines_amplitude():
    """An out-of-band large-scale component fools the std match (b); the band-power match (c)
    recovers the in-band amplitude of the Gaussian ratio."""
    rng = np.random.default_rng(11)
    n = 128
    lr, gauss = sky(rng, (2, n, n))
    ref = gauss / lr
    large = field(rng, (2, n, n), 12.0, 3 * ref.std())  # ell << 300, 3x the small-scale std
    gen, _, _ = rescale(ref + large, robust=False)
    hr, info = to_physical(gen, lr, gauss, pixel_arcmin=PIX, robust=False, return_info=True)
    std_only = ref.std(axis=(1, 2)) / (ref + large).std(axis=(1, 2))
    # the in-band part of the output is the reference ratio times info amplitude * std_only
    # (5 %: the apodized estimator leaks a little of the large-scale power into the band)
    np.testing.assert_allclose(info["amplitude"] * std_only, 1.0, rtol=0.05)
    assert np.all(std_only < 0.4)


def test_to_physical_polarization_amplitude():
    rng = np.random.default_rng(12)
    shape = (3, 64, 64)
    q = field(rng, shape, 8.0, 10.0)  # crosses zero
    u = field(rng, shape, 8.0, 10.0)
    p = np.sqrt(q ** 2 + u ** 2)
    gq = q + p * 0.05 * field(rng, shape, 1.0)
    with pytest.raises(ValueError, match=r"`lr` patch 0 has values <= 0.*`lr_amplitude`"):
        to_physical(np.tanh(field(rng, shape, 1.0)), q, gq, pixel_arcmin=PIX)
    gen, _, _ = rescale(1 + (gq - q) / p, robust=False)
    hr = to_physical(gen, q, gq, pixel_arcmin=PIX, robust=False, lr_amplitude=p)
    np.testing.assert_allclose(hr, gq, rtol=1e-9, atol=1e-9 * np.abs(gq).max())
    # the physical small scales do not depend on the amplitude's normalization
    gen = np.tanh(field(rng, shape, 1.0))
    a = to_physical(gen, q, gq, pixel_arcmin=PIX, lr_amplitude=p)
    b = to_physical(gen, q, gq, pixel_arcmin=PIX, lr_amplitude=7.0 * p)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(a).max())
    with pytest.raises(ValueError, match=r"`lr_amplitude` patch 2 has values <= 0"):
        to_physical(gen, q, gq, pixel_arcmin=PIX, lr_amplitude=np.where(np.arange(3)[:, None,
                    None] == 2, -p, p))


def test_to_physical_nan_pixels():
    rng = np.random.default_rng(13)
    lr, gauss = sky(rng, (2, 48, 48))
    gen = np.tanh(field(rng, (2, 48, 48), 1.0))
    lr[1, :5, :5] = np.nan
    gen[0, 10, 10] = np.nan
    hr = to_physical(gen, lr, gauss, pixel_arcmin=PIX)
    assert np.isnan(hr[1, :5, :5]).all() and np.isnan(hr[0, 10, 10])
    assert np.isfinite(hr).sum() == hr.size - 26


def _pipeline(lr, gauss, gen_fn, robust):
    x, _, _ = rescale(lr, robust=robust)
    return to_physical(gen_fn(x), lr, gauss, pixel_arcmin=PIX, robust=robust)


@pytest.mark.parametrize("fwhm_arcmin,n", [(12.0, 128), (80.0, 256)])
def test_to_physical_bright_source_pipeline(fwhm_arcmin, n):
    """rescale -> generator -> to_physical with a bright source (1000x the patch) injected into
    the LR patch and hence the Gaussian baseline (whose small scales follow the LR map): outside
    the source the small scales stay within a few percent; with ForSE's min-max they do not."""
    rng = np.random.default_rng(14)
    lr = 100.0 + field(rng, (n, n), 6.0, 15.0)
    small = 0.05 * field(rng, (n, n), 1.0)
    texture = field(rng, (n, n), 1.0)

    def generator(x):  # stands in for the network: the input sets the texture's amplitude
        return np.tanh(0.8 * texture * (1 + 0.5 * x))

    sigma = fwhm_arcmin / 2.355 / PIX
    src, r = blob(n, sigma, 1e5)
    far = r > 4.5 * sigma
    for robust, ok in ((True, True), (False, False)):
        base = _pipeline(lr, lr * (1 + small), generator, robust) - lr
        out = _pipeline(lr + src, (lr + src) * (1 + small), generator, robust) - (lr + src)
        assert np.all(np.isfinite(out))
        err = np.sqrt(np.mean((out[far] - base[far]) ** 2) / np.mean(base[far] ** 2))
        assert (err < 0.03) == ok, (robust, err)
        assert robust or err > 0.1


def test_to_physical_ratio_spike_is_masked():
    """Where lr nearly vanishes gauss/lr spikes; the robust statistics ignore the spike."""
    rng = np.random.default_rng(15)
    n = 64
    lr, gauss = sky(rng, (n, n))
    gen = np.tanh(field(rng, (n, n), 1.0))
    spike, r = blob(n, 1.0, 1.0)
    gauss_s = gauss + 500.0 * spike  # small-scale excess far above 5 % of lr
    far = r > 6
    a = to_physical(gen, lr, gauss, pixel_arcmin=PIX)
    b, info = to_physical(gen, lr, gauss_s, pixel_arcmin=PIX, return_info=True)
    assert info["n_used"] < n * n
    np.testing.assert_allclose(b[far] - lr[far], a[far] - lr[far], atol=0.03 * np.std(a - lr))


def test_to_physical_errors():
    rng = np.random.default_rng(16)
    lr, gauss = sky(rng, (2, 32, 32))
    gen = np.tanh(field(rng, (2, 32, 32), 1.0))
    with pytest.raises(ValueError, match=r"`gauss` has shape \(2, 32, 31\), expected "
                                         r"\(2, 32, 32\) \(the shape of `lr`\)"):
        to_physical(gen, lr, gauss[..., :31], pixel_arcmin=PIX)
    with pytest.raises(ValueError, match=r"`gen_scaled` has shape \(2, 32, 32, 1\)"):
        to_physical(gen[..., None], lr, gauss, pixel_arcmin=PIX)
    with pytest.raises(ValueError, match=r"`lr_amplitude` has shape \(32, 32\)"):
        to_physical(gen, lr, gauss, pixel_arcmin=PIX, lr_amplitude=lr[0])
    with pytest.raises(ValueError, match=r"`lr` patches must be square"):
        to_physical(gen[:, :30], lr[:, :30], gauss[:, :30], pixel_arcmin=PIX)
    with pytest.raises(ValueError, match=r"`pixel_arcmin` must be a positive number"):
        to_physical(gen, lr, gauss, pixel_arcmin=0)
    with pytest.raises(ValueError, match=r"`ell_range` \(300.0, 400.0\) is not resolved by "
                                         r"32x32 patches"):
        to_physical(gen, lr, gauss, pixel_arcmin=PIX, ell_range=(300, 400))
    with pytest.raises(ValueError, match=r"`ell_range` must be two increasing"):
        to_physical(gen, lr, gauss, pixel_arcmin=PIX, ell_range=(1000, 300))
    with pytest.raises(TypeError, match=r"`gauss` must be a real numeric array"):
        to_physical(gen, lr, gauss.astype(complex), pixel_arcmin=PIX)
    with pytest.raises(ValueError, match=r"`lr` patch 1 has values <= 0"):
        to_physical(gen, lr * np.array([1, -1])[:, None, None], gauss, pixel_arcmin=PIX)
    const = gen.copy()
    const[1] = 0.2
    with pytest.raises(ValueError, match=r"`gen_scaled` patch 1 is constant"):
        to_physical(const, lr, gauss, pixel_arcmin=PIX)
    with pytest.raises(ValueError, match=r"`gauss` patch 0 has no small scales"):
        to_physical(gen, lr, np.concatenate([lr[:1], gauss[1:]]), pixel_arcmin=PIX)
    empty = lr.copy()
    empty[0] = np.nan
    with pytest.raises(ValueError, match=r"`lr` patch 0 has 0 pixel\(s\) usable"):
        to_physical(gen, empty, gauss, pixel_arcmin=PIX)



def test_rescale_spin2_keeps_angles_and_balance():
    from forse.normalize import rescale_spin2

    rng = np.random.default_rng(21)
    q, u = rng.normal(0, 3.0, (2, 4, 16, 16)), rng.normal(0, 1.0, (2, 4, 16, 16))
    qs, us, s = rescale_spin2(q, u)
    assert qs.shape == q.shape and s.shape == (2, 4)
    assert np.all(np.abs(qs) <= 1) and np.all(np.abs(us) <= 1)
    p = np.hypot(q, u).reshape(2, 4, -1)
    np.testing.assert_allclose(s, np.percentile(p, 99.5, axis=-1), rtol=1e-12)
    inside = np.hypot(q, u) < s[..., None, None]  # unclipped pixels: one factor for both
    np.testing.assert_allclose(np.arctan2(us, qs)[inside], np.arctan2(u, q)[inside], atol=1e-12)
    with pytest.raises(ValueError, match="no polarization"):
        rescale_spin2(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))


def test_spin2_to_physical_matches_the_baseline_band_power():
    from forse.normalize import spin2_to_physical
    from forse.spectra import flat_power_spectrum

    rng = np.random.default_rng(22)
    n, px, band = 64, 3.75, (300.0, 1000.0)
    lr_q, lr_u = rng.normal(0, 1, (2, 3, n, n))
    gauss_q = lr_q + rng.normal(0, 0.2, (3, n, n))
    gauss_u = lr_u + rng.normal(0, 0.3, (3, n, n))
    gq, gu = rng.uniform(-1, 1, (2, 3, n, n)) * np.array([1.0, 0.5])[:, None, None, None]
    amp = 5.0 + rng.uniform(0, 1, (3, n, n))
    q, u = spin2_to_physical(gq, gu, lr_q, lr_u, gauss_q, gauss_u, amp, pixel_arcmin=px,
                             ell_range=band)
    from forse.normalize import _ell_edges

    edges = _ell_edges(n, px, band)  # the function's own bins

    def power(a):
        return flat_power_spectrum(a, px, ell_edges=edges, apodize_deg=0.5)[1].sum(axis=1)

    np.testing.assert_allclose(power(q - lr_q) + power(u - lr_u),
                               power(gauss_q - lr_q) + power(gauss_u - lr_u), rtol=1e-6)
    # one factor for Q and U: the generated Q/U balance is kept
    dq, du = gq * amp, gu * amp
    np.testing.assert_allclose(np.var(q - lr_q, axis=(1, 2)) / np.var(u - lr_u, axis=(1, 2)),
                               np.var(dq, axis=(1, 2)) / np.var(du, axis=(1, 2)), rtol=1e-9)
    nan_q = gq.copy()
    nan_q[0, 3, 4] = np.nan
    q2, u2 = spin2_to_physical(nan_q, gu, lr_q, lr_u, gauss_q, gauss_u, amp, pixel_arcmin=px,
                               ell_range=band)
    assert np.isnan(q2[0, 3, 4]) and np.isnan(u2[0, 3, 4]) and np.isfinite(q2[1:]).all()
    with pytest.raises(ValueError, match="`gauss_u`"):
        spin2_to_physical(gq, gu, lr_q, lr_u, gauss_q, gauss_u[:2], amp, pixel_arcmin=px)


def test_one_min_max_range():
    """forse.normalize.rescale(robust=False) and forse.minkowski.minmax take their range from
    the one helper, _checks.finite_range: min and max over the finite pixels, NaN when none."""
    from forse import minkowski as mk
    from forse._checks import finite_range

    rng = np.random.default_rng()
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(4, 12, 10)).astype(dtype)
        a[0, 1, 2], a[1, 0, 0], a[2] = np.nan, -np.inf, np.nan
        lo, hi = finite_range(a)
        ok = [0, 1, 3]
        fin = np.where(np.isfinite(a), a, np.nan)
        np.testing.assert_array_equal(lo[ok], np.nanmin(fin[ok], axis=(1, 2)))
        np.testing.assert_array_equal(hi[ok], np.nanmax(fin[ok], axis=(1, 2)))
        assert lo.dtype == dtype and np.isnan(lo[2]) and np.isnan(hi[2])
        y, rlo, rhi = rescale(a[ok], robust=False)
        np.testing.assert_array_equal(rlo, lo[ok])
        np.testing.assert_array_equal(rhi, hi[ok])
        m = mk.minmax(a)
        assert np.nanmin(m[ok]) == -1.0 and np.nanmax(m[ok]) == 1.0 and np.isnan(m[2]).all()
