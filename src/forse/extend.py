"""Full-sky extension: give a low-resolution HEALPix dust map non-Gaussian small scales.

Pipeline (``extend``): fill masked pixels, bring the input to the output Nside, draw the Gaussian
small-scale baseline (it sets the amplitude of the generated small scales), tile the sphere, cut
low-resolution and baseline patches, run the generator batch by batch, normalize to physical
units, back-project the small scales with the apodized overlap weights, high-pass them so the
input's large scales (ell < ``ell_keep``) are returned untouched, and add them to the input.

Polarization: Q/U are rotated into each patch's frame on the way in and back on the way out
(spin-2). Mode ``"qu"`` runs the Q and U generators on the Q and U patches (as ForSE);
``"p-angle"`` generates small scales of the polarized intensity P with the T generator and
rebuilds Q/U with the large-scale polarization angle. Both modulate by the local large-scale P.
"""
from __future__ import annotations

import contextlib
import time

import healpy as hp
import numpy as np

from . import parallel, projection, sht, tiling
from ._pixels import parents
from ._checks import nside_of, positive

STAGES = ("read", "smooth", "project", "infer", "normalize", "backproject", "write")
POL_MODES = ("qu", "p-angle")


class Timings(dict):
    """Seconds spent per stage, accumulated; ``with timings("infer"): ...``."""

    @contextlib.contextmanager
    def __call__(self, stage):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[stage] = self.get(stage, 0.0) + time.perf_counter() - t0

    def table(self) -> str:
        total = sum(self.values())
        rows = [f"  {k:<12s}{v:8.2f} s" for k, v in self.items()]
        return "\n".join(rows + [f"  {'total':<12s}{total:8.2f} s"])


def _as_stack(m):
    a = np.asarray(m)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 3):
        raise ValueError(f"`m` must be a T map (npix,) or a TQU stack (3, npix), got shape {np.shape(m)}")
    if a.dtype.kind != "f":
        raise TypeError(f"`m` must be a floating-point map, got dtype {a.dtype}")
    nside_of(a.shape[1], "m")
    return np.asarray(a, dtype=np.float64)  # no copy of a float64 input: maps are large


def _fill_masked(maps, bad):
    """Replace masked pixels by a smooth continuation (low-Nside average, then neighbours), so
    that patches touching the mask stay finite; the mask is applied again to the output."""
    if not bad.any():
        return maps
    nside = hp.get_nside(maps[0])
    out = maps.copy()
    low = min(nside, 64)
    for k in range(len(maps)):
        work = np.where(bad, hp.UNSEEN, maps[k])
        coarse = hp.ud_grade(work, low, pess=False)
        hole = coarse == hp.UNSEEN
        if hole.all():
            raise ValueError("`m` has no valid pixel (all UNSEEN or NaN)")
        coarse[hole] = np.mean(coarse[~hole])  # entire coarse pixels masked: global mean
        out[k, bad] = hp.ud_grade(coarse, nside)[bad]
    return out


def _beam_lmax(fwhm_arcmin, nside):
    """Multipole where the Gaussian beam has fallen to 1e-6 (nothing above matters)."""
    sigma = np.radians(fwhm_arcmin / 60.0) / np.sqrt(8 * np.log(2))
    return int(min(3 * nside - 1, np.ceil(np.sqrt(2 * np.log(1e6)) / sigma)))


def _change_nside(maps, nside_out, fwhm_arcmin):
    nside_in = hp.get_nside(maps[0])
    if nside_in == nside_out:
        return maps
    lmax = _beam_lmax(fwhm_arcmin, min(nside_in, nside_out))
    pol = len(maps) == 3
    return sht.alm2map(sht.map2alm(maps, lmax, iter=1, pol=pol), nside_out, lmax, pol=pol)


