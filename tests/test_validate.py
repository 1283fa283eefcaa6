"""forse.validate / forse validate on small maps with known answers."""
import json

import healpy as hp
import numpy as np
import pytest

from forse import validate as V
from forse.cli import main
from forse.minkowski import functionals

NSIDE = 64
KW = dict(fwhm_hr_arcmin=120.0, fwhm_lr_arcmin=360.0, npix=32, pixel_arcmin=40.0, lmax=128,
          progress=False)


def _dust(seed, pol=True, nside=NSIDE):
    """Positive, red T (and correlated Q/U) maps: a lognormal field like dust intensity."""
    ell = np.arange(3 * nside)
    cl = np.zeros(ell.size)
    cl[2:] = (ell[2:] / 10.0) ** -2.5
    np.random.seed(seed)
    g = hp.synfast([cl, 0.1 * cl, 0.05 * cl, 0.2 * cl], nside, new=True, fwhm=np.radians(2.0))
    t = np.exp(g[0] / g[0].std())
    return np.stack([t, g[1], g[2]]) if pol else t


@pytest.fixture(scope="module")
def dust():
    return _dust(1)


def test_map_against_itself(dust):
    s = V.validate(dust, reference=dust, baseline=dust * np.array([[1.0], [1.0], [1.0]]), **KW)
    for pair in ("map_vs_reference", "baseline_vs_reference"):
        for f in "TQU":
            assert s["minkowski"]["overlap"][pair][f] == {"v0": 1.0, "v1": 1.0, "v2": 1.0}
    for f in "TQU":
        np.testing.assert_allclose(s["patch_spectra"]["ratio_to_reference"]["map"][f], 1.0, rtol=1e-12)
    for spec in ("TT", "EE", "BB"):
        np.testing.assert_allclose(s["full_sky"]["ratio_to_reference"]["map"][spec], 1.0, rtol=1e-12)
    assert s["seams"]["map"]["overlap_over_centre"] == pytest.approx(1.0, rel=1e-12)
    assert s["patches"]["n_used"] == 32 and s["bad_pixels"] == {"map": 0, "reference": 0, "baseline": 0}
    assert s["one_point"]["T"]["map"]["skewness"] == s["one_point"]["T"]["reference"]["skewness"]


def test_different_map_has_lower_overlap_and_gaussian_baseline_runs(dust):
    other = _dust(7)
    s = V.validate(other, reference=dust, baseline="gaussian", **KW)
    ov = s["minkowski"]["overlap"]
    assert set(ov) == {"map_vs_reference", "baseline_vs_reference"}
    vals = [ov[p][f][v] for p in ov for f in "TQU" for v in ("v0", "v1", "v2")]
    assert all(0.0 <= x <= 1.0 for x in vals) and min(vals) < 1.0
    assert s["baseline"] == "gaussian"
    # small-scale spectra lie below the full ones
    b = s["full_sky"]["binned"]["map"]["TT"]
    bss = s["full_sky"]["binned_small_scales"]["map"]["TT"]
    assert np.all(np.asarray(bss) <= np.asarray(b))


def test_pure_e_map_has_no_bb():
    ell = np.arange(3 * NSIDE)
    cl = np.zeros(ell.size)
    cl[2:] = (ell[2:] / 10.0) ** -2.0
    np.random.seed(3)
    tqu = hp.synfast([cl, cl, 0 * cl, 0 * cl], NSIDE, new=True)
    tqu[0] += 10.0  # positive T for the hr/lr ratio
    s = V.validate(tqu, **KW)
    b = s["full_sky"]["binned"]["map"]
    assert np.max(np.asarray(b["BB"]) / np.asarray(b["EE"])) < 1e-3
    assert all(x > 1e3 for x in b["EE_over_BB"])
    assert np.max(np.abs(b["rTE"])) < 0.5  # T and E drawn independently


def test_gaussian_field_functionals_match_theory():
    """Minkowski functionals (forse.minkowski via the validation helper) of flat Gaussian random
    fields against the analytic Gaussian expectation (Tomita 1986)."""
    rng = np.random.default_rng(0)
    n, s = 256, 4.0
    k = np.fft.fftfreq(n)
    filt = np.exp(-0.5 * (2 * np.pi * s) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    f = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((8, n, n)), axes=(1, 2)) * filt, axes=(1, 2)))
    sigma0 = f.std()
    gy, gx = np.gradient(f, axis=(1, 2))
    sigma1 = np.sqrt(np.mean(gx ** 2 + gy ** 2))
    nu = np.linspace(-2.5, 2.5, 21)
    v0, v1, v2 = functionals(f, nu * sigma0, normalize=True)
    t0, t1, t2 = V.gaussian_functionals(nu, sigma0, sigma1)
    for got, want in ((v0, t0), (v1, t1), (v2, t2)):
        err = np.abs(np.mean(got, axis=0) - want) / np.max(np.abs(want))
        assert err.max() < 0.06, f"max rel err {err.max():.3f}"


