"""forse.spectra against fields of known spectrum (flat-sky GRFs, healpy synfast)."""
import healpy as hp
import numpy as np
import pytest

from _shared import synfast
from forse import spectra
from forse.spectra import ARCMIN


def _grf(rng, n_img, npix, pixel_arcmin, cl_of_ell):
    """Periodic Gaussian random fields whose flat-sky spectrum is cl_of_ell(ell) (map^2 sr)."""
    pix = pixel_arcmin * ARCMIN
    ell = spectra._ell_grid(npix, npix, pix)
    amp = np.zeros_like(ell)
    nz = ell > 0
    amp[nz] = np.sqrt(cl_of_ell(ell[nz]) / (pix * pix))
    white = rng.standard_normal((n_img, npix, npix))
    return np.real(np.fft.ifft2(np.fft.fft2(white, axes=(1, 2)) * amp, axes=(1, 2)))


@pytest.mark.parametrize("shape", [(64, 64), (65, 48)])
def test_white_noise_flat_spectrum(shape):
    rng = np.random.default_rng(1)
    sigma, pix_arcmin = 3.0, 3.75
    imgs = sigma * rng.standard_normal((40,) + shape)
    ell, cl = spectra.flat_power_spectrum(imgs, pix_arcmin, apodize_deg=0.5)
    expected = sigma ** 2 * (pix_arcmin * ARCMIN) ** 2
    mean = cl.mean(axis=0)
    rel = mean / expected - 1
    assert cl.shape == (40, ell.size) and np.all(np.diff(ell) > 0)
    assert np.max(np.abs(rel)) < 0.1, f"rel err min {rel.min():.3g} max {rel.max():.3g}"
    # one image in -> 1-D spectrum, same numbers
    ell1, cl1 = spectra.flat_power_spectrum(imgs[3], pix_arcmin, apodize_deg=0.5)
    np.testing.assert_allclose(ell1, ell)
    np.testing.assert_allclose(cl1, cl[3], rtol=1e-12)


def test_power_law_flat_spectrum():
    rng = np.random.default_rng(2)
    pix_arcmin = 3.75

    def cl_fn(ell):
        return 1e-4 * (ell / 100.0) ** -2.0

    imgs = _grf(rng, 30, 128, pix_arcmin, cl_fn)
    edges = np.geomspace(150, 2500, 10)
    ell, cl = spectra.flat_power_spectrum(imgs, pix_arcmin, ell_edges=edges, apodize_deg=1.0)
    # theory averaged over the same modes
    pix = pix_arcmin * ARCMIN
    grid = spectra._ell_grid(128, 128, pix).ravel()
    theory = [cl_fn(grid[(grid >= lo) & (grid < hi)]).mean() for lo, hi in zip(edges[:-1], edges[1:])]
    rel = cl.mean(axis=0) / np.array(theory) - 1
    assert np.max(np.abs(rel)) < 0.1, f"rel err {np.round(rel, 3)}"


def test_taper_correction_is_unbiased_with_strong_taper():
    """The mean-w^2 correction keeps white noise unbiased whatever the taper width."""
    rng = np.random.default_rng(3)
    imgs = rng.standard_normal((30, 96, 96))
    expected = (2.0 * ARCMIN) ** 2
    for apod in (0.0, 0.4, 1.4):
        _, cl = spectra.flat_power_spectrum(imgs, 2.0, apodize_deg=apod)
        np.testing.assert_allclose(cl.mean(), expected, rtol=0.05)


def test_constant_image_has_no_power():
    _, cl = spectra.flat_power_spectrum(np.full((32, 32), 7.0), 5.0, apodize_deg=0.3)
    assert np.max(np.abs(cl)) < 1e-25


def test_flat_spectrum_errors():
    img = np.zeros((32, 32))
    with pytest.raises(ValueError, match="dimension"):
        spectra.flat_power_spectrum(np.zeros(10), 3.0)
    with pytest.raises(TypeError, match="dtype"):
        spectra.flat_power_spectrum(np.zeros((8, 8), dtype=complex), 3.0)
    bad = np.zeros((2, 32, 32))
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="1 image"):
        spectra.flat_power_spectrum(bad, 3.0, apodize_deg=0.2)
    with pytest.raises(ValueError, match="apodize_deg"):
        spectra.flat_power_spectrum(img, 3.0, apodize_deg=1.0)
    with pytest.raises(ValueError, match="pixel_arcmin"):
        spectra.flat_power_spectrum(img, -1.0, apodize_deg=0.0)
    with pytest.raises(ValueError, match="hold no Fourier mode"):
        spectra.flat_power_spectrum(img, 3.0, ell_edges=[100, 101, 2000], apodize_deg=0.0)
    with pytest.raises(ValueError, match="increasing"):
        spectra.flat_power_spectrum(img, 3.0, ell_edges=[300, 200], apodize_deg=0.0)


