"""forse.validate / forse validate on small maps with known answers."""
import json

import healpy as hp
import numpy as np
import pytest

from _shared import synfast
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
    g = synfast([cl, 0.1 * cl, 0.05 * cl, 0.2 * cl], nside, np.random.default_rng(seed), fwhm=np.radians(2.0))
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
    tqu = synfast([cl, cl, 0 * cl, 0 * cl], NSIDE, np.random.default_rng(3))
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
               "--baseline", "gaussian", "--lowres", str(tmp_path / "lr.fits"), "--fwhm-hr", "120",
               "--fwhm-lr", "360", "--npix", "32", "--pixel-arcmin", "40", "--lmax", "128", "--no-progress",
               "-o", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["minkowski"]["overlap"]) == {"map_vs_reference", "baseline_vs_reference"}
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 7 and "overlap" in page
    pngs = sorted(p.name for p in (out / "figures").iterdir())  # the same figures as files
    assert len(pngs) == page.count("data:image/png;base64,") and pngs[0].startswith("01-minkowski")
    assert all((out / "figures" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1] == f"wrote {out / 'report.html'}, {out / 'summary.json'}"
    assert json.JSONDecoder().raw_decode(printed)[0]["patches_used"] == 32
    # bad input -> exit status 2 and a message naming the problem
    rc = main(["validate", str(tmp_path / "gen.fits"), "--patches", "10,abc", "-o", str(out)])
    assert rc == 2 and "--patches" in capsys.readouterr().err


# ------------------------------------------------------------------ held out, headline
KW_T = dict(KW, stokes="T", seam_tiling=None)


def test_training_sky_seeds_and_demo_default_is_held_out():
    from forse.commands import demo

    assert V.training_sky_seeds() == [0]  # the bundled dust-T, dust-Q, dust-U
    assert V.training_sky_seeds("dust-Q") == [0]
    assert demo.DEFAULT_SEED not in V.training_sky_seeds()
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    assert demo.register(sub, "demo").parse_args([]).seed == demo.DEFAULT_SEED == 1


def test_reference_on_a_training_seed_warns(dust):
    with pytest.warns(UserWarning, match="reference sky seed 0 was used to train the bundled "
                                         "models; quality numbers on it are not held out"):
        s = V.validate(_dust(7), reference=dust, reference_seed=0, **KW_T)
    assert s["held_out"] == {"reference_seed": 0, "training_sky_seeds": [0], "held_out": False}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = V.validate(_dust(7), reference=dust, reference_seed=1, **KW_T)
        assert s["held_out"]["held_out"] is True
        s = V.validate(_dust(7), reference=dust, **KW_T)
        assert s["held_out"] == {"reference_seed": None, "training_sky_seeds": [0], "held_out": None}
        # a user's own models: their seeds
        s = V.validate(_dust(7), reference=dust, reference_seed=0, training_seeds=[4, 5], **KW_T)
        assert s["held_out"] == {"reference_seed": 0, "training_sky_seeds": [4, 5], "held_out": True}


def test_test_region_patches_from_a_card(dust, tmp_path):
    with pytest.raises(ValueError, match="records no test-region centres"):
        V.held_out_patches("dust-T")
    with pytest.raises(ValueError, match="records no test-region centres"):
        V.validate(dust, patches="test", **KW_T)
    card = {"training": {"sky_seeds": [3], "test_patches": {"lon_deg": [10.0, 200.0, 300.0],
                                                            "lat_deg": [50.0, -45.0, 60.0]}}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(card))
    lon, lat = V.held_out_patches(tmp_path / "m.keras")
    np.testing.assert_array_equal(lon, [10.0, 200.0, 300.0])
    s = V.validate(dust, reference=dust, patches=f"test:{path}", **KW_T)
    assert s["patches"]["n_requested"] == 3 and s["patches"]["lat_deg"] == [50.0, -45.0, 60.0]
    assert V.training_sky_seeds([path, "dust-T"]) == [0, 3]
    with pytest.raises(ValueError, match="`patches` must be"):
        V.validate(dust, patches="north", **KW_T)
    with pytest.raises(FileNotFoundError, match="no model card"):
        V.training_sky_seeds(tmp_path / "absent.keras")


def test_minkowski_summary_has_both_variants_and_the_ceiling(dust):
    s = V.validate(_dust(7), reference=dust, baseline="gaussian", **KW_T)
    m = s["minkowski"]
    assert m["variant"] == "nu" and m["n_thresholds"] == 32
    np.testing.assert_allclose(m["thresholds"], np.linspace(-3, 3, 32))
    np.testing.assert_allclose(m["thresholds_minmax"], np.linspace(-1, 1, 32))
    assert set(m["overlap"]) == set(m["overlap_minmax"]) == {"map_vs_reference", "baseline_vs_reference"}
    assert set(m["ceiling"]["T"]) == set(m["ceiling_minmax"]["T"]) == {"v0", "v1", "v2"}
    assert set(m["curves_minmax"]) == {"map", "reference", "baseline"}
    # the overlap is forse.minkowski.score on the same patches
    from forse.minkowski import score

    assert 0 <= m["overlap"]["map_vs_reference"]["T"]["v0"] <= 1
    assert score(np.ones((2, 4, 4)), np.ones((2, 4, 4)))["score"] == 1.0


NSIDE_H = 128
KW_H = dict(KW, lmax=3 * NSIDE_H - 1, seam_tiling=None)


@pytest.fixture(scope="module")
def dust128():
    return _dust(2, nside=NSIDE_H)


def test_headline_layout_and_better_rows(dust128):
    from forse.smoothing import gaussian_small_scales, smooth

    ref = dust128
    s = V.validate(ref, reference=ref, baseline="gaussian", reference_seed=5, **KW_H)
    h = s["headline"]
    assert set(h) == {"minkowski_nu", "minkowski_minmax", "spectra", "rTE", "EE_over_BB",
                      "one_point", "better", "n_better", "n_rows"}
    for key in ("minkowski_nu", "minkowski_minmax"):
        assert set(h[key]) == {"T", "Q", "U"}
        assert set(h[key]["Q"]) == {"forse", "baseline", "ceiling"}
        assert h[key]["T"]["forse"] == {"v0": 1.0, "v1": 1.0, "v2": 1.0}
    assert set(h["spectra"]) == {"TT", "EE", "BB"}
    assert [r["ell"] for r in h["spectra"]["TT"]] == [[30, 100], [100, 300], [300, 383]]
    assert h["spectra"]["EE"][0]["forse"] == [1.0, 1.0] and len(h["spectra"]["EE"][0]["baseline"]) == 2
    assert h["rTE"]["ell"] == [100, 383] and h["rTE"]["forse_max_abs_diff"] == 0.0
    assert h["rTE"]["baseline_max_abs_diff"] > 0
    assert h["EE_over_BB"]["ell"] == [300, 383] and h["EE_over_BB"]["forse"] == h["EE_over_BB"]["truth"]
    assert set(h["one_point"]["U"]["kurtosis"]) == {"forse", "baseline", "truth"}
    # the map is the truth: better than the baseline on every row
    assert h["n_rows"] == len(h["better"]) == 9 * 2 + 3 * 3 + 1 + 1 + 6
    assert h["n_better"] == h["n_rows"] and all(h["better"].values())
    assert "minkowski_nu.T.v0" in h["better"] and "spectra.TT.300-1000" in h["better"]
    # the baseline is the truth and the map a Gaussian extension: worse on every row
    lr = smooth(ref, KW["fwhm_lr_arcmin"])
    gauss = gaussian_small_scales(lr, KW["fwhm_lr_arcmin"], KW["fwhm_hr_arcmin"], 3)
    s = V.validate(gauss, reference=ref, baseline=ref, **KW_H)
    assert s["headline"]["n_better"] == 0 and s["headline"]["n_rows"] == 35
    # without a baseline: the rows need it, the numbers that do not are kept
    s = V.validate(gauss, reference=ref, **KW_H)
    h = s["headline"]
    assert h["n_rows"] == 0 and h["better"] == {}
    assert set(h["minkowski_nu"]["T"]) == {"forse", "ceiling"} and "baseline_max_abs_diff" not in h["rTE"]
    # without a reference: no overlaps, no spectrum ratios
    s = V.validate(gauss, baseline="gaussian", **KW_H)
    assert set(s["headline"]) == {"EE_over_BB", "one_point", "better", "n_better", "n_rows"}


def test_report_opens_with_the_headline(dust128, tmp_path):
    with pytest.warns(UserWarning, match="not held out"):
        s = V.validate(dust128, reference=dust128, baseline="gaussian", reference_seed=0,
                       out_dir=tmp_path, **KW_H)
    page = (tmp_path / "report.html").read_text()
    first_h2 = page.index("<h2>")
    assert page[first_h2:].startswith("<h2>Headline")
    assert page.index("Headline") < page.index("Minkowski functional overlap fractions")
    assert f"on {s['headline']['n_better']} of {s['headline']['n_rows']} rows" in page
    assert page.count('class="better"') == s["headline"]["n_better"]
    assert "Not held out" in page and "min-max variant" in page
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["headline"] == json.loads(json.dumps(s["headline"]))
    assert saved["held_out"]["held_out"] is False
    # in Jupyter the result shows as a compact table: the verdict, the overlaps, the report
    compact = s._repr_html_()
    assert f"{s['headline']['n_better']} of {s['headline']['n_rows']}</b>" in compact
    assert "NOT held out" in compact and str(tmp_path / "report.html") in compact
    v0 = s["headline"]["minkowski_nu"]["Q"]["baseline"]["v0"]
    assert f"<td>{v0:.3f}</td>" in compact and compact.count("<tr>") == 2 + 3


def test_cli_reads_the_reference_seed_from_its_header(tmp_path, dust, capsys):
    from forse.io import write_map

    write_map(tmp_path / "ref.fits", dust, header={"SEED": 0})
    write_map(tmp_path / "gen.fits", _dust(5))
    args = ["validate", str(tmp_path / "gen.fits"), "--reference", str(tmp_path / "ref.fits"),
            "--fwhm-hr", "120", "--fwhm-lr", "360", "--npix", "32", "--pixel-arcmin", "40",
            "--lmax", "128", "--no-progress", "--no-figures", "--stokes", "T", "--seam-tiling",
            "none", "-o", str(tmp_path / "out")]
    with pytest.warns(UserWarning, match="reference sky seed 0"):
        assert main(args) == 0
    printed = json.JSONDecoder().raw_decode(capsys.readouterr().out)[0]  # then "wrote ..."
    assert printed["held_out"]["held_out"] is False and "ceiling" in printed
    assert main(args + ["--reference-seed", "2", "--overwrite"]) == 0
    assert json.JSONDecoder().raw_decode(capsys.readouterr().out)[0]["held_out"] == {
        "reference_seed": 2, "training_sky_seeds": [0], "held_out": True}


def test_demo_validates_on_a_held_out_sky(tmp_path, monkeypatch):
    """forse demo's chain around extend (stubbed here: the real one needs Nside >= 1024):
    the default sky seed is held out, a training seed warns through validate."""
    import forse.extend

    def fake_extend(lr, options=None, *, timings=None, return_baseline=False, **kw):
        rng = np.random.default_rng(0)
        return (lr * (1 + 0.05 * rng.standard_normal(lr.shape)),
                lr * (1 + 0.05 * rng.standard_normal(lr.shape)))

    monkeypatch.setattr(forse.extend, "extend", fake_extend)
    monkeypatch.setattr(forse.extend, "min_nside", lambda card: 1)  # demo refuses 64 up front
    args = ["demo", "--nside", "64", "--stokes", "T", "--quiet", "-o"]
    assert main(args + [str(tmp_path / "a")]) == 0
    s = json.loads((tmp_path / "a" / "demo.json").read_text())
    assert s["seed"] == 1 and s["validation"]["held_out"]["held_out"] is True
    assert "headline" in json.loads((tmp_path / "a" / "summary.json").read_text())
    with pytest.warns(UserWarning, match="reference sky seed 0 was used to train the bundled models"):
        assert main(args + [str(tmp_path / "b"), "--seed", "0"]) == 0
    s = json.loads((tmp_path / "b" / "demo.json").read_text())
    assert s["validation"]["held_out"]["held_out"] is False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clean_and_bad_mask_agree_with_the_full_test(dtype):
    from forse import _checks

    rng = np.random.default_rng()
    a = rng.standard_normal((3, 12 * 16 ** 2)).astype(dtype)
    assert _checks.clean(a) and not _checks.bad_mask(a).any()
    for bad in (np.nan, np.inf, -np.inf, hp.UNSEEN, -1e38):
        b = a.copy()
        i = rng.integers(b.size)
        b.flat[i] = bad
        full = ~np.isfinite(b) | (b == dtype(hp.UNSEEN))
        assert full.any() != _checks.clean(b) or bad == -1e38  # below UNSEEN: "look"
        np.testing.assert_array_equal(_checks.bad_mask(b), full)
    # a value below UNSEEN hides nothing: the full test runs
    b = a.copy()
    b.flat[:2] = (-1e38, hp.UNSEEN)
    assert _checks.bad_mask(b).sum() == 1


def test_one_point_matches_scipy():
    from scipy import stats

    x = np.random.default_rng().gamma(2.0, size=(7, 40, 40))
    x[0, 0, 0] = np.nan
    bins = np.linspace(0.1, 8.0, 61)
    r = V.one_point(x, bins)
    v = x[np.isfinite(x)]
    pdf, edges = np.histogram(v, bins=bins, density=True)
    np.testing.assert_array_equal(r["pdf"], pdf)
    np.testing.assert_array_equal(r["pdf_edges"], edges)
    np.testing.assert_allclose([r["mean"], r["std"], r["skewness"], r["kurtosis"]],
                               [v.mean(), v.std(), stats.skew(v), stats.kurtosis(v)], rtol=1e-12)
    uneven = np.array([0.0, 0.5, 2.0, 9.0])
    np.testing.assert_array_equal(V.one_point(x, uneven)["pdf"],
                                  np.histogram(v, bins=uneven, density=True)[0])


def test_report_mollweide_image_is_healpys():
    from forse import report

    m = np.random.default_rng().standard_normal(12 * 32 ** 2) + 2.0
    m[:100] = np.nan
    proj = hp.projector.MollweideProj(xsize=300)
    ref = proj.projmap(np.log10(np.where(m > 0, m, np.nan)), lambda x, y, z: hp.vec2pix(32, x, y, z))
    np.testing.assert_array_equal(report._moll(m, 300, f=report._log10_positive), ref)
