"""Training sets of (low-resolution, high-resolution) patch pairs, split by sky region.

File layout (HDF5, one file per split: ``train.h5``, ``validation.h5``, ``test.h5``):

* ``hr``, ``lr``: the raw patches of the high- and low-resolution maps, float32 ``(N, npix, npix)``;
* ``target``: ForSE's small-scale target ``m_ss = M_HR / M_LR`` of the *intensity*, float32;
* ``gauss``: the Gaussian-baseline patch (``forse.smoothing.gaussian_small_scales`` of the
  low-resolution map) at the same place, float32;
* ``lon_deg``, ``lat_deg``: patch centres (Galactic degrees), float64 ``(N,)``;
* ``component``: uint8 ``(N,)``, which Stokes map ``hr``, ``lr`` and ``gauss`` come from
  (0 = T, 1 = Q, 2 = U);
* attributes ``nside, fwhm_hr_arcmin, fwhm_lr_arcmin, pixel_arcmin, npix, seed, split, stokes,
  forse_version`` plus the selection settings (``min_coverage``, ``region_nside``, ...) and the
  sky's provenance (``sky``, ``sky_seed``) when ``forse training-set`` built it.

For polarization (``stokes="QU"``), as in ForSE, every position gives two entries: the Q and the
U low-resolution patches, each paired with the intensity small-scale target ``T_HR / T_LR`` of
that position (Q/U are rotated to the patch axes, see ``forse.projection``). ``stokes="TQU"``
stores three entries per position (T, Q, U, in that order), each with its own ``hr``, ``lr`` and
``gauss``: the joint generator's set, whose polarized targets are taken from ``hr`` and ``lr``
(``forse.gan.train.read_joint``).

Selection: random centres (seeded, uniform on the sphere); a patch is kept when at least
``min_coverage`` (90 %) of it lies in the mask (estimated on a 32 x 32 grid over the patch).
Patches touching a missing (UNSEEN/NaN) pixel, patches with a constant ``lr`` or ``target``
(their min-max rescale would divide by zero) and, for T targets, patches where the
low-resolution intensity is <= 0 (the ratio is undefined) are rejected and replaced; the
numbers rejected are stored in the attributes. If the mask does not leave room for the patches
asked for, ``build`` raises ``ValueError`` saying how many were found.

Split by region: the sky is cut into HEALPix pixels of ``region_nside`` (by default the finest
whose pixels are larger than a patch); regions are dealt to the splits in proportion to
``fractions`` of the mask area. The test set is filled first, from centres in its regions, then
validation, then train; a candidate is rejected when its circumscribed disc overlaps that of a
patch already chosen for another split, so no patch of one split overlaps a patch of another.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import healpy as hp
import numpy as np

from .. import _checks
from .._atomic import publish, replacing, temporary
from .._checks import nside_of, positive
from .._dispatch import on_host, to_device
from .masks import valid_pixels

__all__ = ["build", "load", "to_forse_npy", "TrainingSet", "SPLITS", "patch_radius_deg"]

SPLITS = ("train", "validation", "test")
_FILL_ORDER = ("test", "validation", "train")
_COMPONENT = {"T": 0, "Q": 1, "U": 2}
STOKES = ("T", "Q", "U", "QU", "TQU")
_COARSE = 32


def patch_radius_deg(npix, pixel_arcmin):
    """Angular radius of the disc circumscribing a gnomonic patch (centre to corner)."""
    half = 0.5 * npix * pixel_arcmin * np.pi / (180 * 60)
    return float(np.degrees(np.arctan(np.sqrt(2.0) * np.tan(half))))


def _default_region_nside(npix, pixel_arcmin):
    side_deg = npix * pixel_arcmin / 60.0
    nside = 1
    while np.degrees(hp.nside2resol(2 * nside)) >= side_deg:
        nside *= 2
    return nside


def _unit_vectors(lon, lat):
    return np.asarray(hp.ang2vec(lon, lat, lonlat=True)).reshape(-1, 3)


def _assign_regions(mask, region_nside, fractions, rng):
    """Split of each region (index into SPLITS), dealt by mask area."""
    area = hp.ud_grade(mask.astype(np.float32), region_nside, order_in="RING", order_out="RING")
    nreg = area.size
    split_of = np.full(nreg, -1)
    have = np.zeros(3)
    order = rng.permutation(nreg)
    # regions with mask area first (shuffled), deal each to the split most below its share
    order = order[np.argsort(area[order] <= 0, kind="stable")]
    frac = np.asarray(fractions)
    for r in order:
        deficit = frac - have / max(have.sum(), 1e-300) if have.sum() > 0 else frac
        deficit = np.where(frac > 0, deficit, -np.inf)
        s = int(np.argmax(deficit))
        split_of[r] = s
        have[s] += area[r]
    return split_of


def _coverage(mask, lon, lat, npix, pixel_arcmin):
    """Fraction of each patch inside ``mask`` (on a coarse grid over the patch)."""
    from ..sphere.projection import patch_angles

    coarse_px = npix * pixel_arcmin / _COARSE
    theta, phi = patch_angles(lon, lat, npix=_COARSE, pixel_arcmin=coarse_px)
    pix = hp.ang2pix(nside_of(mask.size, "mask"), theta, phi)
    return mask[pix].reshape(lon.size, -1).mean(axis=1)


def _float32_nan(rows, bad):
    out = np.empty((len(rows), bad.size), dtype=np.float32)
    for k, row in enumerate(rows):
        out[k] = row
    out[:, bad] = np.nan
    return out


def _flat(x, axes):
    """Patches whose range is below float32 resolution: a min-max rescale would divide by ~0."""
    with np.errstate(invalid="ignore"):
        return np.ptp(x, axis=axes) <= 1e-6 * np.abs(x).max(axis=axes)


class _Writer:
    """One split file, written to a temporary name and renamed on success."""

    def __init__(self, path, n, npix, attrs, overwrite=True):
        import h5py

        self.path = Path(path)
        self.overwrite = overwrite
        fd, self.tmp = temporary(self.path, ".tmp")
        os.close(fd)  # HDF5 locks the file while it writes: another run's clean_stale skips it
        # no chunk cache: whole chunks go straight to disk, so a write that fails (full disk)
        # fails in add(), not later in a close that HDF5 retries at exit
        self.f = h5py.File(self.tmp, "w", rdcc_nbytes=0)
        shape, chunks = (n, npix, npix), ((1, npix, npix) if n else None)
        for name in ("hr", "lr", "target", "gauss"):
            self.f.create_dataset(name, shape=shape, dtype=np.float32, chunks=chunks)
        for name in ("lon_deg", "lat_deg"):
            self.f.create_dataset(name, shape=(n,), dtype=np.float64)
        self.f.create_dataset("component", shape=(n,), dtype=np.uint8)
        self.f.attrs.update(attrs)
        self.n = n
        self.count = 0

    def add(self, hr, lr, target, gauss, lon, lat, comp):
        k = min(len(hr), self.n - self.count)
        s = slice(self.count, self.count + k)
        data = {"hr": hr, "lr": lr, "target": target, "gauss": gauss, "lon_deg": lon,
                "lat_deg": lat, "component": comp}
        try:
            for name, x in data.items():
                self.f[name][s] = x[:k]
        except OSError as exc:  # HDF5's text is a paragraph: name the file and the cause
            if not exc.errno:
                raise
            raise OSError(exc.errno, os.strerror(exc.errno), str(self.path)) from exc
        self.count += k
        return k

    def finish(self, extra_attrs):
        self.f.attrs.update(extra_attrs)
        self.f.close()
        publish(self.tmp, self.path, overwrite=self.overwrite)

    def abort(self):
        """Close and remove the temporary file whatever state it is in. On a full disk HDF5
        cannot flush it, so closing would fail (and HDF5 would try again at interpreter exit and
        crash the process): its descriptor is first pointed at /dev/null, where every write
        succeeds, since the file is thrown away anyway."""
        for fd in _descriptors_of(self.tmp):
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
        with contextlib.suppress(Exception):
            self.f.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def _descriptors_of(path) -> list[int]:
    """This process's open file descriptors on ``path`` (Linux /proc; none elsewhere)."""
    target = os.path.realpath(path)
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{name}") == target:
                    found.append(int(name))
    return found