# ----------------------------------------------------------------------------- full sky
def _theory(lmax):
    ell = np.arange(lmax + 1)
    tt = np.zeros(lmax + 1)
    tt[2:] = 100.0 * (ell[2:] / 80.0) ** -2.4
    return ell, tt


def test_full_sky_tt_matches_input():
    nside, lmax = 64, 128
    ell, tt = _theory(lmax)
    m = synfast(tt, nside, np.random.default_rng(4), lmax=lmax)
    res = spectra.masked_cl(m, lmax=lmax)
    np.testing.assert_allclose(res["TT"], hp.anafast(m, lmax=lmax, iter=0, use_pixel_weights=False))
    assert res["fsky"] == 1.0 and res["n_bad"] == 0 and set(res) >= {"ell", "TT"}
    eb, tb = spectra.bin_cl(res["TT"], np.arange(10, 121, 20))
    _, theory_b = spectra.bin_cl(tt, np.arange(10, 121, 20))
    np.testing.assert_allclose(tb, theory_b, rtol=0.15)


def test_masked_cl_fsky_corrected_and_pure_e_has_no_bb():
    nside, lmax = 64, 128
    ell, tt = _theory(lmax)
    ee, te = 0.1 * tt, 0.3 * np.sqrt(tt * 0.1 * tt)
    zero = np.zeros_like(tt)
    tqu = synfast([tt, ee, zero, te], nside, np.random.default_rng(5), lmax=lmax)
    full = spectra.masked_cl(tqu, lmax=lmax)
    sl = slice(10, 120)
    # pure E on the full sky: BB is at the numerical-noise level compared with EE
    assert np.max(full["BB"][sl]) < 1e-3 * np.min(full["EE"][sl])
    r = spectra.correlation_coefficient(full["TE"], full["TT"], full["EE"])
    assert abs(np.mean(r[sl]) - 0.3) < 0.05
    # a galactic cut: fsky-corrected pseudo-C_ell matches the full-sky TT in wide bins
    theta, _ = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    mask = np.abs(np.pi / 2 - theta) > np.radians(20)
    cut = spectra.masked_cl(tqu, mask, lmax=lmax, apodize_deg=5.0)
    assert 0.4 < cut["fsky"] < 0.66
    edges = np.arange(40, 121, 20)
    _, b_full = spectra.bin_cl(full["TT"], edges)
    _, b_cut = spectra.bin_cl(cut["TT"], edges)
    np.testing.assert_allclose(b_cut, b_full, rtol=0.2)
    # leakage E->B under the cut stays small
    _, bb = spectra.bin_cl(cut["BB"], edges)
    _, eeb = spectra.bin_cl(cut["EE"], edges)
    assert bb.shape == eeb.shape == (4,) and np.all(bb < 0.05 * eeb)


def test_masked_cl_drops_and_counts_bad_pixels():
    nside = 32
    _, tt = _theory(64)
    m = synfast(tt, nside, np.random.default_rng(6), lmax=64)
    m[:10] = hp.UNSEEN
    m[100] = np.nan
    res = spectra.masked_cl(m, lmax=64, apodize_deg=3.0)
    assert res["n_bad"] == 11 and np.all(np.isfinite(res["TT"])) and res["fsky"] < 1.0


def test_apodize_mask_is_zero_outside_and_one_deep_inside():
    nside = 64
    theta, _ = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    mask = theta < np.radians(60)
    w = spectra.apodize_mask(mask, 5.0)
    assert np.all(w[~mask] == 0) and np.all((w >= 0) & (w <= 1))
    assert np.all(w[theta < np.radians(54)] == 1.0)
    assert np.all(w[(theta > np.radians(58.5)) & mask] < 0.5)
    ring = (theta > np.radians(56)) & (theta < np.radians(57)) & mask  # 3-4 deg in of a 5 deg taper
    assert np.all((w[ring] > 0.5) & (w[ring] < 1.0))