def _high_pass(maps, ell_keep, pol):
    """Remove ell < ell_keep from the small scales (cosine taper up to 1.5*ell_keep), so that
    the output's large scales are the input's."""
    if ell_keep <= 0:
        return maps
    lmax = int(1.5 * ell_keep)
    ell = np.arange(lmax + 1)
    low = np.clip((lmax - ell) / (lmax - ell_keep), 0.0, 1.0)
    low = np.where(ell < ell_keep, 1.0, 0.5 - 0.5 * np.cos(np.pi * low))
    nside = hp.get_nside(maps[0])
    # (Q, U): spin 2, E and B filtered alike; no Jacobi step for them, which would add a 0.8 GB
    # residual map at Nside 2048 (the quadrature error is ~1e-4 of these low multipoles)
    alm = sht.map2alm(maps, lmax, iter=0 if pol else 1, pol=pol)
    for a in alm:
        hp.almxfl(a, low, inplace=True)
    maps -= sht.alm2map(alm, nside, lmax, pol=pol, dtype=maps.dtype)  # in place: full-sky maps
    return maps


def _restore_overlap_power(sm, ss, lon, lat, px, taper, backend, chunk=1 << 22):
    """Where patches overlap, the weighted mean of their (at small scales independent) patterns
    has less power than each of them: up to half in the middle of an overlap strip, a visible
    grid of seams. The deficit is the weighted spread between patches,
    ``sum w p^2 / sum w - (sum w p / sum w)^2``; scale the map, in place, by
    ``sqrt(<sum w p^2 / sum w> / <map^2>)``, averaged over ~1 deg and interpolated to ~14'. The
    factor is 1 where one patch contributes. Pixels are handled in chunks so that the parent
    indices never exist for the whole map (0.4 GB each at Nside 2048).

    sm: (k, npix) stitched small scales (k = 1, or 2 for Q/U); ss: (N, k, n, n) patches."""
    nside = hp.get_nside(sm[0])
    p2 = np.einsum("nkij,nkij->nij", ss, ss)  # T^2, or Q^2 + U^2 (invariant under the rotation)
    s2 = projection.patches_to_healpix(p2, lon, lat, nside, px, taper_fraction=taper,
                                       backend=backend)
    del p2
    s2[s2 == hp.UNSEEN] = 0.0
    np.maximum(s2, 0.0, out=s2)  # the interpolation of p^2 can undershoot where p^2 ~ 0
    low = min(nside, 64)   # ~1 deg pixels: the factor's resolution (overlaps are 5 deg wide)
    mid = min(nside, 256)  # ~14' pixels: where the factor is interpolated
    mid_to_low = parents(mid, low)
    a1 = np.zeros(12 * low * low)
    a2 = np.zeros_like(a1)
    cnt = np.zeros_like(a1)
    npix = 12 * nside * nside
    for c0 in range(0, npix, chunk):
        c1 = min(npix, c0 + chunk)
        up = mid_to_low[parents(nside, mid, c0, c1)]
        cnt += np.bincount(up, minlength=cnt.size)
        a2 += np.bincount(up, s2[c0:c1], minlength=cnt.size)
        a1 += np.bincount(up, np.einsum("kp,kp->p", sm[:, c0:c1], sm[:, c0:c1]),
                          minlength=cnt.size)
    del s2
    with np.errstate(divide="ignore", invalid="ignore"):
        # <= 4: n equal independent patches need sqrt(n), and the regular layout stacks ~8
        # near the poles (a cap of 2 left the polar patches at 0.4 of the sky's small scales)
        fac = np.clip(np.where(a1 > 0, np.sqrt(a2 / a1), 1.0), 1.0, 4.0)
    theta, phi = hp.pix2ang(mid, np.arange(12 * mid * mid))
    fac_mid = hp.get_interp_val(fac, theta, phi).astype(sm.dtype)
    for c0 in range(0, npix, chunk):
        c1 = min(npix, c0 + chunk)
        sm[:, c0:c1] *= fac_mid[parents(nside, mid, c0, c1)]


def _generate(gen, x, seeds, stochastic):
    """Generator output for rescaled patches ``x``; patch i's ForSE+ noise is drawn from its own
    seed ``seeds[i]``, so a realization does not depend on batch sizes or MPI ranks."""
    from . import gan

    if stochastic is None:
        stochastic = bool(gen.card.get("stochastic", False))
    if stochastic:
        amp = float(gen.card.get("noise_amplitude", 0.1))
        x = np.stack([gan.add_input_noise(xi, amp, np.random.default_rng(s))
                      for xi, s in zip(x, seeds)])
    return gan.generate(gen, x, stochastic=False)


