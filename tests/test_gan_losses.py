"""Statistics-aware training terms: soft Minkowski functionals against the exact estimator,
the spectrum term against numpy's FFT, and the options wired through training and the card."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from scipy.ndimage import gaussian_filter  # noqa: E402

from forse.gan import TrainConfig, train  # noqa: E402
from forse.gan.losses import batch_power, minkowski_loss, radial_bins, soft_functionals, spectrum_loss  # noqa: E402
from forse.gan.train import Trainer  # noqa: E402
from forse.minkowski import functionals, standardize  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from gan_data import TINY  # noqa: E402


def _fields(n=8, size=96, smooth=3.0, seed=None):
    rng = np.random.default_rng(seed)
    return np.array([gaussian_filter(rng.normal(size=(size, size)), smooth, mode="wrap")
                     for _ in range(n)])


def test_soft_functionals_match_the_exact_estimator():
    """At a narrow sigmoid the differentiable V0, V1, V2 are the marching-squares ones (per
    pixel squared) to a few per cent of each curve's peak, on fresh random fields."""
    x = _fields()
    nu = np.linspace(-2.5, 2.5, 11)
    exact = np.mean([functionals(z, nu, normalize=True) for z in standardize(x)], axis=0)
    soft = soft_functionals(x[..., None].astype(np.float32), nu, tau=0.05).numpy().mean(axis=0)
    for k, tol in ((0, 0.01), (1, 0.05), (2, 0.1)):
        peak = np.abs(exact[k]).max()
        np.testing.assert_allclose(soft[k], exact[k], atol=tol * peak, err_msg=f"V{k}")


def test_minkowski_loss_zero_on_truth_and_sees_skewness():
    x = _fields(seed=None)[..., None].astype(np.float32)
    assert float(minkowski_loss(x, x)) == pytest.approx(0.0, abs=1e-10)
    skewed = np.exp(2 * standardize(x[..., 0]))[..., None].astype(np.float32)
    assert float(minkowski_loss(skewed, x)) > 10 * float(minkowski_loss(x[::-1], x)) + 1e-3
    v = tf.Variable(skewed)
    with tf.GradientTape() as tape:
        loss = minkowski_loss(v, x)
    g = tape.gradient(loss, v).numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_spectrum_terms_against_numpy():
    x = _fields(n=4, size=32, smooth=0.8)[..., None].astype(np.float32)
    bins = radial_bins(32)
    np.testing.assert_allclose(bins.sum(axis=0), 1.0, rtol=1e-6)
    u = x[..., 0] - x[..., 0].mean(axis=(1, 2), keepdims=True)
    p = (np.abs(np.fft.fft2(u)) ** 2).mean(axis=0)
    k = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(32) * 32, np.fft.fftfreq(32) * 32,
                                      indexing="ij"))).astype(int)
    ref = np.array([p[k == r].mean() for r in range(1, 17)])
    np.testing.assert_allclose(batch_power(x, tf.constant(bins)).numpy(), ref, rtol=1e-3,
                               atol=1e-5 * ref.max())  # float32 FFT
    assert float(spectrum_loss(x, x)) == pytest.approx(0.0, abs=1e-10)
    # twice the amplitude is four times the power in every bin: (log 4)^2
    assert float(spectrum_loss(2 * x, x)) == pytest.approx(np.log(4.0) ** 2, rel=1e-2)


def test_options_train_and_are_recorded(data, tmp_path):
    cfg = TrainConfig(steps=4, name="opt", conditional=True, minkowski_weight=1.0,
                      spectrum_weight=0.1, **TINY)
    trainer = Trainer(cfg)
    assert trainer.D.input_shape[-1] == 2  # the input patch beside the small scales
    train(data, tmp_path, cfg, progress=False)
    card = json.loads((tmp_path / "opt.json").read_text())
    c = card["training"]["config"]
    assert (c["conditional"], c["minkowski_weight"], c["spectrum_weight"]) == (True, 1.0, 0.1)


def test_terms_change_the_generator_update(data, tmp_path):
    """Same seed, same batches: the added terms must change the trained weights."""
    a = train(data, tmp_path / "a", TrainConfig(steps=2, name="a", **TINY), progress=False)
    b = train(data, tmp_path / "b", TrainConfig(steps=2, name="b", minkowski_weight=1.0, **TINY),
              progress=False)
    from forse.gan import load_generator

    wa = load_generator(tmp_path / "a" / "a.keras").model.get_weights()
    wb = load_generator(tmp_path / "b" / "b.keras").model.get_weights()
    assert a["steps"] == b["steps"] == 2
    assert any(not np.array_equal(x, y) for x, y in zip(wa, wb))


@pytest.mark.parametrize("kw, match", [
    (dict(minkowski_weight=-1.0), "minkowski_weight"),
    (dict(spectrum_weight=float("nan")), "spectrum_weight"),
])
def test_bad_weights(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw).check()