def _check_inputs(hr_map, lr_map, stokes, mask):
    s = str(stokes).upper()
    if s not in STOKES:
        raise ValueError(f"`stokes` must be 'T', 'Q', 'U', 'QU' or 'TQU', got {stokes!r}")
    hr = np.asarray(hr_map)
    if hr.dtype.kind not in "fiu":
        raise TypeError(f"`hr_map` must be a real numeric array, got dtype {hr.dtype}")
    if hr.ndim == 1:
        hr = hr[None]
    if hr.ndim != 2 or hr.shape[0] not in (1, 3):
        raise ValueError(f"`hr_map` must be (npix,) (T) or (3, npix) (T, Q, U), got {np.shape(hr_map)}")
    if s != "T" and hr.shape[0] != 3:
        raise ValueError(f"stokes={stokes!r} needs a (3, npix) T, Q, U `hr_map`, got shape "
                         f"{np.shape(hr_map)}")
    nside = nside_of(hr.shape[1], "hr_map")
    lr = None
    if lr_map is not None:
        lr = np.asarray(lr_map)
        if lr.ndim == 1:
            lr = lr[None]
        if lr.shape != hr.shape:
            raise ValueError(f"`lr_map` has shape {np.shape(lr_map)} but `hr_map` has "
                             f"{np.shape(hr_map)}; they must match (same Nside and fields)")
    if mask is not None:
        mk = np.asarray(mask)
        if mk.shape != (hr.shape[1],):
            raise ValueError(f"`mask` must be a ({hr.shape[1]},) map at the Nside of `hr_map` "
                             f"({nside}), got shape {mk.shape}")
    return s, hr, lr, nside


