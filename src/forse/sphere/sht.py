"""Spherical harmonic transforms on the HEALPix RING grid, multithreaded, through ducc0.

Same conventions as healpy (alm in healpy's m-major order with ``mmax = lmax``; T, E, B for
polarization; ``map2alm`` with uniform pixel weights and ``iter`` Jacobi refinements; E/B signs
of ``hp.map2alm(pol=True)``), checked against healpy in ``tests/test_sht.py``. Why not healpy:
its transforms run on one core here and ``alm2map(pol=True)`` copies its three output maps
once more; at Nside 2048 that is a 1.2 GB temporary. Here the output can be written into a
caller's array (``out=``) and in float32 (``dtype=``).

Threads: ``forse._dispatch.nthreads()``.
"""
from __future__ import annotations

import functools

import numpy as np

from .._checks import nside_of
from .._dispatch import nthreads

__all__ = ["alm2map", "map2alm"]


@functools.lru_cache(maxsize=8)
def _geometry(nside: int) -> dict:
    import ducc0

    return ducc0.healpix.Healpix_Base(int(nside), "RING").sht_info()


def _components(pol: bool, nrows: int) -> list[tuple[slice, int]]:
    """(rows, spin) of each transform: T alone (spin 0) and (Q, U) or (E, B) together (spin 2)."""
    if pol:
        return [(slice(0, 2), 2)] if nrows == 2 else [(slice(0, 1), 0), (slice(1, 3), 2)]
    return [(slice(k, k + 1), 0) for k in range(nrows)]


def _check_pol(pol, nrows, what):
    if pol and nrows not in (2, 3):
        raise ValueError(f"pol=True needs three {what} (T, Q, U or T, E, B) or two (Q, U or "
                         f"E, B), got {nrows}")


def alm2map(alms, nside: int, lmax: int, *, pol: bool = False, out=None, dtype=np.float64):
    """Maps from alm, like ``hp.alm2map(alms, nside, lmax=lmax, pol=pol)``.

    alms : (nalm,) or (k, nalm) complex; with ``pol`` the rows are T, E, B (-> T, Q, U) or
        E, B (-> Q, U, spin 2 alone; like ``hp.alm2map_spin(alms, nside, 2, lmax)``).
    out : optional C-contiguous array of the output's shape and ``dtype``, written in place.
    dtype : float64 or float32 (the alm are then rounded to complex64).
    Returns (npix,) for one alm, else (k, npix).
    """
    import ducc0

    if int(nside) != nside or nside < 1 or int(nside) & (int(nside) - 1):
        raise ValueError(f"`nside` must be a positive power of two, got {nside!r}")
    nside = int(nside)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype}")
    a = np.asarray(alms)
    lonely = a.ndim == 1
    a = np.ascontiguousarray(np.atleast_2d(a), dtype=np.complex64 if dtype == np.float32
                             else np.complex128)
    nalm = (lmax + 1) * (lmax + 2) // 2
    if a.shape[-1] != nalm:
        raise ValueError(f"`alms` must have {nalm} coefficients for lmax={lmax}, got {a.shape[-1]}")
    _check_pol(pol, len(a), "alm rows")
    shape = (len(a), 12 * nside * nside)
    want = shape[1:] if lonely else shape
    if out is None:
        res = np.empty(shape, dtype=dtype)
    elif out.shape != want or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"`out` must be a C-contiguous {dtype} array of shape {want}, "
                         f"got {out.dtype} {out.shape}")
    else:
        res = out.reshape(shape)
    geom = _geometry(nside)
    for rows, spin in _components(pol, len(a)):
        ducc0.sht.synthesis(alm=a[rows], lmax=lmax, spin=spin, map=res[rows],
                            nthreads=nthreads(), **geom)
    return out if out is not None else (res[0] if lonely else res)


def map2alm(maps, lmax: int, *, iter: int = 0, pol: bool = False):
    """alm from maps, like ``hp.map2alm(maps, lmax=lmax, iter=iter, pol=pol)`` (uniform
    weights, ``iter`` Jacobi refinements). maps: (npix,) or (k, npix), RING, finite; with
    ``pol`` the rows are T, Q, U (-> T, E, B) or Q, U (-> E, B).
    A float32 map with ``iter=0`` is transformed in float32 (relative error ~1e-7 of the largest
    coefficient). Returns complex128 (nalm,) for one map, else (k, nalm)."""
    import ducc0

    m = np.asarray(maps)
    lonely = m.ndim == 1
    m = np.atleast_2d(m)
    if m.dtype not in (np.float32, np.float64):
        m = m.astype(np.float64)
    nside = nside_of(m.shape[-1], "maps")
    _check_pol(pol, len(m), "maps")
    geom = _geometry(nside)
    w = 4.0 * np.pi / m.shape[-1]
    alm = np.empty((len(m), (lmax + 1) * (lmax + 2) // 2), dtype=np.complex128)
    # a float32 map is analysed in float32 (ducc's relative error ~1e-7, the map's own
    # precision) unless refined: no float64 copy (0.8 GB for Q/U at Nside 2048)
    work = m.dtype if m.dtype == np.float32 and int(iter) == 0 else np.float64
    for rows, spin in _components(pol, len(m)):
        mm = np.ascontiguousarray(m[rows], dtype=work)
        kw = dict(lmax=lmax, spin=spin, nthreads=nthreads(), **geom)
        a = ducc0.sht.adjoint_synthesis(map=mm, **kw)
        a *= w
        for _ in range(int(iter)):  # Jacobi: add the transform of what the alm miss
            resid = ducc0.sht.synthesis(alm=a, **kw)
            np.subtract(mm, resid, out=resid)
            a += w * ducc0.sht.adjoint_synthesis(map=resid, **kw)
            del resid
        alm[rows] = a
    return alm[0] if lonely else alm
