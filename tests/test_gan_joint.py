"""The joint T/Q/U generator: training sets, spin-2 augmentation, training and its card."""
import json
import os

import h5py
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from forse.gan import TrainConfig, generate, load_generator, train  # noqa: E402
from forse.gan.train import Batches, read_joint  # noqa: E402
from gan_data import TINY, _field, write_set  # noqa: E402


def write_joint_set(folder, *, npix=32, counts=(12, 4, 4), seed=0):
    """T, Q, U entries per position (components 0, 1, 2 interleaved), as `--stokes TQU`."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "validation", "test"), counts):
        t_lr = 10.0 + 2.0 * _field(rng, n, npix, 6.0)
        ratio = np.exp(0.15 * _field(rng, n, npix, 1.0))
        lr = np.stack([t_lr, _field(rng, n, npix, 6.0), _field(rng, n, npix, 6.0)], axis=1)
        hr = lr + np.stack([t_lr * (ratio - 1), 0.3 * _field(rng, n, npix, 1.0),
                            0.2 * _field(rng, n, npix, 1.0)], axis=1)
        lon, lat = rng.uniform(0, 360, n), rng.uniform(-60, 60, n)
        with h5py.File(f"{folder}/{split}.h5", "w") as f:
            for k, v in (("lr", lr), ("hr", hr), ("gauss", lr)):
                f[k] = v.reshape(3 * n, npix, npix).astype(np.float32)
            f["target"] = np.repeat(ratio, 3, axis=0).astype(np.float32)
            f["lon_deg"], f["lat_deg"] = np.repeat(lon, 3), np.repeat(lat, 3)
            f["component"] = np.tile(np.arange(3, dtype=np.uint8), n)
            f.attrs.update(nside=64, fwhm_hr_arcmin=12.0, fwhm_lr_arcmin=80.0, pixel_arcmin=3.75,
                           npix=npix, seed=seed, split=split, stokes="TQU", forse_version="test")
    return lr, hr


JOINT = dict(TINY, input_stokes="TQU", target_stokes="TQU", checkpoint_every=2)


def test_read_joint_groups_t_q_u_per_position(tmp_path):
    write_joint_set(tmp_path)
    lr, hr, attrs = read_joint(tmp_path, "train")
    assert lr.shape == hr.shape == (12, 3, 32, 32) and attrs["stokes"] == "TQU"
    with h5py.File(tmp_path / "train.h5") as f:
        np.testing.assert_array_equal(lr[:, 1], f["lr"][1::3])
        np.testing.assert_array_equal(hr[:, 2], f["hr"][2::3])
    write_set(tmp_path / "..", npix=16, counts=(8, 4, 4), stokes="QU")
    with pytest.raises(ValueError, match="holds no 'T' inputs|not a joint"):
        read_joint(tmp_path / "..", "train")


def test_joint_training_writes_a_three_channel_model(tmp_path):
    write_joint_set(tmp_path)
    s = train(tmp_path, tmp_path / "out", TrainConfig(steps=4, name="j", **JOINT), progress=False)
    assert s["steps"] == 4
    card = json.loads((tmp_path / "out" / "j.json").read_text())
    assert card["stokes"] == card["target_stokes"] == "TQU"
    test = card["metrics"]["test"]
    assert set(test) >= {"v0", "v1", "v2", "score", "T", "Q", "U"}
    assert test["score"] == pytest.approx(np.mean([test[k]["score"] for k in "TQU"]))
    assert set(card["metrics"]["test_ceiling"]) == {"T", "Q", "U"}
    gen = load_generator(tmp_path / "out" / "j.keras")
    assert gen.channels == 3
    x = np.zeros((2, 3, 32, 32), np.float32)
    assert generate(gen, x).shape == (2, 3, 32, 32) and generate(gen, x[0]).shape == (3, 32, 32)
    with pytest.raises(ValueError, match=r"\(N, 3, n, n\)"):
        generate(gen, x[:, 0])
    with pytest.raises(ValueError, match="stochastic"):
        generate(gen, x, stochastic=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_stokes="TQU"), "both 'TQU'"),
    (dict(input_stokes="TQU", target_stokes="TQU", stochastic=True), "stochastic"),
    (dict(target_stokes="QU"), "target_stokes"),
])
def test_joint_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs).check()


def test_joint_training_refuses_a_scalar_set(tmp_path):
    write_set(tmp_path, npix=32)
    with pytest.raises(ValueError, match="holds no 'Q' inputs|not a joint"):
        train(tmp_path, tmp_path / "out", TrainConfig(steps=2, **JOINT), progress=False)


def _qu_of(psi):
    """Q, U of an E-mode potential on the array axes, ``Q = psi_00 - psi_11``, ``U = 2 psi_01``
    (periodic differences): rotating or mirroring psi must rotate Q/U as spin 2."""
    d0 = lambda a: (np.roll(a, -1, 0) - np.roll(a, 1, 0)) / 2  # noqa: E731
    d1 = lambda a: (np.roll(a, -1, 1) - np.roll(a, 1, 1)) / 2  # noqa: E731
    return d0(d0(psi)) - d1(d1(psi)), 2 * d0(d1(psi))


def test_augmentation_turns_q_u_as_spin2():
    rng = np.random.default_rng(11)
    psi = _field(rng, 6, 16, 2.0)
    q, u = _qu_of(psi.transpose(1, 2, 0))
    x = np.stack([psi, q.transpose(2, 0, 1), u.transpose(2, 0, 1)], axis=-1).astype(np.float32)
    cfg = TrainConfig(**dict(JOINT, patch_size=16, batch_size=24)).check()
    xb, yb = Batches(x, x.copy(), cfg)(np.random.default_rng(5))
    np.testing.assert_array_equal(xb, yb)
    for k in range(len(xb)):  # each draw a turn and/or mirror of one psi: its own Q/U again
        q_k, u_k = _qu_of(xb[k, ..., 0].astype(np.float64))
        np.testing.assert_allclose(xb[k, ..., 1], q_k, atol=1e-5)
        np.testing.assert_allclose(xb[k, ..., 2], u_k, atol=1e-5)


def test_teb_spectrum_term_sees_the_e_b_balance():
    """The joint spectrum term uses the E and B modes of Q/U in the frame of
    forse.spectra.flat_teb_spectra: zero on the truth, and a pattern whose E and B are swapped
    ((Q, U) -> (-U, Q)) is penalized when EE != BB, though its Q and U spectra barely change."""
    import tensorflow as tf

    from forse.gan.losses import eb_modes, radial_bins, spectrum_loss, teb_spectrum_loss
    from forse.spectra import flat_teb_spectra

    rng = np.random.default_rng(41)
    n = 32
    psi = np.fft.fft2(rng.standard_normal((8, n, n)))
    kx, ky = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    q = np.fft.ifft2(-(kx ** 2 - ky ** 2) * psi).real  # pure E (x along rows)
    u = np.fft.ifft2(-2 * kx * ky * psi).real
    qb = np.fft.ifft2(-2 * kx * ky * np.fft.fft2(rng.standard_normal((8, n, n)))).real
    ub = np.zeros_like(qb)
    t = rng.standard_normal((8, n, n))
    real = np.stack([t, q + 0.3 * qb, u + 0.3 * ub], axis=-1).astype(np.float32)
    swapped = np.stack([t, -real[..., 2], real[..., 1]], axis=-1)
    r = tf.constant(real)
    assert float(teb_spectrum_loss(r, r)) == 0.0
    per_channel = sum(float(spectrum_loss(tf.constant(swapped[..., c:c + 1]), r[..., c:c + 1]))
                      for c in range(3))
    assert float(teb_spectrum_loss(tf.constant(swapped), r)) > 10 * per_channel
    # the E/B modes are flat_teb_spectra's: same EE/BB balance
    bins = radial_bins(n)
    e, b = (np.asarray(tf.reduce_mean(tf.abs(m) ** 2, axis=0)).ravel() @ bins for m in eb_modes(r))
    edges = np.array([2.0, 8.0, 16.0]) * 2 * np.pi / (n * 5.0 * np.pi / 10800)
    _, s = flat_teb_spectra(real[..., 0], real[..., 1], real[..., 2], 5.0, ell_edges=edges,
                            apodize_deg=0)
    ratio_flat = s["EE"].mean(axis=0) / s["BB"].mean(axis=0)
    assert ratio_flat.min() > 3 and (e[2:15] / b[2:15]).min() > 3
