"""Saved generators and model cards, generation, stochastic realizations, bundled models."""
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from forse.gan import (  # noqa: E402
    BUNDLED,
    Generator,
    add_input_noise,
    build_generator,
    generate,
    load_generator,
    make_card,
    save_generator,
)
from forse.gan.metrics import minkowski_overlap, minmax  # noqa: E402
from forse.normalize import rescale  # noqa: E402


def _card(**kw):
    base = dict(name="t", patch_size=16, pixel_arcmin=3.75, fwhm_hr_arcmin=12.0, fwhm_lr_arcmin=80.0,
                input_stokes="T", target_stokes="T", width=0.125, stochastic=True,
                noise_amplitude=0.1, robust=True, percentiles=(0.5, 99.5),
                training={"command": "forse train x y", "data_seed": 3, "steps": 10},
                metrics={"test": {"v0": 0.5}})
    base.update(kw)
    return make_card(**base)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)
    g = build_generator(None, width=0.125)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_generator(g, path, _card())
    return path, g


def _inputs(n=6, npix=32, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    lr = gaussian_filter(rng.standard_normal((n, npix, npix)), (0, 4, 4), mode="wrap")
    return rescale(lr)[0].astype(np.float32)


def test_save_load_round_trip(saved):
    path, g = saved
    gen, card = load_generator(path, with_card=True)
    assert isinstance(gen, Generator) and gen.card == card
    assert card == json.loads(path.with_suffix(".json").read_text())
    assert card["normalization"] == {"robust": True, "percentiles": [0.5, 99.5],
                                     "ell_range": [300.0, 1000.0]}
    assert card["training"]["data_seed"] == 3 and card["stochastic"] is True
    x = _inputs()
    ref = np.asarray(g(x[..., None], training=False))[..., 0]
    out = generate(gen, x, stochastic=False)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    # a path without the suffix, and a str, work too
    np.testing.assert_array_equal(generate(str(path.with_suffix("")), x, stochastic=False), out)


def test_stochastic_realizations(saved):
    gen = load_generator(saved[0])
    x = _inputs(n=8)
    a = generate(gen, x, seed=1)
    b = generate(gen, x, seed=1)
    c = generate(gen, x, seed=2)
    np.testing.assert_array_equal(a, b)  # same seed, same realization
    assert np.abs(a - c).max() > 1e-3  # another seed, another realization
    # statistically equivalent: same per-patch mean and spread, overlapping Minkowski bands
    draws = np.stack([generate(gen, x, seed=s) for s in range(6)])
    means, stds = draws.mean(axis=(2, 3)), draws.std(axis=(2, 3))
    assert np.all(means.std(axis=0) < 0.1 * stds.mean())
    assert np.all(np.abs(stds / stds.mean(axis=0) - 1) < 0.1)
    ov = minkowski_overlap(draws[0], draws[1])
    assert min(ov["v0"], ov["v1"], ov["v2"]) > 0.7, ov
    # not stochastic: the seed is ignored and the input is untouched
    np.testing.assert_array_equal(generate(gen, x, seed=1, stochastic=False),
                                  generate(gen, x, seed=2, stochastic=False))


def test_input_noise_is_forse_plus():
    x = _inputs(n=3)
    y = add_input_noise(x, 0.2, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y.min(axis=(1, 2)), -1, atol=1e-6)
    np.testing.assert_allclose(y.max(axis=(1, 2)), 1, atol=1e-6)
    # definition: x + U[-a, a] from the given stream, then min-max rescaled per patch
    noise = np.random.default_rng(0).uniform(-0.2, 0.2, x.shape)
    noisy = x + noise
    lo, hi = noisy.min(axis=(1, 2))[:, None, None], noisy.max(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(y, 2 * (noisy - lo) / (hi - lo) - 1, atol=2e-6)
    assert np.abs(y - x).mean() > 0.05
    np.testing.assert_array_equal(add_input_noise(x, 0.0, np.random.default_rng(0)), x)


def test_nan_pixels_stay_nan(saved):
    gen = load_generator(saved[0])
    x = _inputs(n=2)
    x[0, 3, 4] = np.nan
    out = generate(gen, x, seed=0)
    assert np.isnan(out[0, 3, 4]) and np.isfinite(np.delete(out.ravel(), 3 * 32 + 4)).all()


def test_single_patch_and_batches(saved):
    gen = load_generator(saved[0])
    x = _inputs(n=5)
    all_ = generate(gen, x, stochastic=False, batch_size=2)
    np.testing.assert_allclose(generate(gen, x[3], stochastic=False), all_[3], atol=1e-6)


@pytest.mark.parametrize("x, exc, match", [
    (np.zeros((2, 30, 30)), ValueError, "multiple of 4"),
    (np.zeros((2, 32, 16)), ValueError, "square"),
    (np.zeros(32), ValueError, "shape"),
    (np.zeros((2, 32, 32), dtype=complex), TypeError, "dtype"),
])
def test_generate_bad_input(saved, x, exc, match):
    with pytest.raises(exc, match=match):
        generate(saved[1], x)


def test_generate_bad_generator_and_noise(saved):
    with pytest.raises(TypeError, match="generator"):
        generate(42, np.zeros((1, 16, 16)))
    with pytest.raises(ValueError, match="noise_amplitude"):
        generate(saved[1], _inputs(n=1), stochastic=True, noise_amplitude=-1)
    with pytest.raises(ValueError, match="batch_size"):
        generate(saved[1], _inputs(n=1), batch_size=0)


def test_load_errors(tmp_path, saved):
    with pytest.raises(FileNotFoundError, match="no generator"):
        load_generator(tmp_path / "missing.keras")
    with pytest.raises(FileNotFoundError, match="bundled names"):
        load_generator("dust-X")
    with pytest.raises(TypeError, match="path_or_name"):
        load_generator(3)
    with pytest.raises(ValueError, match=r"\.keras"):
        save_generator(saved[1], tmp_path / "m.h5", _card())


def test_minmax_and_overlap_of_identical_sets():
    x = _inputs(n=4)
    m = minmax(x * 3 + 7)
    np.testing.assert_allclose(m.min(axis=(1, 2)), -1)
    np.testing.assert_allclose(m.max(axis=(1, 2)), 1)
    ov = minkowski_overlap(x, x * 5 - 2)  # min-max rescaling makes them identical
    assert ov == pytest.approx({"v0": 1.0, "v1": 1.0, "v2": 1.0, "score": 1.0})
    with pytest.raises(ValueError, match="same patch size"):
        minkowski_overlap(x, x[:, :16, :16])


SCALAR = ("dust-T", "dust-Q", "dust-U")  # ForSE's three; dust-TQU is the joint generator


def test_bundled_names():
    assert BUNDLED == SCALAR + ("dust-TQU", "dust3-T", "dust3-TQU")


@pytest.mark.parametrize("name", ["dust3-T", "dust3-TQU"])
def test_bundled_3arcmin_models(name):
    """The 3' stage's generators: 20' -> 3' at 0.9375' pixels, trained on the Nside 4096 sky of
    seed 0, held-out metrics on the test region in the card; they load and generate."""
    gen, card = load_generator(name, with_card=True)
    assert (card["fwhm_lr_arcmin"], card["fwhm_hr_arcmin"], card["pixel_arcmin"]) == (20, 3, 0.9375)
    assert card["training"]["nside"] == 4096 and card["training"]["sky_seeds"] == [0]
    assert card["normalization"]["ell_range"] == [1200.0, 4000.0]
    assert {"v0", "v1", "v2"} <= set(card["metrics"]["test"])
    x = _inputs(n=2, npix=64)
    if name.endswith("TQU"):
        x = np.stack([x, 0.1 * x, -0.1 * x], axis=1)
    out = generate(gen, x, seed=1)
    assert out.shape == x.shape and np.isfinite(out).all()


@pytest.mark.parametrize("name", SCALAR)
def test_bundled_models_load_and_reproduce(name):
    gen, card = load_generator(name, with_card=True)
    assert card["name"] == name and card["pixel_arcmin"] == 3.75
    assert card["stokes"] == name[-1] and card["target_stokes"] == "T"
    assert card["training"]["command"].startswith("forse train")
    assert {"v0", "v1", "v2"} <= set(card["metrics"]["test"])
    x = _inputs(n=2, npix=64)
    a, b = generate(gen, x, seed=7), generate(gen, x, seed=7)
    assert np.all(np.isfinite(a)) and np.abs(a).max() <= 1
    np.testing.assert_array_equal(a, b)
    if card["stochastic"]:
        assert np.abs(a - generate(gen, x, seed=8)).max() > 1e-3


@pytest.mark.parametrize("name", SCALAR)
def test_bundled_cards_record_their_training_sky(name):
    """Held-out bookkeeping: each bundled card lists the synthetic-sky seeds it was trained on
    and says which metric its numbers use."""
    from forse.gan.models import load_card

    card = load_card(name)
    assert card["training"]["sky_seeds"] == [0] == [card["training"]["data_seed"]]
    assert "seed 0" in card["training"]["sky"]
    assert card["training"]["test_patches"] is None  # their training sets are not kept
    assert card["metrics"]["metric"].startswith("minmax")


def test_bundled_joint_model():
    """dust-TQU: T, Q, U in and out, trained on sky version 2 of seed 0 (its test region held
    out and listed), scored with the nu metric per field, beside the ceiling."""
    gen, card = load_generator("dust-TQU", with_card=True)
    assert card["name"] == "dust-TQU" and card["stokes"] == card["target_stokes"] == "TQU"
    assert gen.channels == 3 and not card["stochastic"]
    tr = card["training"]
    assert tr["command"].startswith("forse train") and tr["sky_seeds"] == [0]
    assert tr["sky_version"] == 2 and len(tr["test_patches"]["lon_deg"]) >= 80
    m = card["metrics"]
    assert m["metric"].startswith("nu") and set(m["test_ceiling"]) == {"T", "Q", "U"}
    for f in "TQU":
        assert {"v0", "v1", "v2"} <= set(m["test"][f]) and 0 < m["test"][f]["score"] < 1
    x = np.stack([_inputs(n=2, npix=64)] * 3, axis=1)
    a = generate(gen, x)
    assert a.shape == x.shape and np.all(np.isfinite(a)) and np.abs(a).max() <= 1
    np.testing.assert_array_equal(a, generate(gen, x))


def test_metrics_module_is_forse_minkowski():
    """One metric: forse.gan.metrics only re-exports forse.minkowski's."""
    from forse import minkowski
    from forse.gan import metrics

    assert metrics.minkowski_overlap is minkowski.score and metrics.ceiling is minkowski.ceiling


def test_generator_seam_follows_its_card(saved):
    """inputs / run / small_scales: rescaling, noise and normalization as the card says."""
    from forse.gan import load_generator
    from forse.normalize import rescale, to_physical

    gen = load_generator(saved[0])
    rng = np.random.default_rng()
    n = 32
    lr = np.exp(0.1 * rng.standard_normal((3, n, n))) + 1.0
    norm = gen.normalization
    assert set(norm) == {"robust", "percentiles", "ell_range"}
    x = gen.inputs(lr)
    np.testing.assert_array_equal(x, rescale(lr, robust=norm["robust"],
                                             percentiles=norm["percentiles"])[0])
    seeds = [[7, i] for i in range(3)]
    g = gen.run(x, seeds, True)
    np.testing.assert_array_equal(g, gen.run(x, seeds, True))  # per-patch entropy
    np.testing.assert_array_equal(g[1:], gen.run(x[1:], seeds[1:], True))  # not batch-bound
    gauss = lr * (1 + 0.01 * rng.standard_normal(lr.shape))
    ss = gen.small_scales(g, lr, gauss, lr)
    want = to_physical(g, lr, gauss, lr_amplitude=lr, pixel_arcmin=gen.card["pixel_arcmin"],
                       robust=norm["robust"], ell_range=norm["ell_range"]) - lr
    np.testing.assert_array_equal(ss, want)