def test_masked_cl_errors():
    m = np.zeros(hp.nside2npix(16))
    with pytest.raises(ValueError, match="Nside 8.*Nside 16"):
        spectra.masked_cl(m, np.ones(hp.nside2npix(8), bool))
    with pytest.raises(ValueError, match="not 12\\*nside"):
        spectra.masked_cl(np.zeros(100))
    with pytest.raises(ValueError, match="keeps no pixel"):
        spectra.masked_cl(m, np.zeros(m.size, bool))
    with pytest.raises(ValueError, match="T or TQU"):
        spectra.masked_cl(np.zeros((2, m.size)))
    with pytest.raises(ValueError, match="lmax"):
        spectra.masked_cl(m, lmax=1000)


@pytest.mark.parametrize("shape", [(64, 64), (48, 63), (37, 50)])
def test_flat_power_spectrum_equals_full_plane_fft(shape):
    """The half-plane (rfft2) binning equals a plain full-plane FFT binned mode by mode."""
    rng = np.random.default_rng()
    imgs = rng.standard_normal((3,) + shape)
    pix_arcmin, apod = 4.0, 0.4
    ell_eff, cl = spectra.flat_power_spectrum(imgs, pix_arcmin, apodize_deg=apod)
    ny, nx = shape
    width = apod * 60.0 / pix_arcmin
    win = spectra.taper_window(ny, width)[:, None] * spectra.taper_window(nx, width)[None, :]
    a = imgs - imgs.mean(axis=(1, 2), keepdims=True)
    pix = pix_arcmin * ARCMIN
    p = np.abs(np.fft.fft2(a * win)) ** 2 * pix**2 / (ny * nx * np.mean(win**2))
    ell = spectra._ell_grid(ny, nx, pix)
    edges = spectra.default_ell_edges(shape, pix_arcmin)
    for b in range(len(edges) - 1):
        sel = (ell >= edges[b]) & (ell < edges[b + 1])
        np.testing.assert_allclose(cl[:, b], p[:, sel].mean(axis=1), rtol=1e-10)
        np.testing.assert_allclose(ell_eff[b], ell[sel].mean(), rtol=1e-12)


def test_flat_teb_spectra_separates_e_and_b():
    """A pure E pattern (Q = psi_xx - psi_yy, U = 2 psi_xy, x along rows) has no B and the same
    pattern turned by 45 degrees of polarization (Q, U) -> (-U, Q) is pure B; TT is
    flat_power_spectrum's."""
    from forse.spectra import flat_power_spectrum, flat_teb_spectra

    rng = np.random.default_rng(31)
    n, px = 64, 5.0
    psi = np.fft.fft2(rng.standard_normal((3, n, n)))
    kx = np.fft.fftfreq(n)[:, None] * 2 * np.pi
    ky = np.fft.fftfreq(n)[None, :] * 2 * np.pi
    q = np.fft.ifft2(-(kx ** 2 - ky ** 2) * psi).real
    u = np.fft.ifft2(-2 * kx * ky * psi).real
    t = np.fft.ifft2(-(kx ** 2 + ky ** 2) * psi).real  # correlated with E
    edges = np.linspace(300, 2000, 6)
    _, e = flat_teb_spectra(t, q, u, px, ell_edges=edges, apodize_deg=0)
    assert np.all(e["BB"] < 1e-20 * e["EE"].max() + 1e-12 * e["EE"])
    assert np.all(np.abs(e["TE"]) > 0.99 * np.sqrt(e["TT"] * e["EE"]))  # |r_TE| = 1
    _, b = flat_teb_spectra(t, -u, q, px, ell_edges=edges, apodize_deg=0)
    np.testing.assert_allclose(b["BB"], e["EE"], rtol=1e-10)
    assert np.all(b["EE"] < 1e-12 * b["BB"])
    _, tt = flat_power_spectrum(t, px, ell_edges=edges, apodize_deg=0)
    np.testing.assert_allclose(e["TT"], tt, rtol=1e-10)
    with pytest.raises(ValueError, match="one shape"):
        flat_teb_spectra(t, q[:2], u, px, ell_edges=edges)
