"""Unit conversions against the closed forms, and the FITS header rules of ``io.write_map``."""
import numpy as np
import pytest

from forse import io, units
from forse.extend import output_header

H, K, C, T_CMB = 6.62607015e-34, 1.380649e-23, 299792458.0, 2.7255


def closed_form(freq_ghz):
    """uK_CMB -> uK_RJ (dB/dT of the CMB over the Rayleigh-Jeans 2 k nu^2 / c^2) and
    uK_RJ -> MJy/sr (2 k nu^2 / c^2, in MJy/sr per uK)."""
    nu = freq_ghz * 1e9
    x = H * nu / (K * T_CMB)
    rj = 2 * K * nu**2 / C**2 * 1e-6 / 1e-20  # W/m^2/Hz/sr per uK -> MJy/sr
    return x**2 * np.exp(x) / np.expm1(x) ** 2, rj


@pytest.mark.parametrize("freq", [30.0, 100.0, 353.0, 857.0])
def test_factors_match_the_closed_forms(freq):
    cmb_rj, rj_mjy = closed_form(freq)
    np.testing.assert_allclose(units.factor("uK_CMB", "uK_RJ", freq), cmb_rj, rtol=1e-9)
    np.testing.assert_allclose(units.factor("uK_RJ", "MJy/sr", freq), rj_mjy, rtol=1e-9)
    np.testing.assert_allclose(units.factor("MJy/sr", "uK_CMB", freq) * cmb_rj * rj_mjy, 1.0,
                               rtol=1e-9)
    assert units.factor("K_CMB", "uK_CMB") == 1e6 and units.factor("mK_RJ", "uK_RJ") == 1e3


def test_convert_keeps_unseen_and_checks():
    import healpy as hp

    m = np.array([1.0, hp.UNSEEN, np.nan, 2.0])
    units.convert(m, "uK_CMB", "uK_RJ", 353.0)
    assert m[1] == hp.UNSEEN and np.isnan(m[2]) and m[0] == pytest.approx(0.0774864, rel=1e-5)
    with pytest.raises(ValueError, match="`freq_ghz`"):
        units.factor("uK_CMB", "uK_RJ")
    with pytest.raises(ValueError, match="`to_unit` must be one of"):
        units.factor("uK_CMB", "Jy")
    with pytest.raises(ValueError, match="`unit` must be one of"):
        units.canonical("MK_CMB")


def test_header_keys_polcconv_and_long_keys(tmp_path):
    tqu = np.zeros((3, 12 * 4**2))
    io.write_map(tmp_path / "a.fits", tqu, header={"REFFREQ": 353.0, "a_long_keyword": 1.5})
    _, h = io.read_map(tmp_path / "a.fits")
    assert h["POLCCONV"] == "COSMO" and h["POLAR"] is True
    assert h["A_LONG_KEYWORD"] == 1.5 and h["REFFREQ"] == 353.0  # HIERARCH, not cut to 8
    io.write_map(tmp_path / "b.fits", tqu, header={"POLCCONV": "IAU"})
    assert io.read_map(tmp_path / "b.fits")[1]["POLCCONV"] == "IAU"  # the caller's, not dropped
    io.write_map(tmp_path / "t.fits", tqu[0])
    assert "POLCCONV" not in io.read_map(tmp_path / "t.fits")[1]
    with pytest.raises(ValueError, match="header key 'a=b'"):
        io.write_map(tmp_path / "c.fits", tqu, header={"a=b": 1})


def test_output_header_records_every_model_card_and_the_beams():
    h = output_header(None, seed=1, input_fwhm_arcmin=80.0, nside_out=2048, pol_mode="qu",
                      layout="regular", stochastic=None, stokes="TQU", unit="uK_RJ",
                      freq_ghz=353.0)
    assert h["MODELCRD"] and h["CARD_Q"] and h["CARD_U"] and h["CARD_Q"] != h["CARD_U"]
    assert h["INFWHM"][0] == 80.0 and h["OUTFWHM"][0] == 12.0
    assert (h["ELLKEEP"][0], h["ELLGEN"][0]) == (217, 307)
    assert h["UNIT"] == "uK_RJ" and h["REFFREQ"][0] == 353.0
    ratio = output_header(None, seed=1, input_fwhm_arcmin=80.0, nside_out=2048,
                          pol_mode="ratio", layout="regular", stochastic=None, stokes="TQU")
    assert "CARD_Q" not in ratio and "UNIT" not in ratio  # only the T model is used there