def test_lowres_from_shared_transform_matches_smoothing(dust):
    from forse.smoothing import smooth

    direct = {}
    lr = V._lowres(dust, 1300.0, True, 128, True, direct, "map")  # beam lmax <= nside / 2
    want = smooth(dust, 1300.0, pol=True)
    np.testing.assert_allclose(lr, want, atol=1e-6 * np.abs(want).max())
    np.testing.assert_allclose(direct["map"][0], hp.anafast(dust, lmax=128, iter=0)[0], rtol=1e-10)
    # with a mask (not full sky) it falls back to forse.smoothing.smooth
    other = {}
    np.testing.assert_allclose(V._lowres(dust, 1300.0, True, 128, False, other, "map"), want, rtol=1e-12)
    assert other == {}


def test_nan_and_unseen_pixels_are_excluded_and_counted(dust):
    bad = dust.copy()
    lon, lat = V.default_patches()
    vec = hp.ang2vec(lon[0], lat[0], lonlat=True)
    disc = hp.query_disc(NSIDE, vec, np.radians(2.0))
    bad[:, disc] = hp.UNSEEN
    bad[0, disc[:3]] = np.nan
    s = V.validate(bad, reference=dust, **KW)
    assert s["bad_pixels"]["map"] == disc.size and s["bad_pixels"]["reference"] == 0
    assert s["patches"]["n_dropped_nan"] >= 1 and s["patches"]["n_used"] == 32 - s["patches"]["n_dropped_nan"]
    assert s["full_sky"]["fsky"] < 1.0
    assert np.all(np.isfinite(s["full_sky"]["binned"]["map"]["TT"]))


def test_mask_selects_patches(dust):
    theta, _ = hp.pix2ang(NSIDE, np.arange(hp.nside2npix(NSIDE)))
    north = theta < np.radians(80)  # b > 10 deg
    s = V.validate(dust, reference=dust, mask=north, **KW)
    assert s["patches"]["n_used"] == 16 and s["patches"]["n_dropped_mask"] == 16
    assert 0.3 < s["full_sky"]["fsky"] < 0.5


def test_bad_inputs(dust):
    with pytest.raises(ValueError, match="`reference` has Nside 32 but `map` has Nside 64"):
        V.validate(dust, reference=_dust(1, nside=32), **KW)
    with pytest.raises(ValueError, match="`reference` has no polarization.*stokes='T'"):
        V.validate(dust, reference=dust[0], **KW)
    theta, _ = hp.pix2ang(NSIDE, np.arange(hp.nside2npix(NSIDE)))
    with pytest.raises(ValueError, match="leaves no validation patch"):
        V.validate(dust, mask=np.abs(theta - np.pi / 2) < np.radians(20), **KW)
    with pytest.raises(ValueError, match="`mask` has Nside 32 but `map` has Nside 64"):
        V.validate(dust, mask=np.ones(hp.nside2npix(32), bool), **KW)
    with pytest.raises(ValueError, match="stokes"):
        V.validate(dust, stokes="QU", **KW)
    with pytest.raises(ValueError, match="stokes='TQU' needs"):
        V.validate(dust[0], stokes="TQU", **KW)
    with pytest.raises(ValueError, match="fwhm_lr_arcmin"):
        V.validate(dust, **{**KW, "fwhm_lr_arcmin": 60.0})
    with pytest.raises(ValueError, match="not 12\\*nside"):
        V.validate(np.zeros(1000), **KW)
    # T validation of a TQU map against a T reference is fine
    s = V.validate(dust, reference=dust[0], stokes="T", seam_tiling=None, **KW)
    assert s["fields"] == ["T"] and s["seams"] is None


def test_cli_writes_report_and_summary(tmp_path, dust, capsys):
    from forse.io import write_map

    write_map(tmp_path / "ref.fits", dust)
    write_map(tmp_path / "gen.fits", _dust(5))
    from forse.smoothing import smooth

    write_map(tmp_path / "lr.fits", smooth(dust, 360.0))
    out = tmp_path / "out"
    rc = main(["validate", str(tmp_path / "gen.fits"), "--reference", str(tmp_path / "ref.fits"),
               "--baseline", "gaussian", "--lowres", str(tmp_path / "lr.fits"), "--fwhm-hr", "120", "--fwhm-lr", "360", "--npix", "32",
               "--pixel-arcmin", "40", "--lmax", "128", "--no-progress", "-o", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["minkowski"]["overlap"]) == {"map_vs_reference", "baseline_vs_reference"}
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 7 and "overlap" in page
    pngs = sorted(p.name for p in (out / "figures").iterdir())  # the same figures as files
    assert len(pngs) == page.count("data:image/png;base64,") and pngs[0].startswith("01-minkowski")
    assert all((out / "figures" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    printed = json.loads(capsys.readouterr().out)
    assert printed["patches_used"] == 32
    # bad input -> exit status 2 and a message naming the problem
    rc = main(["validate", str(tmp_path / "gen.fits"), "--patches", "10,abc", "-o", str(out)])
    assert rc == 2 and "--patches" in capsys.readouterr().err
