"""Minkowski functionals of 2-D images and forse's one quality metric built on them.

The metric (used by training's checkpoint choice, ``bench/quality_gan.py`` and ``forse validate``)
--------------------------------------------------------------------------------------------------
* :func:`curves` (``variant="nu"``, the headline): each patch standardized, ``nu = (x - mean) /
  std`` (NaN ignored), then V0, V1, V2 (:func:`functionals`, ``normalize=True``) at 32 thresholds
  evenly spaced in [-3, 3], the convention of the CMB literature. The result does not change when a
  patch is replaced by ``a * x + b`` with ``a > 0``.
* ``variant="minmax"``: ForSE's variant (Krachmalnicoff & Puglisi 2021), each patch min-max
  rescaled to [-1, 1] and 32 thresholds evenly spaced in [-1, 1], for comparison with the papers.
  One extreme pixel sets the range, so it depends on the tails of each patch.
* :func:`overlap_fraction`: intersection over union of the mean +- 1 sigma bands of two sets of
  curves; :func:`score` gives it per functional for generated against true patches, with their
  mean as ``"score"``.
* :func:`ceiling`: the same overlap between the two halves of the true patches (first half vs
  second half): what the sample size and the sky's own variance allow. Print it beside every score.

Estimator (the definition; ``_functionals_numpy`` implements it literally)
--------------------------------------------------------------------------
Marching squares over the cells formed by 2x2 neighbouring pixel centres (after Mantz et al.
2008, the estimator ForSE uses). An image of ``ny x nx`` pixels has an ``(ny-1) x (nx-1)``
lattice of unit cells whose corners are pixel centres; the estimator covers exactly that
rectangle (pixel centre to pixel centre, i.e. half a pixel less than the image on every side).
Lengths are in pixels, areas in pixels squared.

For a threshold ``u`` a corner is *above* when its value is ``> u`` (strictly). Along a cell edge
whose ends lie on different sides, the boundary crosses at the linearly interpolated point.

* ``v0`` area of the excursion set ``{f > u}`` inside the cell lattice: per cell the polygon cut
  by the boundary segments (a corner triangle, a trapezoid, or the square minus corner
  triangles), 1 for a cell whose four corners are above.
* ``v1`` length of the boundary ``{f = u}`` inside the lattice: the straight segments joining
  the edge crossings. The lattice border itself is not counted.
* ``v2`` Euler characteristic from corner contributions: +1/4 for a cell with one corner above,
  -1/4 for three above, 0 for two adjacent above or none/all above.
* Saddle cells (two diagonal corners above) are resolved by the cell mean ``m`` (mean of the four
  corners): connected when ``m > u`` (area = square minus the two below-corner triangles, the two
  segments cut off the below corners, v2 = -1/2), separate otherwise (area = the two above-corner
  triangles, the segments cut off the above corners, v2 = +1/2). Area, length and Euler
  characteristic always use the same choice.

For an excursion set that does not touch the lattice border, ``v1`` is its perimeter and ``v2``
its Euler characteristic (components minus holes). Where the set meets the border, the border
adds nothing: ``v1`` and ``v2`` count only the boundary curve and its turning inside the lattice,
so for a stationary field their expectations are the per-area densities times the lattice area
(no edge bias); a constant image above the threshold gives ``v2 = 0``, not 1.

Cells with a non-finite corner (NaN, inf; convert ``hp.UNSEEN`` to NaN first) contribute
nothing to any functional. Outputs are float64 for every input dtype.

``normalize=True`` divides all three by the lattice area ``(ny-1)*(nx-1)`` (so ``v0`` is the
area fraction, ``v1`` and ``v2`` densities per pixel squared).
"""
from __future__ import annotations

import numpy as np

from .. import _checks, _dispatch

__all__ = ["functionals", "overlap_fraction", "VARIANTS", "N_THRESHOLDS", "thresholds",
           "standardize", "minmax", "curves", "band_overlaps", "score", "ceiling"]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _check_images(images):
    if _dispatch.is_cupy(images):
        shape, dtype = images.shape, images.dtype
    else:
        images = np.asarray(images)
        shape, dtype = images.shape, images.dtype
    if dtype.kind not in "fiu" or dtype.kind == "c":
        raise TypeError(f"`images` must be a real numeric array, got dtype {dtype}")
    if len(shape) not in (2, 3):
        raise ValueError(f"`images` must be 2-D (ny, nx) or 3-D (N, ny, nx), got shape {shape}")
    if shape[-1] < 2 or shape[-2] < 2:
        raise ValueError(f"`images` must have at least 2x2 pixels per image, got shape {shape}")
    return images


