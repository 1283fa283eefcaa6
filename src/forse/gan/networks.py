"""The ForSE DCGAN networks (Krachmalnicoff & Puglisi 2021) in Keras 3.

Generator: Conv 64 (5x5) -> Conv 128 s2 -> Conv 256 s2 -> UpSampling -> Conv 128 -> UpSampling
-> Conv 64 -> Conv 1 + tanh; every hidden convolution is followed by LeakyReLU(0.2) and
BatchNormalization(momentum=0.5). It is fully convolutional: built without a patch size it runs
on any patch whose side is a multiple of 4 (train on 64^2, run on 320^2).

Discriminator: Conv 64 -> Conv 128 s2 -> Conv 256 s2 (LeakyReLU(0.2), BatchNormalization on the
strided ones, as ForSE) -> Flatten -> Dropout(0.25) -> Dense 1 emitting a logit (train it with a
from-logits loss).

``width`` multiplies every filter count (1.0 is the paper; 0.25 runs a full sky on a laptop CPU).
``dtype`` is a Keras dtype policy ("float32", "mixed_bfloat16", ...); outputs stay float32.
"""
from __future__ import annotations

import keras
from keras import layers

GENERATOR_FILTERS = (64, 128, 256, 128, 64)
DISCRIMINATOR_FILTERS = (64, 128, 256)


def _filters(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _check(patch_size, width, in_channels, kernel_size, need_size: bool):
    if patch_size is None:
        if need_size:
            raise ValueError("`patch_size` is required for the discriminator (it ends in a Dense "
                             "layer), got None")
    elif (not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size < 4
          or patch_size % 4):
        raise ValueError(f"`patch_size` must be a positive multiple of 4 (two stride-2 stages), "
                         f"got {patch_size!r}")
    if not (isinstance(width, (int, float)) and 0 < width <= 8):
        raise ValueError(f"`width` must be a number in (0, 8], got {width!r}")
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise ValueError(f"`in_channels` must be a positive integer, got {in_channels!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"`kernel_size` must be a positive integer, got {kernel_size!r}")


def build_generator(patch_size: int | None = None, width: float = 1.0, in_channels: int = 1, *,
                    out_channels: int = 1, kernel_size: int = 5, dtype="float32",
                    name: str = "forse_generator"):
    """The ForSE generator; input ``(batch, n, n, in_channels)``, output ``(batch, n, n,
    out_channels)`` in [-1, 1] (3 and 3 for the joint T/Q/U generator)."""
    _check(patch_size, width, in_channels, kernel_size, need_size=False)
    if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels < 1:
        raise ValueError(f"`out_channels` must be a positive integer, got {out_channels!r}")
    k = kernel_size
    f1, f2, f3, f4, f5 = (_filters(n, width) for n in GENERATOR_FILTERS)
    inp = keras.Input((patch_size, patch_size, in_channels), name="lr")
    x = inp
    for filters, strides, up in ((f1, 1, False), (f2, 2, False), (f3, 2, False),
                                 (f4, 1, True), (f5, 1, True)):
        if up:
            x = layers.UpSampling2D(dtype=dtype)(x)
        x = layers.Conv2D(filters, k, strides=strides, padding="same", dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, dtype=dtype)(x)
        x = layers.BatchNormalization(momentum=0.5, dtype=dtype)(x)
    x = layers.Conv2D(out_channels, k, padding="same", dtype=dtype)(x)
    out = layers.Activation("tanh", dtype="float32", name="small_scales")(x)
    return keras.Model(inp, out, name=name)


def build_discriminator(patch_size: int, width: float = 1.0, in_channels: int = 1, *,
                        kernel_size: int = 5, dropout: float = 0.25, seed: int | None = None,
                        dtype="float32", name: str = "forse_discriminator"):
    """The ForSE discriminator; input ``(batch, n, n, channels)``, output logits ``(batch, 1)``."""
    _check(patch_size, width, in_channels, kernel_size, need_size=True)
    k = kernel_size
    inp = keras.Input((patch_size, patch_size, in_channels), name="small_scales")
    x = inp
    for filters, strides in zip((_filters(n, width) for n in DISCRIMINATOR_FILTERS), (1, 2, 2)):
        x = layers.Conv2D(filters, k, strides=strides, padding="same", dtype=dtype)(x)
        if strides > 1:
            x = layers.BatchNormalization(momentum=0.5, dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    x = layers.Dropout(dropout, seed=seed, dtype=dtype)(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inp, out, name=name)
