"""What the test files share: what this build and machine have, and the marks that skip on it.

Import from here (``from _shared import BACKENDS, needs_cpu``); conftest.py's names are not
importable. conftest.py skips every test marked ``gpu`` when there is no CUDA device, so
``@pytest.mark.gpu`` alone is enough for a GPU test."""
import healpy as hp
import numpy as np
import pytest

from forse import _dispatch

HAS_CPU = _dispatch.has_cpu()  # the compiled core (forse._core) is built
HAS_CUDA_BUILD = _dispatch.has_cuda_build()
HAS_CUDA_DEVICE = _dispatch.has_cuda_device()

#: the backends every machine runs: the numpy reference and, when built, the C++ core
BACKENDS = ["numpy"] + (["cpu"] if HAS_CPU else [])

needs_cpu = pytest.mark.skipif(not HAS_CPU, reason="compiled core not built")
without_cuda_build = pytest.mark.skipif(HAS_CUDA_BUILD, reason="this build has CUDA")


def synalm(cls, lmax, rng, new=True):
    """``healpy.synalm`` drawn from the numpy Generator ``rng`` (healpy draws from numpy's global
    state). ``cls``: one spectrum, or the spectra of n fields, n(n+1)/2 at most (missing ones
    are zero), in healpy's order: by diagonal with ``new=True`` (TT, EE, BB, TE, EB, TB), by row
    otherwise (TT, TE, TB, EE, EB, BB). Each multipole's covariance is factored, so correlated
    fields (TE) come out with the requested cross-spectrum."""
    cls = np.asarray(cls, dtype=float)
    single = cls.ndim == 1
    cls = np.atleast_2d(cls)[:, :lmax + 1]
    n = 1
    while n * (n + 1) // 2 < len(cls):
        n += 1
    pairs = ([(i, i + k) for k in range(n) for i in range(n - k)] if new else
             [(i, j) for i in range(n) for j in range(i, n)])
    cov = np.zeros((lmax + 1, n, n))
    for (i, j), cl in zip(pairs, cls):
        cov[:cl.size, i, j] = cov[:cl.size, j, i] = cl
    w, v = np.linalg.eigh(cov)
    factor = v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]  # factor @ factor.T = cov
    ell, m = hp.Alm.getlm(lmax)
    z = rng.standard_normal((n, ell.size)) + 1j * rng.standard_normal((n, ell.size))
    z = np.where(m == 0, z.real, z / np.sqrt(2.0))  # unit variance; m = 0 coefficients are real
    alm = np.einsum("kij,jk->ik", factor[ell], z)
    return alm[0] if single else alm


def synfast(cls, nside, rng, lmax=None, new=True, fwhm=0.0, pol=True):
    """``healpy.synfast`` (no pixel window) with the draw from the Generator ``rng``."""
    lmax = 3 * nside - 1 if lmax is None else lmax
    alm = synalm(cls, lmax, rng, new=new)
    if fwhm:
        alm = hp.smoothalm(alm, fwhm=fwhm, pol=pol)
    return hp.alm2map(alm, nside, lmax=lmax, pol=pol)