def split_counts(n_patches, fractions, n_name="`n_patches`", frac_name="`fractions`"):
    """Positions per split (train, validation, test); a split asked for (share > 0) that would
    get no position is an error: a model cannot be validated or tested on nothing."""
    frac = np.asarray(fractions, dtype=np.float64)
    frac = frac / frac.sum()
    counts = np.floor(frac * n_patches).astype(int)
    counts[0] += int(n_patches) - counts.sum()  # rounding goes to train
    empty = [s for s, f, c in zip(SPLITS, frac, counts) if f > 0 and c == 0]
    if empty:
        need = int(np.ceil(1 / frac[frac > 0].min()))
        raise ValueError(f"{n_name}={int(n_patches)} with {frac_name} "
                         f"{tuple(round(float(f), 3) for f in frac)} leaves no {' and no '.join(empty)} "
                         f"patch; expected {n_name} >= {need} (or a larger share)")
    return counts


def build(hr_map, out_dir, *, lr_map=None, mask=None, fwhm_hr_arcmin=12.0, fwhm_lr_arcmin=80.0,
          n_patches=1000, npix=320, pixel_arcmin=3.75, fractions=(0.8, 0.1, 0.1),
          min_coverage=0.9, stokes="T", seed=0, region_nside=None, ell_fit=None,
          overwrite=False, progress=True, backend="auto", nthreads=0, batch=128,
          max_candidates=None, timings=None, attrs=None):
    """Build ``train.h5``, ``validation.h5`` and ``test.h5`` in ``out_dir``.

    Parameters
    ----------
    hr_map : array ``(npix_map,)`` or ``(3, npix_map)``, RING
        The high-resolution map (beam ``fwhm_hr_arcmin``), T or T, Q, U.
    out_dir : folder for the three files (created if missing).
    lr_map : array like ``hr_map``, optional
        The low-resolution map; default: ``hr_map`` smoothed to ``fwhm_lr_arcmin``.
    mask : bool array ``(npix_map,)``, optional
        Where patches may lie (e.g. ``forse.masks.training_mask``); default: every valid pixel.
    fwhm_hr_arcmin, fwhm_lr_arcmin : float, ``fwhm_lr_arcmin > fwhm_hr_arcmin``.
    n_patches : int
        Number of positions over the three splits (``stokes="QU"`` stores two entries each).
    npix, pixel_arcmin : patch size (320 x 3.75' = 20 deg, 64 x 3.75' = 4 deg, ...).
    fractions : (train, validation, test) shares of ``n_patches``.
    min_coverage : float
        Smallest fraction of a patch inside the mask.
    stokes : "T", "Q", "U", "QU" or "TQU"
        Which low-resolution maps are inputs; the target is always the intensity ratio
        ("TQU": three entries per position, for the joint generator).
    seed : int
        Seeds the centres, the region split and the Gaussian baseline.
    region_nside : int, optional
        HEALPix Nside of the regions dealt to the splits.
    ell_fit : (int, int), optional
        Fit range of the Gaussian baseline (``forse.smoothing.gaussian_small_scales``).
    overwrite : replace existing files.
    progress : show a tqdm progress bar.
    backend, nthreads : passed to ``forse.projection.healpix_to_patches``.
    batch : patches cut per projection call.
    max_candidates : int, optional
        Random centres tried per split before giving up (default ``max(20000, 200 * n)``).
    timings : dict, optional
        Filled with the seconds spent in each phase (smooth, baseline, select, cut, write).
    attrs : dict, optional
        Extra attributes stored in every split file, e.g. the sky's provenance (``forse
        training-set`` stores ``sky`` = "synthetic" or the input file and ``sky_seed``, which
        ``forse train`` copies into the model card as ``training.sky_seeds``).

    Returns
    -------
    dict ``{split: Path}``
    """
    from tqdm.auto import tqdm

    from .. import __version__

    stokes, hr, lr, nside = _check_inputs(hr_map, lr_map, stokes, mask)
    fwhm_hr = positive(fwhm_hr_arcmin, "fwhm_hr_arcmin")
    fwhm_lr = positive(fwhm_lr_arcmin, "fwhm_lr_arcmin")
    if fwhm_lr <= fwhm_hr:
        raise ValueError(f"`fwhm_lr_arcmin` ({fwhm_lr:g}) must be larger than `fwhm_hr_arcmin` "
                         f"({fwhm_hr:g})")
    frac, counts = _check_counts(n_patches, fractions)
    if not 0 < min_coverage <= 1:
        raise ValueError(f"`min_coverage` must be in (0, 1], got {min_coverage!r}")
    pixel_arcmin = positive(pixel_arcmin, "pixel_arcmin")
    if int(npix) != npix or npix < 8:
        raise ValueError(f"`npix` must be an integer >= 8, got {npix!r}")
    npix = int(npix)
    region_nside = _default_region_nside(npix, pixel_arcmin) if region_nside is None else int(region_nside)
    nside_of(12 * region_nside ** 2, "region_nside")
    paths = _output_paths(out_dir, overwrite)

    run = _Run(npix=npix, pixel_arcmin=pixel_arcmin, min_coverage=float(min_coverage),
               batch=batch, kw=dict(npix=npix, pixel_arcmin=pixel_arcmin, backend=backend,
                                    nthreads=nthreads))
    stacks, bad, run.pol = _prepared_maps(hr, lr, stokes, fwhm_lr, fwhm_hr, seed, ell_fit, run)
    run.stacks = [to_device(backend, s) for s in stacks]  # once, not per batch, on "cuda"
    run.kw["pol"] = run.pol
    usable = ~bad if mask is None else (np.asarray(mask).astype(bool) & ~bad)
    if not usable.any():
        raise ValueError("`mask` leaves no valid pixel to cut patches from")
    run.usable, run.usable_f, run.nside = usable, usable.astype(np.float32), nside
    run.comps = [0] if stokes == "T" else [_COMPONENT[c] for c in stokes]
    rng = np.random.default_rng([int(seed), 1])
    run.split_of_region = _assign_regions(usable, region_nside, frac, rng)
    run.region_nside = region_nside
    radius = np.radians(patch_radius_deg(npix, pixel_arcmin))
    run.min_dot = np.cos(2 * radius)  # centre separation below 2r: circumscribed discs overlap
    run.max_cand = (max(20000, 200 * int(n_patches)) if max_candidates is None
                    else int(max_candidates))

    base_attrs = {"nside": nside, "fwhm_hr_arcmin": fwhm_hr, "fwhm_lr_arcmin": fwhm_lr,
                  "pixel_arcmin": pixel_arcmin, "npix": npix, "seed": int(seed),
                  "stokes": stokes, "forse_version": __version__, "min_coverage": float(min_coverage),
                  "region_nside": region_nside, "fractions": frac,
                  "n_positions_requested": int(n_patches), "target": "T_hr / T_lr",
                  "qu_frame": "patch axes (forse.projection pol=True)", **dict(attrs or {})}
    writers, chosen = {}, {}
    run.bar = tqdm(total=int(counts.sum()), unit="patch", desc="training set", disable=not progress)
    try:
        for split in _FILL_ORDER:
            si = SPLITS.index(split)
            need = int(counts[si])
            writers[split] = _Writer(paths[split], need * len(run.comps), npix,
                                     dict(base_attrs, split=split), overwrite=overwrite)
            others = [chosen[s] for s in chosen if len(chosen[s])]
            others = np.concatenate(others) if others else np.zeros((0, 3))
            srng = np.random.default_rng([int(seed), 2, si])
            chosen[split] = _fill_split(run, split, need, writers[split], others, srng)
        for split in SPLITS:
            writers[split].finish(writers[split].stats)
        run.lap("write")
        if timings is not None:
            timings.update(run.clock)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        run.bar.close()
    return paths


