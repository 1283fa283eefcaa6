"""Training terms that teach the generator the statistics forse is judged on.

The adversarial signal alone is a slow teacher on a CPU budget; these terms compare, on every
batch, the generated small scales with the true ones of the same inputs:

* ``minkowski_loss``: soft Minkowski functionals V0, V1, V2 of each patch, standardized as the
  headline metric does (``nu = (x - mean) / std``), at thresholds in [-3, 3]. The excursion
  set's step function becomes a sigmoid of width ``tau`` (in units of the patch's std), so the
  functionals are differentiable (Schmalzing & Buchert 1997 integral forms, derivatives by
  central differences):
  V0(nu) = <s(u - nu)>, V1(nu) = <d(u - nu) |grad u|>,
  V2(nu) = <d(u - nu) (2 ux uy uxy - ux^2 uyy - uy^2 uxx) / |grad u|^2> / (2 pi),
  with s the sigmoid and d its derivative. The loss is the squared difference of the batch mean
  and of the batch spread of each curve (the metric compares mean +- 1 sigma bands), each
  functional scaled by the true curves' largest magnitude.
* ``spectrum_loss``: squared difference of the log of the batch-mean power of generated and true
  patches in radial bins of the 2-D FFT (every multipole the patch holds; bins where the truth's
  power is below ``FLOOR`` of its peak, beyond its beam, count through the floor only).

* ``teb_spectrum_loss``: for the joint T/Q/U generator, ``spectrum_loss`` of T and of the E
  and B modes of Q/U (flat-sky, the patch frame of ``forse.spectra.flat_teb_spectra``), so the
  term teaches EE/BB, which per-channel Q and U spectra do not constrain.

They take ``(batch, n, n, 1)`` tensors (``teb_spectrum_loss``: ``(batch, n, n, 3)``) and
return a scalar; they are float32 throughout.
"""
from __future__ import annotations

import numpy as np

N_SOFT_THRESHOLDS = 16
SOFT_TAU = 0.15
FLOOR = 1e-4  # of the true peak power, spectrum_loss


def _std(centred, axis, keepdims=False):
    """Standard deviation with a finite gradient where it is zero (tf.math.reduce_std's is NaN)."""
    import tensorflow as tf

    return tf.sqrt(tf.reduce_mean(centred * centred, axis=axis, keepdims=keepdims) + 1e-12)


def soft_functionals(images, thresholds, tau=SOFT_TAU):
    """``(batch, 3, n_thresholds)`` soft V0, V1, V2 of standardized ``(batch, n, n, 1)`` images
    (V1 and V2 per pixel squared, interior pixels)."""
    import tensorflow as tf

    u = tf.cast(images[..., 0], tf.float32)
    mean = tf.reduce_mean(u, axis=(1, 2), keepdims=True)
    u = (u - mean) / _std(u - mean, (1, 2), keepdims=True)
    ux = 0.5 * (u[:, 1:-1, 2:] - u[:, 1:-1, :-2])
    uy = 0.5 * (u[:, 2:, 1:-1] - u[:, :-2, 1:-1])
    uxx = u[:, 1:-1, 2:] - 2 * u[:, 1:-1, 1:-1] + u[:, 1:-1, :-2]
    uyy = u[:, 2:, 1:-1] - 2 * u[:, 1:-1, 1:-1] + u[:, :-2, 1:-1]
    uxy = 0.25 * (u[:, 2:, 2:] - u[:, 2:, :-2] - u[:, :-2, 2:] + u[:, :-2, :-2])
    g2 = ux * ux + uy * uy
    grad = tf.sqrt(g2 + 1e-8)
    curv = (2 * ux * uy * uxy - ux * ux * uyy - uy * uy * uxx) / (g2 + 1e-4)
    c = u[:, 1:-1, 1:-1][..., None] - tf.constant(np.asarray(thresholds, np.float32))
    s = tf.sigmoid(c / tau)
    d = s * (1 - s) / tau
    v0 = tf.reduce_mean(s, axis=(1, 2))
    v1 = tf.reduce_mean(d * grad[..., None], axis=(1, 2))
    v2 = tf.reduce_mean(d * curv[..., None], axis=(1, 2)) / (2 * np.pi)
    return tf.stack([v0, v1, v2], axis=1)


