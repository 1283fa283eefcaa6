"""Saved generators: ``.keras`` weights + a JSON model card, loading (bundled names or paths)
and generation with optional seeded stochastic realizations (ForSE+).

The generator works on *rescaled* patches: the input is a low-resolution patch mapped to [-1, 1]
by :func:`forse.normalize.rescale` (with the card's ``normalization`` settings), the output is
the small-scale ratio pattern in [-1, 1]; :func:`forse.normalize.to_physical` turns it into
physical units. Stochastic realizations add seeded uniform noise U[-a, a] to the rescaled input
and rescale it again (min-max) before the network, so one input gives many outputs and a seed
reproduces one exactly.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._atomic import replacing, write_json
from .._cards import (  # noqa: F401
    BUNDLED,
    CARD_FORMAT,
    default_ell_range,
    load_card,
    resolve_model_path,
)

NOISE_AMPLITUDE = 0.1  # default ForSE+ input noise amplitude (in rescaled units)


def add_input_noise(x, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """ForSE+ noise: ``x + U[-amplitude, amplitude]`` per pixel, then min-max rescaled to [-1, 1]
    again (per patch). ``x`` is ``(..., n, n)`` already in [-1, 1]; NaN pixels stay NaN."""
    if not (np.isfinite(amplitude) and amplitude >= 0):
        raise ValueError(f"`noise_amplitude` must be a finite number >= 0, got {amplitude!r}")
    x = np.asarray(x, dtype=np.float32)
    if amplitude == 0:
        return x
    from ..pipeline.normalize import rescale

    noisy = x + rng.uniform(-amplitude, amplitude, size=x.shape).astype(np.float32)
    return rescale(noisy, robust=False)[0]


def _atomic_json(path: Path, obj) -> None:
    write_json(path, obj, indent=2, sort_keys=True)


def make_card(*, name, patch_size, pixel_arcmin, fwhm_hr_arcmin, fwhm_lr_arcmin, input_stokes,
              target_stokes, width, stochastic, noise_amplitude, robust, percentiles,
              ell_range=None, training=None, metrics=None) -> dict:
    """The JSON model card written beside a ``.keras`` generator. ``ell_range`` (the band
    that sets the small scales' amplitude) defaults to (300, 1000) scaled to the pixel size."""
    from .. import __version__

    return {
        "format": CARD_FORMAT,
        "name": name,
        "patch_size": int(patch_size),
        "pixel_arcmin": float(pixel_arcmin),
        "fwhm_hr_arcmin": float(fwhm_hr_arcmin),
        "fwhm_lr_arcmin": float(fwhm_lr_arcmin),
        "stokes": input_stokes,
        "target_stokes": target_stokes,
        "width": float(width),
        "stochastic": bool(stochastic),
        "noise_amplitude": float(noise_amplitude),
        "normalization": {"robust": bool(robust), "percentiles": [float(p) for p in percentiles],
                          "ell_range": [float(e) for e in (ell_range or default_ell_range(pixel_arcmin))]},
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "forse_version": __version__,
    }


def save_generator(model, path, card: dict) -> Path:
    """Write ``model`` to ``path`` (``.keras``) and ``card`` to the ``.json`` beside it, atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"`path` must end in .keras, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".keras") as tmp:  # Keras picks the format by extension
        model.save(tmp)
    _atomic_json(path.with_suffix(".json"), card)
    return path


class Generator:
    """A loaded generator: ``.model`` (Keras), ``.card`` (dict), ``.path``; calling it is
    :func:`generate` with this model."""

    def __init__(self, model, card: dict | None = None, path=None):
        self.model = model
        self.card = dict(card or {})
        self.path = path
        self._fn = None

    def __repr__(self):
        return (f"Generator(name={self.card.get('name')!r}, stokes={self.card.get('stokes')!r}, "
                f"width={self.card.get('width')!r}, path={str(self.path)!r})")

    @property
    def channels(self) -> int:
        """Input (= output) channels: 1, or 3 for the joint T/Q/U generator."""
        return int(self.model.input_shape[-1])

    def predict(self, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Run the network on rescaled float32 patches (no noise): ``(N, n, n)`` for one channel,
        ``(N, C, n, n)`` (channels first, as forse's patch stacks) for C."""
        import tensorflow as tf

        if self._fn is None:
            self._fn = tf.function(lambda t: self.model(t, training=False), reduce_retracing=True)
        xc = x[..., None] if x.ndim == 3 else np.moveaxis(x, 1, -1)
        out = np.empty(xc.shape[:-1] + (self.model.output_shape[-1],), dtype=np.float32)
        for i in range(0, len(x), batch_size):
            out[i:i + batch_size] = self._fn(tf.constant(xc[i:i + batch_size]))
        return out[..., 0] if x.ndim == 3 else np.moveaxis(out, -1, 1)

    def __call__(self, x, **kwargs):
        return generate(self, x, **kwargs)

    # -- the seam between a model and the pipeline: its card says how patches go in and out
    @property
    def normalization(self) -> dict:
        """``robust``, ``percentiles`` and ``ell_range`` of the card's normalization (the
        defaults ``forse train`` writes when the card has none)."""
        n = self.card.get("normalization", {})
        px = float(self.card.get("pixel_arcmin", 3.75))
        return {"robust": bool(n.get("robust", True)),
                "percentiles": tuple(float(v) for v in n.get("percentiles", (0.5, 99.5))),
                "ell_range": tuple(float(v) for v in n.get("ell_range", default_ell_range(px)))}

    def inputs(self, lr, t_scaled=None) -> np.ndarray:
        """The network input of low-resolution patches, rescaled as the card says: ``(N, n, n)``
        for a scalar model, ``(N, 3, n, n)`` T, Q, U (patch frame) for the joint one, whose T may
        come already rescaled (``t_scaled``, the same rescaling)."""
        from ..pipeline.normalize import rescale

        n = self.normalization
        if self.channels == 1:
            return rescale(lr, robust=n["robust"], percentiles=n["percentiles"])[0]
        from .train import joint_inputs

        return joint_inputs(lr, robust=n["robust"], percentiles=n["percentiles"],
                            t_scaled=t_scaled)

    def run(self, x, seeds=None, stochastic=None) -> np.ndarray:
        """The network on inputs ``x`` (``inputs``), one call for the batch; with ForSE+ noise
        (``stochastic``, None: the card's) patch i's noise is drawn from its own entropy
        ``seeds[i]``, so a realization does not depend on batch sizes or MPI ranks."""
        if stochastic is None:
            stochastic = bool(self.card.get("stochastic", False))
        if stochastic:
            amp = float(self.card.get("noise_amplitude", NOISE_AMPLITUDE))
            x = np.stack([add_input_noise(xi, amp, np.random.default_rng(s))
                          for xi, s in zip(x, seeds)])
        # one call per batch: 45 patches/s at 16 against 38 at 8 (320^2, width 0.25, 2 cores)
        return generate(self, x, stochastic=False, batch_size=max(1, len(x)))

    def small_scales(self, g, base, gauss, amplitude, *, with_t: bool = False) -> np.ndarray:
        """Physical small scales of generated patches ``g`` (``run``), relative to ``base`` (the
        patches they are added to), with the amplitude of the Gaussian baseline ``gauss``
        (``forse.normalize``; ``amplitude`` the local intensity that modulates them).

        Scalar model: ``to_physical(g, base, gauss, lr_amplitude=amplitude) - base``, ``(N, n, n)``.
        Joint model: the Q, U small scales ``(N, 2, n, n)`` of ``spin2_to_physical`` (``base``,
        ``gauss``: ``(N, 3, n, n)`` T, Q, U); extend takes T from the scalar T model, so the
        generated T channel is used only ``with_t`` (then ``(N, 3, n, n)``, T first, as the
        scalar rule with ``amplitude``: the quality bench reports the joint model's own T)."""
        from ..pipeline.normalize import spin2_to_physical, to_physical

        n = self.normalization
        px = float(self.card["pixel_arcmin"])
        if self.channels == 1:
            return to_physical(g, base, gauss, lr_amplitude=amplitude, pixel_arcmin=px,
                               robust=n["robust"], ell_range=n["ell_range"]) - base
        q, u = spin2_to_physical(g[:, 1], g[:, 2], base[:, 1], base[:, 2], gauss[:, 1],
                                 gauss[:, 2], amplitude, pixel_arcmin=px,
                                 ell_range=n["ell_range"])
        qu = [q - base[:, 1], u - base[:, 2]]
        if with_t:
            qu.insert(0, to_physical(g[:, 0], base[:, 0], gauss[:, 0], lr_amplitude=amplitude,
                                     pixel_arcmin=px, robust=n["robust"],
                                     ell_range=n["ell_range"]) - base[:, 0])
        return np.stack(qu, axis=1)


def load_generator(path_or_name, *, with_card: bool = False):
    """Load a generator (``.keras`` + card) by bundled name or path.

    Returns a :class:`Generator`, or ``(generator, card)`` with ``with_card=True``.
    """
    import keras

    path = resolve_model_path(path_or_name)
    model = keras.models.load_model(path, compile=False)
    gen = Generator(model, load_card(path), path)
    return (gen, gen.card) if with_card else gen


def _as_generator(generator) -> Generator:
    if isinstance(generator, Generator):
        return generator
    if isinstance(generator, (str, os.PathLike)):
        return load_generator(generator)
    import keras

    if isinstance(generator, keras.Model):
        return Generator(generator)
    raise TypeError(f"`generator` must be a forse.gan.Generator, a Keras model, a bundled name or "
                    f"a path, got {type(generator).__name__}")


def generate(generator, x, *, seed=None, stochastic=None, noise_amplitude=None,
             batch_size: int = 8) -> np.ndarray:
    """Small-scale patches in [-1, 1] from rescaled low-resolution patches.

    Parameters
    ----------
    generator : Generator, Keras model, bundled name ("dust-T", ...) or ``.keras`` path.
    x : (n, n) or (N, n, n) array in [-1, 1]: low-resolution patches rescaled with
        ``forse.normalize.rescale`` (the card's ``normalization`` settings); n a multiple of 4.
        NaN pixels are fed as 0 and come back NaN. A joint T/Q/U generator takes (3, n, n) or
        (N, 3, n, n) (``forse.gan.train.joint_inputs`` order: T, Q, U) and returns the same.
    seed : seeds the input noise of a stochastic realization (int or numpy Generator); the same
        seed gives the same output; None draws fresh entropy.
    stochastic : add ForSE+ noise; None follows the model card (False without a card).
    noise_amplitude : the noise half-width; None follows the card (default 0.1).
    batch_size : patches per network call.

    Returns float32 of the shape of ``x``. Use ``forse.normalize.to_physical`` for physical units.
    """
    gen = _as_generator(generator)
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`x` must be a real numeric array, got dtype {a.dtype}")
    c = gen.channels
    if c == 1 and a.ndim not in (2, 3):
        raise ValueError(f"`x` must be one patch (n, n) or a stack (N, n, n), got shape {a.shape}")
    if c > 1 and (a.ndim not in (3, 4) or a.shape[-3] != c):
        raise ValueError(f"`x` must be ({c}, n, n) or (N, {c}, n, n) for this {c}-channel "
                         f"generator, got shape {a.shape}")
    n0, n1 = a.shape[-2:]
    if n0 != n1 or n0 % 4 or n0 == 0:
        raise ValueError(f"`x` patches must be square with a side that is a multiple of 4, got "
                         f"{n0}x{n1}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    stack = a.reshape((-1, n0, n1) if c == 1 else (-1, c, n0, n1)).astype(np.float32)
    if stochastic is None:
        stochastic = bool(gen.card.get("stochastic", False))
    if noise_amplitude is None:
        noise_amplitude = float(gen.card.get("noise_amplitude", NOISE_AMPLITUDE))
    bad = ~np.isfinite(stack)
    if stochastic:
        if c > 1:
            raise ValueError("`stochastic` realizations are not supported by a multi-channel "
                             "generator (ForSE+ noise would break its shared Q/U scale)")
        stack = add_input_noise(stack, float(noise_amplitude), np.random.default_rng(seed))
    stack = np.where(bad, np.float32(0), stack)
    out = gen.predict(stack, batch_size=batch_size)
    out[bad] = np.nan
    return out.reshape(a.shape)
