"""forse.chain: extension in stages (80' -> 12' -> 3' with the bundled models), here with tiny
untrained models at small Nside: 480' -> 120' (Nside 64) -> 30' (Nside 256)."""
import numpy as np
import pytest

from forse import _checks
from forse import extend as ext
from forse.pipeline import chain as ch
from test_extend import save_tiny_models

FWHM_IN = 480.0


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    # stage 1: 20 deg patches of 60' pixels, 480' -> 120'; stage 2: 5 deg of 15', 200' -> 30'
    one = save_tiny_models(tmp_path_factory.mktemp("s1"), 60.0, 120.0, FWHM_IN, 20)
    two = save_tiny_models(tmp_path_factory.mktemp("s2"), 15.0, 30.0, 200.0, 20)
    return one, two


@pytest.fixture(scope="module")
def sky():
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    return smooth(synthetic_dust(64, seed=5, stokes="TQU", fwhm_arcmin=120.0), FWHM_IN)


def test_plan_scales_the_tiling_and_picks_each_stage_nside(stages):
    steps = ch.plan(stages, input_fwhm_arcmin=FWHM_IN)
    (m1, o1), (m2, o2) = steps
    assert (m1, m2) == stages
    assert (o1.input_fwhm_arcmin, o1.nside_out, o1.size_deg, o1.overlap_deg) == (FWHM_IN, 64, 20, 5)
    assert (o2.input_fwhm_arcmin, o2.nside_out, o2.size_deg, o2.overlap_deg) == (120, 256, 5, 1.25)
    # a map already at 120' starts at the second stage; nside_out is the last stage's
    (m, o), = ch.plan(stages, input_fwhm_arcmin=120.0, nside_out=512)
    assert m == stages[1] and o.nside_out == 512 and o.input_fwhm_arcmin == 120.0


def test_plan_refuses_what_the_chain_cannot_take(stages, tmp_path):
    with pytest.raises(ValueError, match=r"`input_fwhm_arcmin`=600 is coarser than the chain "
                                         r"supports: stage '.*tiny-T.keras' takes maps at 480'"):
        ch.plan(stages, input_fwhm_arcmin=600.0)
    with pytest.raises(ValueError, match=r"takes maps at 100' or sharper \(its input is the "
                                         r"120' output"):
        narrow = save_tiny_models(tmp_path, 15.0, 30.0, 100.0, 20)  # takes 100', not 120'
        ch.plan([stages[0], narrow], input_fwhm_arcmin=FWHM_IN)
    with pytest.raises(ValueError, match="already as sharp as the last stage's output"):
        ch.plan(stages, input_fwhm_arcmin=30.0)


@pytest.mark.filterwarnings("ignore:`m`.*negative")  # untrained stage 1: a noisy 120' map
def test_chain_is_the_stages_one_after_the_other(stages, sky):
    """extend_chain = extend of each planned stage on the previous output (bit for bit), and the
    3' rule of forse.extend holds: a stage's network sees its card's input beam."""
    out = ch.extend_chain(sky, stages, input_fwhm_arcmin=FWHM_IN, seed=2, progress=False,
                          comm=None)
    (_, o1), (_, o2) = ch.plan(stages, input_fwhm_arcmin=FWHM_IN, seed=2)
    mid = ext.extend(sky, o1, progress=False, comm=None)
    ref = ext.extend(mid, o2, progress=False, comm=None)
    assert out.shape == (3, 12 * 256**2) and np.isfinite(out).all()
    np.testing.assert_array_equal(out, ref)


def test_generator_input_at_the_card_beam():
    from forse.pipeline.extend import _generator_input
    from forse.smoothing import resmooth

    rng = np.random.default_rng()
    m = rng.normal(size=(1, 12 * 32**2)).astype(np.float32)
    assert _generator_input(m, 200.0, {"fwhm_lr_arcmin": 200.0}) is m
    assert _generator_input(m, 300.0, {"fwhm_lr_arcmin": 200.0}) is m
    got = _generator_input(m, 120.0, {"fwhm_lr_arcmin": 200.0})
    np.testing.assert_allclose(got, resmooth(m, 120.0, 200.0).astype(np.float32), rtol=1e-6)


@pytest.mark.filterwarnings("ignore:`m`.*negative")
def test_memory_is_estimated_first(stages, sky, monkeypatch):
    monkeypatch.setattr(_checks, "physical_memory", lambda: 2**20)
    with pytest.raises(ValueError, match=r"`nside_out`=256 needs .* GiB for the Nside 256 stage"):
        ch.extend_chain(sky, stages, input_fwhm_arcmin=FWHM_IN, progress=False, comm=None)
