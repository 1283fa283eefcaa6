import h5py
import healpy as hp
import numpy as np
import pytest

from forse import training_set as ts
from forse.cli import main
from forse.masks import latitude_mask, training_mask
from forse.projection import healpix_to_patches, patch_angles
from forse.sky import noise_variance, synthetic_dust
from forse.smoothing import gaussian_small_scales, smooth

NSIDE, NPIX, PIX = 64, 24, 25.0  # 10 deg patches of 24^2 on an Nside 64 sky (fast)
HR, LR = 60.0, 180.0
KW = dict(fwhm_hr_arcmin=HR, fwhm_lr_arcmin=LR, npix=NPIX, pixel_arcmin=PIX, progress=False)


@pytest.fixture(scope="module")
def sky():
    m = synthetic_dust(NSIDE, seed=2, stokes="TQU", fwhm_arcmin=HR)
    mask = training_mask(m, noise_variance(NSIDE, "TQU", fwhm_arcmin=HR), bmin_deg=10.0)
    return m, mask


@pytest.fixture(scope="module")
def tset(sky, tmp_path_factory):
    out = tmp_path_factory.mktemp("ts")
    paths = ts.build(sky[0][0], out, mask=sky[1], n_patches=50, seed=7, **KW)
    return paths


def _read(path):
    with ts.load(path) as d:
        return {k: np.asarray(getattr(d, k)[...]) for k in
                ("hr", "lr", "target", "gauss", "lon_deg", "lat_deg", "component")}, dict(d.attrs)


def _interp(m, lon, lat, npix=NPIX, pix=PIX):
    theta, phi = patch_angles(lon, lat, npix=npix, pixel_arcmin=pix)
    return hp.get_interp_val(m, theta.ravel(), phi.ravel()).reshape(theta.shape)


def test_files_layout_and_attrs(tset):
    assert set(tset) == {"train", "validation", "test"}
    sizes = {}
    for split, path in tset.items():
        with h5py.File(path) as f:
            for k in ("hr", "lr", "target", "gauss"):
                assert f[k].dtype == np.float32 and f[k].shape[1:] == (NPIX, NPIX)
            assert f["lon_deg"].dtype == np.float64
            sizes[split] = f["hr"].shape[0]
            a = f.attrs
            assert a["split"] == split and a["nside"] == NSIDE and a["npix"] == NPIX
            assert a["fwhm_hr_arcmin"] == HR and a["fwhm_lr_arcmin"] == LR
            assert a["pixel_arcmin"] == PIX and a["seed"] == 7 and a["stokes"] == "T"
            assert "forse_version" in a
    assert sizes == {"train": 40, "validation": 5, "test": 5}


def test_patches_match_an_independent_projection(sky, tset):
    """lr, hr, target and gauss against healpy.get_interp_val at the patch pixel positions."""
    hr = sky[0][0]
    lr = smooth(hr, LR)
    gauss = gaussian_small_scales(lr, LR, HR, seed=7)
    d, _ = _read(tset["train"])
    for name, m in (("hr", hr), ("lr", lr), ("gauss", gauss)):
        ref = _interp(m, d["lon_deg"], d["lat_deg"])
        rel = np.abs(d[name] - ref) / np.abs(ref).max()
        assert rel.max() < 1e-6, (name, rel.max(), rel.mean())
    np.testing.assert_allclose(d["target"], d["hr"] / d["lr"], rtol=1e-6)
    assert np.all(d["component"] == 0)


def test_every_patch_is_in_the_mask(sky, tset):
    mask = sky[1].astype(float)
    for path in tset.values():
        d, _ = _read(path)
        theta, phi = patch_angles(d["lon_deg"], d["lat_deg"], npix=NPIX, pixel_arcmin=PIX)
        frac = mask[hp.ang2pix(NSIDE, theta, phi)].reshape(len(theta), -1).mean(axis=1)
        assert frac.min() >= 0.9 - 0.05  # 0.9 estimated on a 32x32 grid


def test_no_patch_of_one_split_overlaps_another(tset):
    """Direct check: the HEALPix pixels under densely sampled footprints never meet across
    splits, and centres are at least two circumscribed radii apart."""
    fine = 256
    cover, vecs = {}, {}
    for split, path in tset.items():
        d, _ = _read(path)
        theta, phi = patch_angles(d["lon_deg"], d["lat_deg"], npix=4 * NPIX, pixel_arcmin=PIX / 4)
        cover[split] = set(hp.ang2pix(fine, theta.ravel(), phi.ravel()))
        vecs[split] = np.asarray(hp.ang2vec(d["lon_deg"], d["lat_deg"], lonlat=True))
    r = np.radians(ts.patch_radius_deg(NPIX, PIX))
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not cover[a] & cover[b], (a, b)
        sep = np.arccos(np.clip(vecs[a] @ vecs[b].T, -1, 1))
        assert sep.min() >= 2 * r


