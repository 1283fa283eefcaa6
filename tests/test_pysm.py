"""forse.pysm: a forse-extended map as a PySM 3 component, at small Nside with a tiny model.

At the reference frequency the emission is the template in uK_RJ; away from it and over a
bandpass it is PySM's own modified black-body scaling (``ModifiedBlackBody``, as its d1 model)
of the same template, and at one frequency the closed-form MBB law."""
import healpy as hp
import numpy as np
import pytest

pysm3 = pytest.importorskip("pysm3", reason="pysm3 is not installed (pip install \"forse[pysm]\")")
import pysm3.units as u  # noqa: E402

from forse import io, units  # noqa: E402
from test_extend import FWHM_HR, FWHM_LR, NSIDE, PX, save_tiny_models  # noqa: E402

H_K = 6.62607015e-34 / 1.380649e-23  # h / k_B, s K


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from forse.pysm import forse_dust

    d = tmp_path_factory.mktemp("pysm")
    model = save_tiny_models(d, PX, FWHM_HR, FWHM_LR, 20)
    opts = dict(seed=3, model=model, input_fwhm_arcmin=FWHM_LR, nside_template=NSIDE,
                cache=d / "cache")
    comp = forse_dust(NSIDE, **opts)
    path = comp.template_path
    template, head = io.read_map(path)
    return {"opts": opts, "comp": comp, "path": path, "template": template, "head": head}


def test_emission_at_the_reference_frequency_is_the_template(setup):
    from forse.pysm import ForseDust

    comp, template, head = setup["comp"], setup["template"], setup["head"]
    assert head["UNIT"] == "uK_CMB" and head["REFFREQ"] == 353.0
    assert isinstance(comp, ForseDust)
    sky = pysm3.Sky(nside=NSIDE, component_objects=[comp], output_unit="uK_CMB")
    m = sky.get_emission(353 * u.GHz)
    assert m.unit == u.uK_CMB and m.shape == (3, 12 * NSIDE**2)
    np.testing.assert_allclose(m.value, template, rtol=1e-5, atol=1e-6 * np.abs(template).max())
    rj = comp.get_emission(353 * u.GHz)  # PySM's own unit: Rayleigh-Jeans
    f = units.factor("uK_CMB", "uK_RJ", 353.0)
    np.testing.assert_allclose(rj.value, f * template, rtol=1e-5,
                               atol=1e-6 * f * np.abs(template).max())


def test_single_frequency_is_the_modified_black_body(setup):
    comp, template = setup["comp"], setup["template"]
    nu, nu0, beta, temp = 100.0, 353.0, 1.54, 20.0

    def planck(nu_ghz):
        x = H_K * nu_ghz * 1e9 / temp
        return nu_ghz**3 / np.expm1(x)

    # in RJ units: (nu/nu0)^(beta - 2) B_nu(T) / B_nu0(T)
    scale = (nu / nu0) ** (beta - 2) * planck(nu) / planck(nu0)
    expected = template * units.factor("uK_CMB", "uK_RJ", nu0) * scale
    got = comp.get_emission(nu * u.GHz).value
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_bandpass_equals_pysm_d1_style_scaling_of_the_same_template(setup, tmp_path):
    """Spectral index and temperature maps (as d1), a non-flat bandpass: the forse component
    and PySM's ModifiedBlackBody given the same template in uK_RJ agree."""
    from pysm3.models.dust import ModifiedBlackBody

    from forse.pysm import ForseDust

    rng = np.random.default_rng(0)
    npix = 12 * NSIDE**2
    beta = hp.smoothing(rng.normal(0, 0.1, npix), fwhm=np.radians(10)) + 1.55
    temp = hp.smoothing(rng.normal(0, 1.0, npix), fwhm=np.radians(10)) + 19.5
    io.write_map(tmp_path / "beta.fits", beta, header={"UNIT": ""})
    io.write_map(tmp_path / "temp.fits", temp, header={"UNIT": "K"})
    freqs = np.linspace(120, 180, 13) * u.GHz
    weights = np.hanning(15)[1:-1]
    ours = ForseDust(setup["path"], NSIDE, mbb_index=tmp_path / "beta.fits",
                     mbb_temperature=tmp_path / "temp.fits")
    rj = (setup["template"] * u.uK_CMB).to(u.uK_RJ,
                                          equivalencies=u.cmb_equivalencies(353 * u.GHz))
    io.write_map(tmp_path / "rj.fits", rj.value, header={"UNIT": "uK_RJ"})
    d1 = ModifiedBlackBody(map_I=str(tmp_path / "rj.fits"), freq_ref_I="353 GHz",
                           freq_ref_P="353 GHz", map_mbb_index=str(tmp_path / "beta.fits"),
                           map_mbb_temperature=str(tmp_path / "temp.fits"),
                           unit_mbb_temperature="K", nside=NSIDE)
    a = ours.get_emission(freqs, weights).value
    b = d1.get_emission(freqs, weights).value
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max())
    # and the bandpass does something: it differs from the emission at the central frequency
    assert np.abs(a - ours.get_emission(150 * u.GHz).value).max() > 1e-3 * np.abs(a).max()


def test_cached_lower_nside_and_user_maps(setup, monkeypatch, tmp_path):
    from forse import pysm as fp

    def fail(*a, **k):
        raise AssertionError("the cached template was extended again")

    monkeypatch.setattr(fp, "_make_template", fail)
    low = fp.forse_dust(NSIDE // 2, **setup["opts"])  # from the cache, ud_graded as PySM does
    np.testing.assert_allclose(low.get_emission(353 * u.GHz).value,
                               hp.ud_grade(np.asarray(setup["comp"].get_emission(353 * u.GHz)),
                                           NSIDE // 2), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="`unit`"):  # checked before any extension
        fp.forse_dust(NSIDE, input_map=np.zeros(12 * NSIDE**2), **setup["opts"])
    with pytest.raises(ValueError, match="expected Nside"):
        fp.ForseDust(setup["template"], NSIDE // 2, unit="uK_CMB", freq_ref=353)
    # an array template in MJy/sr at another frequency gives the same sky as its uK_CMB twin
    f = units.factor("uK_CMB", "MJy/sr", 353.0)
    mjy = fp.ForseDust(setup["template"] * f, NSIDE, unit="MJy/sr", freq_ref=353)
    np.testing.assert_allclose(mjy.get_emission(220 * u.GHz).value,
                               setup["comp"].get_emission(220 * u.GHz).value, rtol=1e-6,
                               atol=1e-9)
    # a masked pixel (UNSEEN in forse's files) is NaN in the emission, not -1.6e30 scaled
    masked = setup["template"].copy()
    masked[:, 5] = hp.UNSEEN
    io.write_map(tmp_path / "masked.fits", masked, header={"UNIT": "uK_CMB", "REFFREQ": 353.0})
    m = fp.ForseDust(tmp_path / "masked.fits", NSIDE).get_emission(100 * u.GHz).value
    assert np.isnan(m[:, 5]).all() and np.isfinite(np.delete(m, 5, axis=1)).all()