def _small_scales(gens, lr, gauss, card, seed, stochastic, pol_mode, timings):
    """Generated small-scale patches for one batch: HR - LR in physical units.

    seed: one entropy list per patch ([seed, patch index]).
    lr, gauss: (B, k, n, n) with k=1 (T) or 2 (Q, U in the patch frame)."""
    from .normalize import rescale, to_physical

    norm = card.get("normalization", {})
    opts = {"pixel_arcmin": card["pixel_arcmin"], "robust": norm.get("robust", True),
            "ell_range": tuple(norm.get("ell_range", (300, 1000)))}
    if lr.shape[1] == 1:
        with timings("infer"):
            x, _, _ = rescale(lr[:, 0], robust=opts["robust"])
            g = _generate(gens["T"], x, seed, stochastic)
        with timings("normalize"):
            # the ratio HR/LR needs LR > 0: floor the modulation where a T map dips to <= 0
            t = lr[:, 0]
            floor = 1e-3 * np.nanmedian(np.abs(t), axis=(-2, -1), keepdims=True)
            hr = to_physical(g, t, gauss[:, 0], lr_amplitude=np.maximum(t, floor), **opts)
        return (hr - lr[:, 0])[:, None]
    q, u = lr[:, 0], lr[:, 1]
    amp = np.sqrt(q * q + u * u) + 1e-12  # local large-scale P: positive, sets the modulation
    if pol_mode == "qu":
        out = []
        for k, name in ((0, "Q"), (1, "U")):
            with timings("infer"):
                x, _, _ = rescale(lr[:, k])
                g = _generate(gens[name], x, [s + [k + 1] for s in seed], stochastic)
            with timings("normalize"):
                # Q crosses zero: modulate by the (positive) local large-scale P instead
                hr = to_physical(g, lr[:, k], gauss[:, k], lr_amplitude=amp, **opts)
            out.append(hr - lr[:, k])
        return np.stack(out, axis=1)
    # p-angle: small scales of P from the T generator, angle from the large scales
    pg = np.sqrt(gauss[:, 0] ** 2 + gauss[:, 1] ** 2)
    with timings("infer"):
        x, _, _ = rescale(amp)
        g = _generate(gens["T"], x, seed, stochastic)
    with timings("normalize"):
        dp = to_physical(g, amp, pg, **opts) - amp
    c2, s2 = q / amp, u / amp
    return np.stack([dp * c2, dp * s2], axis=1)


def _sibling(t_model: str, stokes: str) -> str:
    """The Q or U generator saved beside a T generator: ``x-T[.keras]`` -> ``x-Q[.keras]``
    (or ``x[.keras]`` -> ``x-Q[.keras]``)."""
    if stokes == "T":
        return t_model
    root, ext = (t_model[:-6], ".keras") if t_model.endswith(".keras") else (t_model, "")
    root = root[:-2] if root.endswith("-T") else root
    return f"{root}-{stokes}{ext}"


def load_models(model, stokes: str, pol_mode: str):
    """{"T"|"Q"|"U": generator} and the T model's card for a bundled name or a path."""
    from . import gan

    keys = ["T"] + (["Q", "U"] if stokes == "TQU" and pol_mode == "qu" else [])
    if isinstance(model, dict):
        names = {k: model[k] for k in keys}
    else:
        names = {k: _sibling("dust-T" if model is None else str(model), k) for k in keys}
    gens, cards = {}, {}
    for k, name in names.items():
        gens[k], cards[k] = gan.load_generator(name, with_card=True)
    return gens, cards["T"]