def test_reproducible_and_seeded(sky, tmp_path):
    a = ts.build(sky[0][0], tmp_path / "a", mask=sky[1], n_patches=20, seed=3, **KW)
    b = ts.build(sky[0][0], tmp_path / "b", mask=sky[1], n_patches=20, seed=3, **KW)
    c = ts.build(sky[0][0], tmp_path / "c", mask=sky[1], n_patches=20, seed=4, **KW)
    da, db, dc = (_read(p["train"])[0] for p in (a, b, c))
    for k in da:
        np.testing.assert_array_equal(da[k], db[k])
    assert not np.array_equal(da["lon_deg"], dc["lon_deg"])


def test_qu_inputs_are_paired_with_intensity_targets(sky, tmp_path):
    m, mask = sky
    paths = ts.build(m, tmp_path, mask=mask, n_patches=12, stokes="QU", seed=1, **KW)
    d, attrs = _read(paths["train"])
    assert attrs["stokes"] == "QU"
    n = d["hr"].shape[0]
    assert n == 2 * 10  # two entries (Q, U) per position
    np.testing.assert_array_equal(d["component"], np.tile([1, 2], n // 2))
    np.testing.assert_array_equal(d["target"][0::2], d["target"][1::2])
    np.testing.assert_array_equal(d["lon_deg"][0::2], d["lon_deg"][1::2])
    lr = smooth(m, LR)
    lon, lat = d["lon_deg"][0::2], d["lat_deg"][0::2]
    ref = healpix_to_patches(lr, lon, lat, npix=NPIX, pixel_arcmin=PIX, pol=True, backend="numpy")
    np.testing.assert_allclose(d["lr"][0::2], ref[:, 1], rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(d["lr"][1::2], ref[:, 2], rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    t_hr = _interp(m[0], lon, lat)
    t_lr = _interp(lr[0], lon, lat)
    np.testing.assert_allclose(d["target"][0::2], t_hr / t_lr, rtol=1e-5)


def test_tqu_sets_store_t_q_u_per_position(sky, tmp_path):
    """stokes="TQU" (the joint generator's set): three entries per position, T, Q, U in order,
    each with its own hr and lr patch."""
    m, mask = sky
    paths = ts.build(m, tmp_path, mask=mask, n_patches=12, stokes="TQU", seed=1, **KW)
    d, attrs = _read(paths["train"])
    assert attrs["stokes"] == "TQU" and d["hr"].shape[0] == 3 * 10
    np.testing.assert_array_equal(d["component"], np.tile([0, 1, 2], 10))
    lon, lat = d["lon_deg"][0::3], d["lat_deg"][0::3]
    np.testing.assert_array_equal(d["lon_deg"][2::3], lon)
    ref = healpix_to_patches(m, lon, lat, npix=NPIX, pixel_arcmin=PIX, pol=True, backend="numpy")
    for c in range(3):
        np.testing.assert_allclose(d["hr"][c::3], ref[:, c], rtol=1e-5,
                                   atol=1e-6 * np.abs(ref).max())


def test_unseen_pixels_are_excluded(sky, tmp_path):
    m = sky[0][0].copy()
    centre = hp.ang2vec(60.0, 45.0, lonlat=True)
    hole = hp.query_disc(NSIDE, centre, np.radians(8.0))
    m[hole] = hp.UNSEEN
    mask = latitude_mask(NSIDE, 10.0)
    paths = ts.build(m, tmp_path, mask=mask, n_patches=60, seed=0, **KW)
    margin = set(hp.query_disc(NSIDE, centre, np.radians(8.0) + np.radians(LR / 60)))
    for path in paths.values():
        d, _ = _read(path)
        for k in ("hr", "lr", "target", "gauss"):
            assert np.all(np.isfinite(d[k])), k
        theta, phi = patch_angles(d["lon_deg"], d["lat_deg"], npix=NPIX, pixel_arcmin=PIX)
        assert not set(hp.ang2pix(NSIDE, theta.ravel(), phi.ravel())) & set(hole)
        assert len(set(hp.ang2pix(NSIDE, theta.ravel(), phi.ravel())) & margin) == 0


def test_too_few_patches_says_how_many(sky, tmp_path):
    cap = np.zeros(hp.nside2npix(NSIDE), bool)
    cap[hp.query_disc(NSIDE, hp.ang2vec(0.0, 70.0, lonlat=True), np.radians(12.0))] = True
    with pytest.raises(ValueError, match=r"room for only \d+ of the \d+ \w+ patches"):
        ts.build(sky[0][0], tmp_path, mask=cap, n_patches=40, max_candidates=5000, **KW)
    assert not list(tmp_path.iterdir())  # nothing half-written is left


def test_constant_and_nonpositive_patches_are_rejected(tmp_path):
    npix = hp.nside2npix(NSIDE)
    # a constant sky has no spectrum for the Gaussian baseline to extrapolate: refused up front
    with pytest.raises(ValueError, match="no fluctuations over `ell_fit`"):
        ts.build(np.full(npix, 100.0), tmp_path, n_patches=10, max_candidates=300, **KW)
    neg = -synthetic_dust(NSIDE, seed=1, fwhm_arcmin=HR)
    with pytest.raises(ValueError, match="'nonpositive_lr': [1-9]"):
        ts.build(neg, tmp_path, n_patches=10, max_candidates=300, **KW)
    # a map constant in one hemisphere: those patches are replaced, never stored
    m = synthetic_dust(NSIDE, seed=1, fwhm_arcmin=HR)
    theta, _ = hp.pix2ang(NSIDE, np.arange(npix))
    lr = smooth(m, LR)
    m[theta > np.pi / 2] = 50.0
    lr[theta > np.pi / 2] = 50.0
    paths = ts.build(m, tmp_path, lr_map=lr, n_patches=30, seed=1, overwrite=True, **KW)
    for path in paths.values():
        d, attrs = _read(path)
        assert np.all(np.ptp(d["target"], axis=(1, 2)) > 0)
        assert np.all(np.ptp(d["lr"], axis=(1, 2)) > 0)
    assert sum(_read(p)[1]["rejected_constant"] for p in paths.values()) > 0


@pytest.mark.parametrize("kw, exc, match", [
    (dict(fwhm_lr_arcmin=60.0), ValueError, "must be larger than `fwhm_hr_arcmin`"),
    (dict(fwhm_lr_arcmin=30.0), ValueError, "must be larger than `fwhm_hr_arcmin`"),
    (dict(stokes="QU"), ValueError, "needs a \\(3, npix\\)"),
    (dict(stokes="E"), ValueError, "'T', 'Q', 'U', 'QU' or 'TQU'"),
    (dict(n_patches=0), ValueError, "n_patches"),
    (dict(fractions=(1, 1)), ValueError, "fractions"),
    (dict(min_coverage=0), ValueError, "min_coverage"),
    (dict(mask=np.ones(12, bool)), ValueError, "`mask` must be"),
    (dict(lr_map=np.ones(12 * 32 ** 2)), ValueError, "`lr_map` has shape"),
])
def test_errors(sky, tmp_path, kw, exc, match):
    args = dict(KW, n_patches=10)
    args.update(kw)
    with pytest.raises(exc, match=match):
        ts.build(sky[0][0], tmp_path, **args)


def test_existing_files_and_bad_maps(sky, tset, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ts.build(sky[0][0], tset["train"].parent, n_patches=10, **KW)
    with pytest.raises(ValueError, match="not 12\\*nside"):
        ts.build(np.ones(1000), tmp_path, n_patches=10, **KW)
    with pytest.raises(TypeError, match="dtype"):
        ts.build(np.array(["a"] * 12), tmp_path, n_patches=10, **KW)
    with pytest.raises(ValueError, match="no valid pixel"):
        ts.build(np.full(hp.nside2npix(16), hp.UNSEEN), tmp_path, n_patches=10, **KW)


def test_load_is_lazy(tset, tmp_path):
    with ts.load(tset["train"]) as d:
        assert isinstance(d.hr, h5py.Dataset) and len(d) == 40
        assert d.hr[3:5].shape == (2, NPIX, NPIX)
        assert "split='train'" in repr(d)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ts.load(tmp_path / "nope.h5")
    (tmp_path / "x.h5").write_text("no")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        ts.load(tmp_path / "x.h5")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["hr"] = np.zeros((1, 2, 2))
    with pytest.raises(ValueError, match="missing dataset"):
        ts.load(tmp_path / "y.h5")


def test_to_forse_npy(tset, tmp_path):
    out = ts.to_forse_npy(tset["validation"], tmp_path / "v.npy")
    arr = np.load(out)
    d, _ = _read(tset["validation"])
    assert arr.shape == (2, 5, NPIX, NPIX) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[1], d["lr"])
    np.testing.assert_allclose(arr[0] / arr[1], d["target"], rtol=1e-6)  # ForSE's Y / X
    np.testing.assert_allclose(arr[0], d["hr"], rtol=1e-6)  # for T this is the 12' patch
    tgt = np.load(ts.to_forse_npy(tset["validation"], tmp_path / "t.npy", first="target"))
    np.testing.assert_array_equal(tgt[0], d["target"])
    with pytest.raises(FileExistsError):
        ts.to_forse_npy(tset["validation"], tmp_path / "v.npy")
    with pytest.raises(ValueError, match="`first`"):
        ts.to_forse_npy(tset["validation"], tmp_path / "z.npy", first="lr")


def test_cli_sky_mask_training_set(tmp_path, capsys):
    for cmd in ("sky", "mask", "training-set"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "example" in capsys.readouterr().out
    s, v, mk = (str(tmp_path / n) for n in ("s.fits", "v.fits", "m.fits"))
    assert main(["sky", "-o", s, "--nside", "32", "--stokes", "TQU", "--variance", v]) == 0
    assert main(["mask", s, v, "-o", mk]) == 0
    assert main(["sky", "-o", s, "--nside", "32"]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    out = tmp_path / "ts"
    assert main(["training-set", "-i", s, "--mask", mk, "-o", str(out), "-n", "10", "--npix",
                 "16", "--pixel", "40", "--fwhm-hr", "60", "--fwhm-lr", "180", "--npy",
                 "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s}.{e}" for s in ("train", "validation", "test") for e in ("h5", "npy"))
    import h5py

    with h5py.File(out / "test.h5") as f:  # the sky's provenance, from the map's SEED header
        assert f.attrs["sky"] == "s.fits" and int(f.attrs["sky_seed"]) == 0
    assert main(["training-set", "-o", str(tmp_path / "t3"), "--nside", "32", "-n", "10",
                 "--npix", "16", "--pixel", "40", "--fwhm-hr", "60", "--fwhm-lr", "180",
                 "--bmin", "0", "--snr", "0", "--seed", "4", "--quiet"]) == 0
    with h5py.File(tmp_path / "t3" / "train.h5") as f:
        assert f.attrs["sky"] == "synthetic" and int(f.attrs["sky_seed"]) == 4
    assert main(["training-set", "-o", str(tmp_path / "t2"), "--nside", "32", "-n", "10",
                 "--npix", "16", "--pixel", "40", "--fwhm-hr", "60", "--fwhm-lr", "50",
                 "--quiet"]) == 2
    assert "--fwhm-lr (50) must be larger than --fwhm-hr (60)" in capsys.readouterr().err


def test_too_few_positions_for_the_splits_asked():
    """A split asked for (share > 0) that would get no position is refused, naming the option."""
    from forse.training_set import split_counts

    with pytest.raises(ValueError, match=r"`n_patches`=5 .* no validation and no test patch.*>= 10"):
        split_counts(5, (0.8, 0.1, 0.1))
    np.testing.assert_array_equal(split_counts(10, (0.8, 0.1, 0.1)), [8, 1, 1])
    np.testing.assert_array_equal(split_counts(3, (1.0, 0.0, 0.0)), [3, 0, 0])
    with pytest.raises(ValueError, match="--n-patches"):
        split_counts(5, (0.8, 0.1, 0.1), "--n-patches", "--fractions")


def test_one_reader_names_the_argument(tmp_path):
    """TrainingSet is the one reader of split files: the trainer and the CLI name their own
    argument in its errors and ask only for the datasets they use."""
    import h5py

    from forse.training_set import TrainingSet

    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as f:
        f["lr"] = np.zeros((2, 8, 8), np.float32)
        f.attrs["nside"] = np.int64(64)
    with pytest.raises(ValueError, match=r"^DATA '.*train\.h5' is not a forse training set: "
                                         r"missing dataset\(s\) \['target'\] \(has \['lr'\]\)"):
        TrainingSet(path, require=("lr", "target"), name="DATA")
    with TrainingSet(path, require=("lr",)) as ts:
        assert len(ts) == 2 and ts.hr is None and ts.lon_deg is None
        assert ts.attrs["nside"] == 64 and type(ts.attrs["nside"]) is int
        assert not ts.has_component and ts.component.shape == (2,)