def _check_thresholds(thresholds):
    if _dispatch.is_cupy(thresholds):
        import cupy
        thresholds = cupy.asnumpy(thresholds)
    u = np.asarray(thresholds)
    if u.dtype.kind not in "fiu":
        raise TypeError(f"`thresholds` must be a real numeric array, got dtype {u.dtype}")
    if u.ndim != 1:
        raise ValueError(f"`thresholds` must be 1-D, got shape {u.shape}")
    if u.size == 0:
        raise ValueError("`thresholds` must hold at least one value, got an empty array")
    u = u.astype(np.float64)
    if not np.all(np.isfinite(u)):
        raise ValueError("`thresholds` must be finite, got NaN or inf")
    return u


def _float_images(images, xp=np):
    """float32/float64 images stay as they are; integers become float64."""
    if images.dtype in (xp.float32, xp.float64):
        return images
    return images.astype(xp.float64)


# --------------------------------------------------------------------------------------------
# numpy reference (the definition)
# --------------------------------------------------------------------------------------------
def _cell_functionals_numpy(c, u):
    """Raw (v0, v1, 4*v2) of one image for one threshold. ``c`` holds the four corner arrays in
    cyclic order around each cell: (0,0), (1,0), (1,1), (0,1) as (x=column, y=row)."""
    finite = np.isfinite(c[0]) & np.isfinite(c[1]) & np.isfinite(c[2]) & np.isfinite(c[3])
    above = [ck > u for ck in c]
    n_above = above[0].astype(np.int8) + above[1] + above[2] + above[3]
    area = np.zeros(c[0].shape)
    length = np.zeros(c[0].shape)
    euler4 = np.zeros(c[0].shape, dtype=np.int64)

    with np.errstate(divide="ignore", invalid="ignore"):
        # corner k with both neighbours on its other side: triangle cut off at corner k
        tri, hyp = [], []
        for k in range(4):
            s = (c[k] - u) / (c[k] - c[(k + 1) % 4])
            t = (c[k] - u) / (c[k] - c[(k - 1) % 4])
            tri.append(0.5 * s * t)
            hyp.append(np.hypot(s, t))
        for k in range(4):
            others = [above[(k + j) % 4] for j in (1, 2, 3)]
            lone_above = above[k] & ~others[0] & ~others[1] & ~others[2]
            lone_below = ~above[k] & others[0] & others[1] & others[2]
            area = np.where(lone_above, tri[k], area)
            area = np.where(lone_below, 1.0 - tri[k], area)
            length = np.where(lone_above | lone_below, hyp[k], length)
            euler4 += lone_above.astype(np.int64) - lone_below
            # corners k and k+1 above, the other two below: trapezoid between opposite edges
            k1, kp, km = (k + 1) % 4, (k + 2) % 4, (k - 1) % 4
            pair = above[k] & above[k1] & ~above[kp] & ~above[km]
            d1 = (c[k] - u) / (c[k] - c[km])
            d2 = (c[k1] - u) / (c[k1] - c[kp])
            area = np.where(pair, 0.5 * (d1 + d2), area)
            length = np.where(pair, np.hypot(1.0, d1 - d2), length)
        mean = 0.25 * (c[0] + c[1] + c[2] + c[3])
        connected = mean > u
        for k in (0, 1):  # diagonal k, k+2 above; k+1, k+3 below
            saddle = above[k] & above[k + 2] & ~above[k + 1] & ~above[(k + 3) % 4]
            b1, b2 = k + 1, (k + 3) % 4
            con = saddle & connected
            sep = saddle & ~connected
            area = np.where(con, 1.0 - tri[b1] - tri[b2], area)
            area = np.where(sep, tri[k] + tri[k + 2], area)
            length = np.where(con, hyp[b1] + hyp[b2], length)
            length = np.where(sep, hyp[k] + hyp[k + 2], length)
            euler4 += 2 * (sep.astype(np.int64) - con)
    area = np.where(n_above == 4, 1.0, area)
    keep = finite
    return (float(np.sum(area[keep])), float(np.sum(length[keep])), int(np.sum(euler4[keep])))