def _check_counts(n_patches, fractions):
    """Normalized split shares and the positions per split."""
    if int(n_patches) != n_patches or n_patches < 1:
        raise ValueError(f"`n_patches` must be a positive integer, got {n_patches!r}")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or np.any(frac < 0) or frac.sum() <= 0:
        raise ValueError(f"`fractions` must be three non-negative shares (train, validation, "
                         f"test), got {fractions!r}")
    frac = frac / frac.sum()
    return frac, split_counts(n_patches, frac, "`n_patches`", "`fractions`")


def _output_paths(out_dir, overwrite):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {s: out_dir / f"{s}.h5" for s in SPLITS}
    for p in paths.values():
        if p.exists() and not overwrite:
            raise FileExistsError(f"{str(p)!r} exists; pass overwrite=True to replace it")
    return paths


class _Run:
    """What the cutting stages share: the settings, the float32 map stacks, the usable pixels,
    the region split, the progress bar and a clock per phase (smooth, baseline, select, cut,
    write)."""

    def __init__(self, **settings):
        from .._log import Timings

        self.__dict__.update(settings)
        self.clock = Timings(smooth=0.0, baseline=0.0, select=0.0, cut=0.0, write=0.0)
        self.lap = self.clock.lap


def _prepared_maps(hr, lr, stokes, fwhm_lr, fwhm_hr, seed, ell_fit, run):
    """The hr, lr and Gaussian-baseline maps as float32 stacks with NaN where a pixel is
    missing (every projection backend propagates it), the missing pixels, and pol.

    Memory: each float64 map becomes its float32 stack as soon as the next one no longer needs
    it, and the caller's map is copied only if it has pixels to mark; at Nside 4096 TQU the
    float64 hr copy, lr and baseline side by side (14.5 GB) did not fit in 24 GB."""
    from ..sphere.smoothing import gaussian_small_scales, smooth

    pol = hr.shape[0] == 3 and stokes != "T"
    nrow = 3 if pol else 1
    src = np.asarray(hr)
    hr = src[:nrow] if src.dtype == np.float64 else src[:nrow].astype(np.float64)
    hr_bad = ~valid_pixels(hr)
    if hr_bad.any():  # a hole in one field is a hole in all (the smoothing zero-fills them)
        hr = hr.copy() if np.shares_memory(hr, src) else hr
        hr[:, hr_bad] = hp.UNSEEN
    if lr is None:
        lr = smooth(hr if pol else hr[0], fwhm_lr, pol=pol).reshape(nrow, -1)
    else:
        lr = np.array(lr[:nrow], dtype=np.float64)
    bad = hr_bad | ~valid_pixels(lr)
    if bad.all():
        raise ValueError("`hr_map` has no valid pixel (all UNSEEN or NaN)")
    if bad.any():
        # smoothing spread the zero-filled holes: drop every pixel the low-resolution beam
        # mixes with a hole, so no patch learns from a hole's rim
        bad |= smooth(bad.astype(np.float64), fwhm_lr) > 1e-3
        lr[:, bad] = hp.UNSEEN
    run.lap("smooth")
    hr32 = _float32_nan(list(hr), bad)  # NaN on every bad pixel: the same as UNSEEN first
    del hr
    # float32 synthesis (the stored precision): at Nside 4096 TQU the float64 one and its
    # temporary took the build past 24 GB
    gauss = gaussian_small_scales(lr if pol else lr[0], fwhm_lr, fwhm_hr, seed=seed,
                                  ell_fit=ell_fit, dtype=np.float32).reshape(nrow, -1)
    run.lap("baseline")
    lr32 = _float32_nan(list(lr), bad)
    del lr
    g32 = _float32_nan(list(gauss), bad)
    del gauss
    if pol:
        return [hr32, lr32, g32], bad, pol
    return [np.concatenate([hr32, lr32, g32])], bad, pol  # one cut for all three