def minkowski_loss(fake, real, n_thresholds=N_SOFT_THRESHOLDS, tau=SOFT_TAU):
    """Mean and spread of the soft V0-V2 curves of ``fake`` against ``real``."""
    import tensorflow as tf

    nu = np.linspace(-3.0, 3.0, n_thresholds)
    vf = soft_functionals(fake, nu, tau)
    vr = tf.stop_gradient(soft_functionals(real, nu, tau))
    scale = tf.reduce_max(tf.abs(tf.reduce_mean(vr, axis=0)), axis=1, keepdims=True) + 1e-6
    dm = (tf.reduce_mean(vf, axis=0) - tf.reduce_mean(vr, axis=0)) / scale
    ds = (_std(vf - tf.reduce_mean(vf, axis=0), 0) - _std(vr - tf.reduce_mean(vr, axis=0), 0)) / scale
    return tf.reduce_mean(dm * dm) + tf.reduce_mean(ds * ds)


def radial_bins(n):
    """``(n*n, n//2)`` matrix averaging a centred-or-not ``n x n`` FFT power into integer radial
    wavenumber bins 1..n/2 (the mean, k = 0, is left out)."""
    k = np.fft.fftfreq(n) * n
    r = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int).ravel()
    nb = n // 2
    m = np.zeros((n * n, nb), np.float32)
    ok = (r >= 1) & (r <= nb)
    m[np.flatnonzero(ok), r[ok] - 1] = 1.0
    return m / np.maximum(m.sum(axis=0), 1.0)


def _fft(images, c=0):
    import tensorflow as tf

    u = tf.cast(images[..., c], tf.float32)
    u = u - tf.reduce_mean(u, axis=(1, 2), keepdims=True)
    return tf.signal.fft2d(tf.complex(u, tf.zeros_like(u)))


def _binned(f, bins):
    import tensorflow as tf

    p = tf.math.real(f * tf.math.conj(f))
    p = tf.reshape(p, (tf.shape(p)[0], -1))
    return tf.tensordot(tf.reduce_mean(p, axis=0), bins, axes=1)


def batch_power(images, bins):
    """Batch-mean radially binned power ``(n/2,)`` of ``(batch, n, n, 1)`` images."""
    return _binned(_fft(images), bins)


def eb_modes(images):
    """FFTs of the E and B modes of channels 1, 2 (Q, U; x along rows) of ``(batch, n, n, 3)``."""
    import tensorflow as tf

    n = int(images.shape[1])
    k = np.fft.fftfreq(n)
    phi = np.arctan2(k[None, :], k[:, None])  # (l_x along rows, l_y along columns)
    c2 = tf.constant(np.cos(2 * phi), tf.complex64)
    s2 = tf.constant(np.sin(2 * phi), tf.complex64)
    q, u = _fft(images, 1), _fft(images, 2)
    return q * c2 + u * s2, -q * s2 + u * c2


def _log_distance(pf, pr):
    import tensorflow as tf

    pr = tf.stop_gradient(pr)
    # bins where the truth has no power (beyond its beam) hold float32 round-off: a floor at
    # FLOOR of the peak keeps them from dominating while excess power there is still penalized
    floor = FLOOR * tf.reduce_max(pr) + 1e-30
    d = tf.math.log(pf + floor) - tf.math.log(pr + floor)
    return tf.reduce_mean(d * d)


def spectrum_loss(fake, real):
    """Log power of ``fake`` against ``real`` in radial bins, squared and averaged."""
    import tensorflow as tf

    bins = tf.constant(radial_bins(int(fake.shape[1])))
    return _log_distance(batch_power(fake, bins), batch_power(real, bins))


def teb_spectrum_loss(fake, real):
    """``spectrum_loss`` of T plus those of the E and B modes of the joint generator's Q/U."""
    import tensorflow as tf

    bins = tf.constant(radial_bins(int(fake.shape[1])))
    loss = _log_distance(batch_power(fake, bins), batch_power(real, bins))
    for f, r in zip(eb_modes(fake), eb_modes(real)):
        loss += _log_distance(_binned(f, bins), _binned(r, bins))
    return loss
