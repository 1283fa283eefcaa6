"""A tiny synthetic training set in the documented HDF5 layout, for the GAN tests."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter


def _field(rng, n, npix, sigma):
    g = gaussian_filter(rng.standard_normal((n, npix, npix)), sigma=(0, sigma, sigma), mode="wrap")
    return g / g.std()


def write_set(folder, *, npix=32, counts=(24, 8, 8), seed=0, stokes="T"):
    """stokes "QU" writes two entries per position (component 1 and 2), as forse training-set."""
    """train/validation/test.h5 with lr (smooth, positive), target (non-Gaussian ratio ~ 1),
    hr = lr * target and gauss (lr times a Gaussian ratio)."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "validation", "test"), counts):
        lr = 10.0 + 2.0 * _field(rng, n, npix, 6.0)
        small = _field(rng, n, npix, 1.0)
        target = np.exp(0.15 * small) / np.exp(0.15 ** 2 / 2)  # lognormal: skewed, non-Gaussian
        gauss = lr * (1.0 + 0.15 * _field(rng, n, npix, 1.0))
        with h5py.File(f"{folder}/{split}.h5", "w") as f:
            for k, v in (("lr", lr), ("target", target), ("hr", lr * target), ("gauss", gauss)):
                f[k] = v.astype(np.float32)
            f["lon_deg"] = rng.uniform(0, 360, n)
            f["lat_deg"] = rng.uniform(-60, 60, n)
            comp = {"T": 0, "Q": 1, "U": 2}
            f["component"] = (np.array([comp[stokes]] * n, np.uint8) if len(stokes) == 1 else
                              np.arange(n, dtype=np.uint8) % 2 + 1)
            f.attrs.update(nside=64, fwhm_hr_arcmin=12.0, fwhm_lr_arcmin=80.0, pixel_arcmin=3.75,
                           npix=npix, seed=seed, split=split, stokes=stokes, forse_version="test")


# settings of the tiny networks the training tests run (a few steps in seconds)
TINY = dict(patch_size=16, width=0.125, batch_size=4, checkpoint_every=4, keep=2, log_every=2,
            val_patches=4, deterministic=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny training set, shared by the tests of one module (import the fixture there)."""
    folder = tmp_path_factory.mktemp("set")
    write_set(folder, npix=32)
    return folder