def _candidates(run, si, others, srng, m):
    """Up to ``m`` random centres of split ``si``: in its regions, on usable pixels, covered
    enough, and not overlapping the patches of the splits already filled."""
    lon = srng.uniform(0.0, 360.0, m)
    lat = np.degrees(np.arcsin(srng.uniform(-1.0, 1.0, m)))
    region = hp.ang2pix(run.region_nside, lon, lat, lonlat=True)
    keep = run.split_of_region[region] == si
    keep &= run.usable[hp.ang2pix(run.nside, lon, lat, lonlat=True)]
    lon, lat = lon[keep], lat[keep]
    rej = {"coverage": 0, "overlap": 0}
    if lon.size == 0:
        return lon, lat, rej
    cov = _coverage(run.usable_f, lon, lat, run.npix, run.pixel_arcmin)
    ok = cov >= run.min_coverage
    rej["coverage"] = int((~ok).sum())
    lon, lat = lon[ok], lat[ok]
    if others.shape[0] and lon.size:
        vec = _unit_vectors(lon, lat)
        clash = (vec @ others.T >= run.min_dot).any(axis=1)
        rej["overlap"] = int(clash.sum())
        lon, lat = lon[~clash], lat[~clash]
    return lon, lat, rej


def _cut(run, lo_, la_, rej):
    """Patches at the centres; the usable ones (finite, positive low-resolution intensity, not
    constant), with the rejections counted into ``rej``."""
    from ..sphere.projection import healpix_to_patches

    if run.pol:
        p_hr, p_lr, p_g = (on_host(healpix_to_patches, s, lo_, la_, **run.kw)
                           for s in run.stacks)
    else:
        p = on_host(healpix_to_patches, run.stacks[0], lo_, la_, **run.kw)
        p_hr, p_lr, p_g = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    t_lr = p_lr[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        target = p_hr[:, 0] / t_lr
    axes = (1, 2, 3)
    is_nan = ~np.isfinite(p_hr).all(axis=axes) | ~np.isfinite(p_lr).all(axis=axes) \
        | ~np.isfinite(p_g).all(axis=axes)
    nonpos = ~is_nan & (t_lr <= 0).any(axis=(1, 2))
    inputs = p_lr[:, run.comps]
    const = ~is_nan & ~nonpos & (_flat(target, (1, 2)) | _flat(inputs, (2, 3)).any(axis=1))
    rej["nan"] += int(is_nan.sum())
    rej["nonpositive_lr"] += int(nonpos.sum())
    rej["constant"] += int(const.sum())
    return p_hr, p_lr, p_g, target, ~(is_nan | nonpos | const)


def _fill_split(run, split, need, writer, others, srng):
    """Cut and write ``need`` positions of ``split``; returns their unit vectors."""
    found, tried, mine = 0, 0, []
    rej = {"nan": 0, "constant": 0, "nonpositive_lr": 0, "coverage": 0, "overlap": 0}
    per_pos, comps = len(run.comps), np.asarray(run.comps)
    while found < need and tried < run.max_cand:
        m = min(4096, run.max_cand - tried)
        tried += m
        lon, lat, r = _candidates(run, SPLITS.index(split), others, srng, m)
        rej["coverage"] += r["coverage"]
        rej["overlap"] += r["overlap"]
        for start in range(0, lon.size, run.batch):
            if found >= need:
                break
            lo_, la_ = lon[start:start + run.batch], lat[start:start + run.batch]
            lo_, la_ = lo_[: need - found], la_[: need - found]
            run.lap("select")
            p_hr, p_lr, p_g, target, good = _cut(run, lo_, la_, rej)
            run.lap("cut")
            if not good.any():
                continue
            g = np.flatnonzero(good)
            # one entry per (position, component), components interleaved per position
            sel = np.repeat(g, per_pos)
            comp = np.tile(comps, g.size)
            rowi = comp if run.pol else np.zeros_like(comp)
            writer.add(p_hr[sel, rowi], p_lr[sel, rowi], target[sel], p_g[sel, rowi], lo_[sel],
                       la_[sel], comp.astype(np.uint8))
            mine.append(_unit_vectors(lo_[g], la_[g]))
            found += g.size
            run.bar.update(g.size)
            run.lap("write")
    if found < need:
        raise ValueError(
            f"the mask leaves room for only {found} of the {need} {split} patches "
            f"asked for ({run.npix}x{run.npix} at {run.pixel_arcmin:g}', >= "
            f"{run.min_coverage:.0%} in the mask, {tried} random centres tried; rejected: "
            f"{rej}); ask for fewer patches, smaller patches, a lower min_coverage or a larger "
            "mask")
    writer.stats = {f"rejected_{k}": v for k, v in rej.items()}
    writer.stats["candidates_tried"] = tried
    return np.concatenate(mine) if mine else np.zeros((0, 3))


class TrainingSet:
    """Lazy view of one split file: ``hr``, ``lr``, ``target``, ``gauss`` are h5py datasets
    (slice them to read; None if the file has no such dataset), ``lon_deg``, ``lat_deg``,
    ``component`` are numpy arrays and ``attrs`` a dict. Use as a context manager or call
    ``close()``. The one reader of training-set files: the trainer and the CLI open them here,
    naming ``require`` (the datasets they need) and ``name`` (the argument in their errors)."""

    ALL = ("hr", "lr", "target", "gauss", "lon_deg", "lat_deg")

    def __init__(self, path, *, require=ALL, name: str = "path"):
        import h5py

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{_checks.label(name)} {str(path)!r} does not exist")
        try:
            self._f = h5py.File(path, "r")
        except OSError as exc:
            raise ValueError(f"{_checks.label(name)} {str(path)!r} is not a readable HDF5 file "
                             f"(not an HDF5 file, or a damaged one: {' '.join(str(exc).split())})"
                             ) from None
        missing = [k for k in require if k not in self._f]
        if missing:
            has = sorted(self._f.keys())
            self._f.close()
            raise ValueError(f"{_checks.label(name)} {str(path)!r} is not a forse training set: "
                             f"missing dataset(s) {missing} (has {has})")
        self.path = path
        self.hr, self.lr, self.target, self.gauss = (self._f.get(k) for k in
                                                     ("hr", "lr", "target", "gauss"))
        first = next((k for k in require if k in self._f), None)
        self._n = int(self._f[first].shape[0]) if first else 0
        n = self._n
        self.lon_deg = self._f["lon_deg"][...] if "lon_deg" in self._f else None
        self.lat_deg = self._f["lat_deg"][...] if "lat_deg" in self._f else None
        self.component = (self._f["component"][...] if "component" in self._f
                          else np.zeros(n, np.uint8))
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self._f.attrs.items()}
        self.attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
        self.has_component = "component" in self._f

    def __len__(self):
        return self._n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    def __repr__(self):
        a = self.attrs
        return (f"TrainingSet({str(self.path)!r}: {len(self)} x {a.get('npix')}^2, "
                f"split={a.get('split')!r}, stokes={a.get('stokes')!r}, nside={a.get('nside')})")


