"""ForSE networks: architecture as in the paper, widths, fully convolutional generator, logits."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from forse.gan import build_discriminator, build_generator  # noqa: E402


def _kinds(model):
    return [type(layer).__name__ for layer in model.layers if not isinstance(layer, layers.InputLayer)]


def test_generator_is_forse_architecture():
    g = build_generator(64, width=1.0)
    convs = [layer for layer in g.layers if isinstance(layer, layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 128, 256, 128, 64, 1]
    assert [c.strides for c in convs] == [(1, 1), (2, 2), (2, 2), (1, 1), (1, 1), (1, 1)]
    assert all(c.kernel_size == (5, 5) and c.padding == "same" for c in convs)
    kinds = _kinds(g)
    unit = ["Conv2D", "LeakyReLU", "BatchNormalization"]
    assert kinds == unit * 3 + ["UpSampling2D"] + unit + ["UpSampling2D"] + unit + ["Conv2D", "Activation"]
    for layer in g.layers:
        if isinstance(layer, layers.BatchNormalization):
            assert layer.momentum == 0.5
        if isinstance(layer, layers.LeakyReLU):
            assert layer.negative_slope == pytest.approx(0.2)
    assert g.layers[-1].activation.__name__ == "tanh"


def test_discriminator_is_forse_architecture_and_emits_logits():
    d = build_discriminator(32, width=1.0, seed=3)
    convs = [layer for layer in d.layers if isinstance(layer, layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 128, 256]
    assert [c.strides for c in convs] == [(1, 1), (2, 2), (2, 2)]
    kinds = _kinds(d)
    assert kinds[-3:] == ["Flatten", "Dropout", "Dense"]
    assert [layer.rate for layer in d.layers if isinstance(layer, layers.Dropout)] == [0.25]
    dense = d.layers[-1]
    assert dense.units == 1 and dense.activation.__name__ == "linear"
    x = np.random.default_rng(0).normal(0, 50, (4, 32, 32, 1)).astype(np.float32)
    out = np.asarray(d(x, training=False))
    assert out.shape == (4, 1)
    assert np.all(np.isfinite(out)) and (out.min() < 0 or out.max() > 1)  # raw logits


@pytest.mark.parametrize("width", [0.125, 0.25, 0.5])
def test_width_scales_filters(width):
    g = build_generator(None, width=width)
    convs = [layer.filters for layer in g.layers if isinstance(layer, layers.Conv2D)]
    assert convs == [max(1, round(n * width)) for n in (64, 128, 256, 128, 64)] + [1]


def test_generator_fully_convolutional_and_in_range():
    g = build_generator(None, width=0.125, in_channels=2)
    rng = np.random.default_rng(1)
    for n in (16, 36):
        x = rng.uniform(-1, 1, (2, n, n, 2)).astype(np.float32)
        y = np.asarray(g(x, training=False))
        assert y.shape == (2, n, n, 1)
        assert np.all(np.abs(y) <= 1)


def test_mixed_precision_outputs_float32():
    g = build_generator(None, width=0.125, dtype="mixed_bfloat16")
    d = build_discriminator(16, width=0.125, dtype="mixed_bfloat16")
    x = np.zeros((1, 16, 16, 1), np.float32)
    assert g(x).dtype == "float32" and d(x).dtype == "float32"
    assert g.layers[1].compute_dtype == "bfloat16"


@pytest.mark.parametrize("kwargs, match", [
    (dict(patch_size=30), "multiple of 4"),
    (dict(patch_size=0), "multiple of 4"),
    (dict(patch_size=16, width=0), "width"),
    (dict(patch_size=16, in_channels=0), "in_channels"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_generator(**kwargs)
    with pytest.raises(ValueError, match=match):
        build_discriminator(**kwargs)


def test_discriminator_needs_patch_size():
    with pytest.raises(ValueError, match="patch_size.*required"):
        build_discriminator(None)