def _functionals_numpy(images, thresholds, nthreads=0):
    """Pure-numpy reference: ``images`` (N, ny, nx), sorted float64 ``thresholds`` (T,).
    Returns raw (v0, v1, v2), each float64 (N, T). Vectorized over cells; slow but literal."""
    del nthreads
    images = np.asarray(images, dtype=np.float64)
    n, t = images.shape[0], thresholds.size
    v0 = np.zeros((n, t))
    v1 = np.zeros((n, t))
    v2 = np.zeros((n, t))
    for i in range(n):
        f = images[i]
        c = (f[:-1, :-1], f[:-1, 1:], f[1:, 1:], f[1:, :-1])
        for j, u in enumerate(thresholds):
            a, b, e4 = _cell_functionals_numpy(c, u)
            v0[i, j], v1[i, j], v2[i, j] = a, b, e4 / 4.0
    return v0, v1, v2


def _functionals_cpu(images, thresholds, nthreads=0):
    images = np.ascontiguousarray(_float_images(images))
    return _dispatch._core.minkowski_cpu(images, thresholds, int(nthreads))


def _functionals_cuda(images, thresholds, nthreads=0):
    """CuPy (N, ny, nx) in, three CuPy (N, T) float64 out, on CuPy's current stream."""
    del nthreads
    import cupy

    core = _dispatch._core
    images = cupy.ascontiguousarray(_float_images(images, cupy))
    n, ny, nx = (int(d) for d in images.shape)
    u = cupy.asarray(thresholds, dtype=cupy.float64)
    out = cupy.empty((3, n, u.size), dtype=cupy.float64)
    scratch = cupy.empty(int(core.minkowski_cuda_scratch(n, ny, nx, u.size)) // 8 + 1,
                         dtype=cupy.float64)
    stream = cupy.cuda.get_current_stream().ptr
    core.minkowski_cuda(images.data.ptr, bool(images.dtype == cupy.float32), n, ny, nx, u.data.ptr,
                        int(u.size), out.data.ptr, scratch.data.ptr, stream)
    return out[0], out[1], out[2]


_TABLE = {"numpy": _functionals_numpy, "cpu": _functionals_cpu, "cuda": _functionals_cuda}


def functionals(images, thresholds, *, normalize=False, backend="auto", nthreads=0):
    """Minkowski functionals ``(v0, v1, v2)`` of each image at each threshold.

    Parameters
    ----------
    images : array (N, ny, nx) or (ny, nx), real; numpy, or CuPy for ``backend="cuda"``
        Any real dtype and memory layout; float32 stays float32 inside the C++/CUDA kernels.
    thresholds : array (T,), finite, any order
    normalize : bool
        False: raw sums in pixel units (area in pixel^2, length in pixels, v2 a count).
        True: all three divided by the lattice area ``(ny-1)*(nx-1)``.
    backend : "auto", "numpy", "cpu" or "cuda"
    nthreads : int
        OpenMP threads for ``"cpu"`` (0 = all cores). Results do not depend on it.

    Returns
    -------
    v0, v1, v2 : float64 arrays (N, T), or (T,) for a single 2-D image (CuPy for CuPy input).
        See the module docstring for the exact estimator and conventions.
    """
    images = _check_images(images)
    u = _check_thresholds(thresholds)
    nthreads = _checks.nthreads(nthreads)
    impl = _dispatch.call(_TABLE, backend, images=images)
    single = images.ndim == 2
    if single:
        images = images[None]
    order = np.argsort(u, kind="stable")
    u_sorted = np.ascontiguousarray(u[order])
    v = impl(images, u_sorted, nthreads)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    if _dispatch.is_cupy(v[0]):
        import cupy
        inverse = cupy.asarray(inverse)
    scale = 1.0 / ((images.shape[1] - 1) * (images.shape[2] - 1)) if normalize else 1.0
    out = []
    for vk in v:
        vk = vk[:, inverse]
        if normalize:
            vk = vk * scale
        out.append(vk[0] if single else vk)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# overlap of mean +- 1 sigma bands