def load(path):
    """Open a training-set file lazily (``TrainingSet``)."""
    return TrainingSet(path)


def to_forse_npy(training_set, out_path, *, first="hr", overwrite=False, chunk=64):
    """Export a split to ForSE's ``(2, N, npix, npix)`` float32 ``.npy`` layout.

    ForSE's ``load_training_set`` reads ``Y, X = np.load(file)`` and trains on ``Y / X``
    (``X`` the low-resolution input). With ``first="hr"`` (default) ``[0]`` is
    ``target * lr`` so that ``[0] / [1]`` is exactly the stored target (for T this is the
    high-resolution patch; for Q/U entries it carries the intensity target, as in ForSE);
    ``first="target"`` stores the target itself. ``[1]`` is always ``lr``. Written in chunks
    (memory-mapped) and atomically.
    """
    if first not in ("hr", "target"):
        raise ValueError(f"`first` must be 'hr' or 'target', got {first!r}")
    ts = training_set if isinstance(training_set, TrainingSet) else load(training_set)
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{str(out_path)!r} exists; pass overwrite=True to replace it")
    n = len(ts)
    npix = ts.hr.shape[1]
    try:
        with replacing(out_path, suffix=".npy", overwrite=overwrite) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(2, n, npix, npix))
            for s in range(0, n, chunk):
                sl = slice(s, min(n, s + chunk))
                lr = ts.lr[sl]
                tg = ts.target[sl]
                arr[0, sl] = tg * lr if first == "hr" else tg
                arr[1, sl] = lr
            arr.flush()
            del arr
    finally:
        if ts is not training_set:
            ts.close()
    return out_path