def output_header(model=None, *, seed, input_fwhm_arcmin, nside_out, pol_mode, layout,
                  stochastic) -> dict:
    """FITS keywords that describe an extended map: seed, beams, Nside, the run's options and the
    (T) model card's name, width, checkpoint step and forse version."""
    import os

    from .gan.models import load_card

    t_model = "dust-T" if model is None else model["T"] if isinstance(model, dict) else str(model)
    card = load_card(t_model)
    metrics = card.get("metrics", {})
    head = {"SEED": int(seed), "INFWHM": float(input_fwhm_arcmin),
            "OUTFWHM": card.get("fwhm_hr_arcmin"), "OUTNSIDE": int(nside_out),
            "MODEL": os.path.basename(t_model)[:60], "MODELCRD": card.get("name"),
            "MODELWID": card.get("width"), "MODELSTP": metrics.get("checkpoint_step"),
            "MODELVER": card.get("forse_version"), "PIXARCM": card.get("pixel_arcmin"),
            "POLMODE": pol_mode, "LAYOUT": layout,
            "STOCHAST": bool(card.get("stochastic", False)) if stochastic is None else
            bool(stochastic)}
    return {k: v for k, v in head.items() if v is not None}


def extend(m, *, input_fwhm_arcmin=80.0, nside_out=2048, model=None, layout="regular",
           size_deg=20.0, overlap_deg=5.0, seed=0, stochastic=None, pol_mode="qu",
           batch_size=16, ell_keep=100, progress=True, timings=None, comm="auto",
           backend="auto", fit_mask=None, restore_overlap_power=True, return_baseline=False):
    """Extend a low-resolution T or TQU map to the model's resolution (12' for the bundled models).

    Parameters
    ----------
    m : (npix,) or (3, npix) array, RING, any Nside; UNSEEN/NaN pixels stay masked in the output.
    input_fwhm_arcmin : beam of the input map.
    nside_out : output Nside (its pixels must resolve the model's beam).
    model : None for the bundled models, a bundled name or a ``.keras`` path (its ``-Q``/``-U``
        siblings are used for polarization in ``"qu"`` mode), or a dict {"T": ..., "Q": ..., "U": ...}.
    layout, size_deg, overlap_deg : the tiling (``forse.tiling``).
    seed : seeds the Gaussian baseline and the generator noise; the same seed gives the same map.
    stochastic : add ForSE+ input noise (different seeds, different small scales); None follows
        the model card.
    pol_mode : ``"qu"`` or ``"p-angle"`` (see module docstring).
    ell_keep : multipoles below it are the input's exactly.
    fit_mask : optional bool map at the output Nside passed to the Gaussian baseline's spectrum
        fit (e.g. leaving out bright compact sources, which flatten the fitted slope).
    restore_overlap_power : rescale the stitched small scales where patches overlap so that
        averaging them does not lower their power there (see ``_restore_overlap_power``); without
        it the overlap strips keep ~55 % of the small-scale power, a visible grid.
    comm : an mpi4py communicator, ``None`` (serial) or ``"auto"`` (MPI world under mpiexec).
    Returns the extended map(s) ((npix,) or (3, npix)), and the Gaussian baseline too when
    ``return_baseline``; under MPI only rank 0 gets them (the other ranks get None).
    """
    from .smoothing import gaussian_small_scales

    timings = Timings() if timings is None else timings
    comm = parallel.world() if comm == "auto" else comm
    maps = _as_stack(m)
    stokes = "T" if len(maps) == 1 else "TQU"
    positive(input_fwhm_arcmin, "input_fwhm_arcmin")
    if pol_mode not in POL_MODES:
        raise ValueError(f"`pol_mode` must be one of {POL_MODES}, got {pol_mode!r}")
    if layout not in ("regular", "adaptive"):
        raise ValueError(f"`layout` must be 'regular' or 'adaptive', got {layout!r}")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
    nside_out = int(nside_out)
    nside_of(12 * nside_out * nside_out, "nside_out")

    with timings("read"):
        gens, card = load_models(model, stokes, pol_mode)
    if card.get("stokes", "T") != "T":
        raise ValueError(f"`model` must be an intensity (T) generator for the T channel, "
                         f"got a model card with stokes={card.get('stokes')!r}")
    fwhm_hr = float(card["fwhm_hr_arcmin"])
    px = float(card["pixel_arcmin"])
    if input_fwhm_arcmin <= fwhm_hr:
        raise ValueError(f"`input_fwhm_arcmin` ({input_fwhm_arcmin}) must be larger than the "
                         f"model's output beam ({fwhm_hr} arcmin)")
    resol = np.degrees(hp.nside2resol(nside_out)) * 60
    if resol > fwhm_hr / 2:
        raise ValueError(f"`nside_out`={nside_out} has {resol:.1f}' pixels, too coarse for the "
                         f"model's {fwhm_hr}' beam; expected nside_out >= "
                         f"{int(2 ** np.ceil(np.log2(np.sqrt(np.pi / 3) * 60 * 180 / np.pi * 2 / fwhm_hr)))}")

    with timings("smooth"):
        bad = ~np.isfinite(maps).all(axis=0) | (maps == hp.UNSEEN).any(axis=0)
        filled = _fill_masked(maps, bad)
        lr = _change_nside(filled, nside_out, input_fwhm_arcmin)
        bad_out = hp.ud_grade(bad.astype(float), nside_out) > 0 if bad.any() else None
        # float32: only patches are cut from it
        gauss = np.atleast_2d(gaussian_small_scales(lr if stokes == "TQU" else lr[0],
                                                    input_fwhm_arcmin, fwhm_hr, seed=seed,
                                                    fit_mask=fit_mask, dtype=np.float32))

    lon, lat = getattr(tiling, layout)(size_deg, overlap_deg)
    npix = int(round(size_deg * 60.0 / px))
    nb = -(-len(lon) // batch_size)
    mine = parallel.my_share(nb, comm)
    channels = [(0, False)] + ([(1, True)] if stokes == "TQU" else [])  # (first row, is Q/U)
    results = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(mine) * len(channels), desc="forse extend", unit="batch",
               disable=not progress or parallel.rank(comm) != 0)
    for first, pol in channels:
        rows = slice(first, first + 2) if pol else slice(0, 1)
        for b in mine:
            sel = slice(b * batch_size, min(len(lon), (b + 1) * batch_size))
            with timings("project"):
                lr_p, gauss_p = (projection.healpix_to_patches(x[rows], lon[sel], lat[sel], npix,
                                                               px, pol=pol, backend=backend)
                                 for x in (lr, gauss))
            seeds = [[seed, i] for i in range(sel.start, sel.stop)]
            ss = _small_scales(gens, lr_p, gauss_p, card, seeds, stochastic, pol_mode, timings)
            results[(first, b)] = ss.astype(np.float32)
            bar.update()
    bar.close()
    results = parallel.gather_by_index(results, comm)
    if not return_baseline:
        del gauss  # 0.6 GB for TQU at Nside 2048: gone before the full-sky stitching

    out = None
    if results is not None:  # rank 0 (or serial)
        out = lr.copy() if lr is maps else lr  # the caller's input is never modified
        del lr
        for first, pol in channels:
            ss = np.concatenate([results.pop((first, b)) for b in range(nb)])
            with timings("backproject"):
                taper = min(0.5, overlap_deg / size_deg)  # ramp over the overlap: no seams
                sm = projection.patches_to_healpix(ss if pol else ss[:, 0], lon, lat, nside_out,
                                                   px, pol=pol, taper_fraction=taper,
                                                   backend=backend)
                sm = np.atleast_2d(sm)
                sm[sm == hp.UNSEEN] = 0.0
                if restore_overlap_power:
                    _restore_overlap_power(sm, ss, lon, lat, px, taper, backend)
            del ss  # the full-sky transforms below need the room
            with timings("smooth"):
                sm = _high_pass(sm, ell_keep, pol)
            out[first:first + sm.shape[0]] += sm
            del sm
        if bad_out is not None:
            out[:, bad_out] = hp.UNSEEN
            if return_baseline:
                gauss[:, bad_out] = hp.UNSEEN
    if out is None:  # MPI ranks other than 0: the result lives on rank 0 only
        return (None, None) if return_baseline else None
    out = out[0] if stokes == "T" else out
    if return_baseline:
        return out, (gauss[0] if stokes == "T" else gauss)
    return out
