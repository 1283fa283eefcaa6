import os

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from forse import io


@pytest.fixture
def maps():
    rng = np.random.default_rng(1)
    return rng.normal(size=(3, hp.nside2npix(16)))


def test_roundtrip_t_and_tqu(tmp_path, maps):
    io.write_map(tmp_path / "t.fits", maps[0])
    io.write_map(tmp_path / "tqu.fits", maps)
    t, _ = io.read_map(tmp_path / "t.fits")
    tqu, _ = io.read_map(tmp_path / "tqu.fits")
    assert t.shape == maps[0].shape and t.dtype == np.float64
    np.testing.assert_array_equal(t, maps[0])
    np.testing.assert_array_equal(tqu, maps)
    q, _ = io.read_map(tmp_path / "tqu.fits", field=1)
    np.testing.assert_array_equal(q, maps[1])
    qu, _ = io.read_map(tmp_path / "tqu.fits", field=(1, 2))
    np.testing.assert_array_equal(qu, maps[1:])


def test_nest_file_is_returned_in_ring(tmp_path, maps):
    nest = hp.reorder(maps[0], r2n=True)
    io.write_map(tmp_path / "n.fits", nest, nest=True)
    with fits.open(tmp_path / "n.fits") as h:
        assert h[1].header["ORDERING"] == "NESTED"
    m, hdr = io.read_map(tmp_path / "n.fits")
    np.testing.assert_array_equal(m, maps[0])


def test_header_metadata(tmp_path, maps):
    io.write_map(tmp_path / "h.fits", maps, header={"UNIT": "uK_CMB", "COORDSYS": "G", "SEED": 7})
    _, hdr = io.read_map(tmp_path / "h.fits")
    assert hdr["UNIT"] == "uK_CMB"
    assert hdr["COORDSYS"] == "G"
    assert hdr["SEED"] == 7
    assert hdr["CREATOR"] == "forse"


def test_nan_written_as_unseen_and_partial_maps_read(tmp_path, maps):
    m = maps[0].copy()
    m[:10] = np.nan
    io.write_map(tmp_path / "u.fits", m)
    back, _ = io.read_map(tmp_path / "u.fits")
    assert np.all(back[:10] == hp.UNSEEN)
    np.testing.assert_array_equal(back[10:], m[10:])


def test_write_is_atomic_and_refuses_overwrite(tmp_path, maps):
    path = tmp_path / "a.fits"
    io.write_map(path, maps[0])
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write_map(path, maps[1])
    with pytest.raises(ValueError, match="not 12\\*nside"):
        io.write_map(path, np.zeros(100), overwrite=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.fits"]  # no temporary file left behind
    io.write_map(path, maps[1], overwrite=True)
    np.testing.assert_array_equal(io.read_map(path)[0], maps[1])
    assert sorted(os.listdir(tmp_path)) == ["a.fits"]


def test_write_errors(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        io.write_map(tmp_path / "x.fits", np.array(["a"] * 12))
    with pytest.raises(ValueError, match="shape"):
        io.write_map(tmp_path / "x.fits", np.zeros((2, 2, 12)))
    with pytest.raises(FileNotFoundError, match="folder"):
        io.write_map(tmp_path / "nope" / "x.fits", np.zeros(12))


def test_bad_files(tmp_path, maps):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.read_map(tmp_path / "missing.fits")
    text = tmp_path / "text.fits"
    text.write_text("not a fits file at all\n" * 10)
    with pytest.raises(ValueError, match="not a readable FITS"):
        io.read_map(text)
    img = tmp_path / "img.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(img)
    with pytest.raises(ValueError, match="not a HEALPix FITS map"):
        io.read_map(img)
    io.write_map(tmp_path / "t.fits", maps[0])
    with pytest.raises(ValueError, match="has 1 column"):
        io.read_map(tmp_path / "t.fits", field=(0, 1, 2))
    with pytest.raises(ValueError, match="sequence of ints"):
        io.read_map(tmp_path / "t.fits", field="T")
    io.write_map(tmp_path / "nan.fits", np.full(hp.nside2npix(4), np.nan))
    with pytest.raises(ValueError, match="no valid pixel"):
        io.read_map(tmp_path / "nan.fits")


@pytest.mark.parametrize("nside,dtype", [(64, np.float32), (16, np.float64), (4, np.float32)])
def test_layout_matches_healpy_writer(tmp_path, nside, dtype):
    """Same table layout, keywords and data as ``hp.write_map`` (rows of 1024 pixels, or of
    one pixel when npix is not a multiple of 1024), streamed in chunks."""
    m = np.random.default_rng().normal(size=(3, hp.nside2npix(nside))).astype(dtype)
    m[1, ::7] = np.nan
    io.write_map(tmp_path / "ours.fits", m, header={"UNIT": "uK_CMB", "COORDSYS": "G"})
    ref = np.where(np.isfinite(m), m, hp.UNSEEN)
    hp.write_map(tmp_path / "hp.fits", ref, coord="G", column_units="uK_CMB", dtype=[dtype] * 3,
                 column_names=["I_STOKES", "Q_STOKES", "U_STOKES"])
    with fits.open(tmp_path / "ours.fits") as a, fits.open(tmp_path / "hp.fits") as b:
        for key in ("NAXIS1", "NAXIS2", "TFORM1", "TTYPE2", "TUNIT3", "PIXTYPE", "ORDERING",
                    "COORDSYS", "NSIDE", "FIRSTPIX", "LASTPIX", "INDXSCHM", "OBJECT"):
            assert a[1].header[key] == b[1].header[key], key
        for col in ("I_STOKES", "Q_STOKES", "U_STOKES"):
            np.testing.assert_array_equal(a[1].data[col], b[1].data[col])
    np.testing.assert_array_equal(hp.read_map(tmp_path / "ours.fits", field=(0, 1, 2), dtype=dtype),
                                  ref)
    assert os.path.getsize(tmp_path / "ours.fits") % 2880 == 0


def test_gzip_output(tmp_path, maps):
    io.write_map(tmp_path / "t.fits.gz", maps)
    with open(tmp_path / "t.fits.gz", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    back, _ = io.read_map(tmp_path / "t.fits.gz")
    np.testing.assert_array_equal(back, maps)


def test_full_disk_leaves_no_partial_file(tmp_path, maps, monkeypatch):
    """A write that fails midway (ENOSPC) raises, keeps the old file and leaves no temporary."""
    import errno

    path = tmp_path / "a.fits"
    io.write_map(path, maps)
    before = path.read_bytes()

    def fill_up(f, *args):
        f.write(b"\0" * 5000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "_write_rows", fill_up)
    with pytest.raises(OSError, match="No space left"):
        io.write_map(path, maps[::-1], overwrite=True)
    with pytest.raises(OSError, match="No space left"):
        io.write_map(tmp_path / "new.fits", maps)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.fits"]