# --------------------------------------------------------------------------------------------
def _positive_part_integral(g0, g1, h):
    """Exact integral over [0, h] of max(0, g) for g linear from g0 to g1 (arrays)."""
    both = (g0 >= 0) & (g1 >= 0)
    span = np.abs(g0) + np.abs(g1)
    gp = np.maximum(g0, g1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(span > 0, h * gp * gp / (2.0 * span), 0.0)
    out = np.where(both, 0.5 * h * (g0 + g1), np.where((g0 <= 0) & (g1 <= 0), 0.0, cross))
    return out


def _root(d0, d1):
    """Fraction in (0, 1) where a linear function going from d0 to d1 is zero, else NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = d0 / (d0 - d1)
    return np.where((d0 * d1 < 0) & np.isfinite(r), r, np.nan)


def _bands(curves, name):
    c = np.asarray(curves)
    if c.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {c.dtype}")
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 2:
        raise ValueError(f"`{name}` must be (N, T) curves with N >= 1 and T >= 2, got shape "
                         f"{np.shape(curves)}")
    c = c.astype(np.float64)
    if not np.all(np.isfinite(c)):
        raise ValueError(f"`{name}` must be finite, got NaN or inf")
    mean = c.mean(axis=0)
    std = c.std(axis=0, ddof=0)
    return mean - std, mean + std


def overlap_fraction(curves_a, curves_b, *, x=None):
    """Area of the intersection over the area of the union of the mean +- 1 sigma bands.

    Each input is ``(N, T)``: N curves (patches) sampled at T thresholds; the band of a set is
    ``mean +- std`` over its N curves with ``ddof=0`` (numpy's default, as in ForSE), joined
    linearly between samples. The integral runs along ``x``: the threshold values if given
    (``(T,)``, strictly increasing), else the sample index 0..T-1 (unit spacing, ForSE's
    convention). Integration is exact for these piecewise-linear bands, including band edges
    crossing inside an interval. Returns a float in [0, 1]: 1.0 for identical bands (also when
    both have zero width everywhere), 0.0 for disjoint ones.
    """
    la, ua = _bands(curves_a, "curves_a")
    lb, ub = _bands(curves_b, "curves_b")
    if la.shape != lb.shape:
        raise ValueError(f"`curves_a` has {la.size} thresholds but `curves_b` has {lb.size}; "
                         "they must be sampled at the same thresholds")
    if x is None:
        x = np.arange(la.size, dtype=np.float64)
    else:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != la.shape or not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
            raise ValueError(f"`x` must be ({la.size},) finite and strictly increasing, got "
                             f"shape {x.shape}")
    h = np.diff(x)
    # break each interval where the upper edges or the lower edges cross: between breaks
    # min(ua, ub) and max(la, lb) are linear, so is the intersection width g
    du, dl = ua - ub, la - lb
    r1 = _root(du[:-1], du[1:])
    r2 = _root(dl[:-1], dl[1:])
    pts = np.sort(np.stack([np.zeros_like(h), np.nan_to_num(r1, nan=0.0),
                            np.nan_to_num(r2, nan=1.0), np.ones_like(h)]), axis=0)

    def width(s):
        a_up = ua[:-1] + s * (ua[1:] - ua[:-1])
        b_up = ub[:-1] + s * (ub[1:] - ub[:-1])
        a_lo = la[:-1] + s * (la[1:] - la[:-1])
        b_lo = lb[:-1] + s * (lb[1:] - lb[:-1])
        return np.minimum(a_up, b_up) - np.maximum(a_lo, b_lo)

    g = [width(p) for p in pts]
    inter = sum(_positive_part_integral(g[k], g[k + 1], h * (pts[k + 1] - pts[k])).sum()
                for k in range(3))
    area_a = np.sum(0.5 * h * ((ua - la)[:-1] + (ua - la)[1:]))
    area_b = np.sum(0.5 * h * ((ub - lb)[:-1] + (ub - lb)[1:]))
    union = area_a + area_b - inter
    if union <= 0:
        return 1.0 if (np.array_equal(la, lb) and np.array_equal(ua, ub)) else 0.0
    return float(min(1.0, max(0.0, inter / union)))


# --------------------------------------------------------------------------------------------
# the quality metric: standardized (nu) or min-max thresholds, overlaps, ceiling
# --------------------------------------------------------------------------------------------
VARIANTS = ("nu", "minmax")
N_THRESHOLDS = 32
NU_MAX = 3.0


def _variant(variant):
    return _checks.choice(variant, "variant", VARIANTS)


def thresholds(variant="nu", n_thresholds=N_THRESHOLDS):
    """The thresholds of a variant: ``n_thresholds`` evenly spaced in [-3, 3] (``"nu"``, in units
    of each patch's standard deviation) or in [-1, 1] (``"minmax"``), ends included."""
    n = int(n_thresholds)
    if n < 2:
        raise ValueError(f"`n_thresholds` must be >= 2, got {n_thresholds!r}")
    hi = NU_MAX if _variant(variant) == "nu" else 1.0
    return np.linspace(-hi, hi, n)


def _stack(images, name="images"):
    a = np.asarray(images)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[-1] < 2 or a.shape[-2] < 2 or a.shape[0] < 1:
        raise ValueError(f"`{name}` must be a stack (N, ny, nx) of patches, got shape {a.shape}")
    return a.astype(np.float64)


def standardize(images) -> np.ndarray:
    """Per patch ``(x - mean) / std`` over the finite pixels (float64, NaN stays NaN); a constant
    patch becomes 0."""
    a = np.asarray(images, dtype=np.float64)
    fin = np.isfinite(a)
    n = fin.sum(axis=(-2, -1), keepdims=True)
    z = np.where(fin, a, 0.0)
    mean = z.sum(axis=(-2, -1), keepdims=True) / np.maximum(n, 1)
    d = np.where(fin, a - mean, 0.0)
    std = np.sqrt((d * d).sum(axis=(-2, -1), keepdims=True) / np.maximum(n, 1))
    return np.where(fin, (a - mean) / np.where(std > 0, std, 1.0), np.nan)


def minmax(images) -> np.ndarray:
    """Per patch min-max rescaling to [-1, 1] over the finite pixels (float64, NaN stays NaN)."""
    a = np.asarray(images, dtype=np.float64)
    lo, hi = (x[..., None, None] for x in _checks.finite_range(a))
    ok = hi > lo
    lo = np.where(np.isfinite(lo), lo, 0.0)  # all-NaN patch: stays NaN below
    span = np.where(ok, hi - lo, 1.0)  # constant patch: -1 everywhere
    return np.where(np.isfinite(a), 2.0 * (a - lo) / span - 1.0, np.nan)


def curves(images, variant="nu", n_thresholds=N_THRESHOLDS, *, backend="auto", nthreads=0):
    """``(thresholds, v0, v1, v2)`` of a stack ``(N, ny, nx)`` of patches: V0, V1, V2 per pixel^2
    (``functionals(..., normalize=True)``), each ``(N, T)``, of the standardized (``"nu"``) or
    min-max rescaled (``"minmax"``) patches at :func:`thresholds`. Host (numpy) patches on every
    backend: on "cuda" they are copied to the device for the functionals."""
    a = _stack(images)
    u = thresholds(variant, n_thresholds)
    x = standardize(a) if variant == "nu" else minmax(a)
    v = _dispatch.on_host(functionals, x, u, normalize=True, backend=backend, nthreads=nthreads)
    return (u,) + tuple(np.asarray(vk, dtype=np.float64) for vk in v)


def band_overlaps(curves_a, curves_b) -> dict:
    """``{"v0", "v1", "v2", "score"}``: :func:`overlap_fraction` of each functional between two
    ``(v0, v1, v2)`` sets of ``(N, T)`` curves (as returned by :func:`curves` without the
    thresholds), and their mean."""
    out = {f"v{i}": float(overlap_fraction(curves_a[i], curves_b[i])) for i in range(3)}
    out["score"] = float(np.mean([out["v0"], out["v1"], out["v2"]]))
    return out


def halves(v):
    """``(first, second)`` halves of ``(v0, v1, v2)`` curves (``N // 2`` and ``N - N // 2`` patches)."""
    n = np.shape(v[0])[0]
    if n < 2:
        raise ValueError(f"the ceiling needs at least 2 true patches (one per half), got {n}")
    h = n // 2
    return tuple(x[:h] for x in v), tuple(x[h:] for x in v)


def score(generated, truth, variant="nu", n_thresholds=N_THRESHOLDS, *, backend="auto") -> dict:
    """``{"v0", "v1", "v2", "score"}``: band overlap of the Minkowski curves of ``generated``
    against ``truth`` (stacks ``(N, n, n)`` of the same patch size; the counts may differ)."""
    g, t = _stack(generated, "generated"), _stack(truth, "truth")
    if g.shape[1:] != t.shape[1:]:
        raise ValueError(f"`generated` and `truth` must be stacks (N, n, n) of the same patch size, "
                         f"got shapes {g.shape} and {t.shape}")
    cg = curves(g, variant, n_thresholds, backend=backend)[1:]
    ct = curves(t, variant, n_thresholds, backend=backend)[1:]
    return band_overlaps(cg, ct)


def ceiling(truth, variant="nu", n_thresholds=N_THRESHOLDS, *, backend="auto") -> dict:
    """``{"v0", "v1", "v2", "score"}`` of the first half of the true patches against the second
    half: the best overlap a generator can expect from this many patches of this sky."""
    a, b = halves(curves(_stack(truth, "truth"), variant, n_thresholds, backend=backend)[1:])
    return band_overlaps(a, b)
