"""Extension in stages: 80' -> 12' (Nside 1024) -> 3' (Nside 4096), as ForSE+ does, each stage
the one extension of ``forse.extend`` with its own generator.

A stage is a model (bundled name or ``.keras`` path of its T generator; the Q/U or joint
siblings are found as ``forse.extend`` finds them). Its card says the beams (``fwhm_lr_arcmin``
in, ``fwhm_hr_arcmin`` out) and the pixel; the tiling keeps the first stage's patch side in
pixels (20 deg of 3.75' = 5 deg of 0.9375': 320 pixels), so the overlap scales with it. The 3'
generator is trained on 20' inputs: ``forse.extend`` smooths the 12' map to 20' for its patches
while the large scales and the Gaussian baseline keep the 12' map's own beam (the ForSE+ chain:
12' patch, smoothed to 20', 3' small scales).

Stages whose output beam is not finer than the input's are skipped (a 12' map starts at the 3'
stage). An intermediate stage writes at its model's smallest Nside (``forse.extend.min_nside``:
1024 for 12'), the last at ``nside_out`` (default: its model's smallest, 4096 for 3').
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _checks
from .extend import Timings, extend, min_nside, model_cards
from .options import resolve as resolve_options

#: the bundled chains by output beam (arcmin): the T generator of each stage
CHAINS = {12.0: ("dust-T",), 3.0: ("dust-T", "dust3-T")}
#: peak bytes of the last stage per output pixel: a fixed part and one per field, from the
#: measured peaks at Nside 4096 (T 8.65 GB, TQU 17.8 GB: bench/RESULTS.md, issue 15)
BYTES_PER_PIXEL, BYTES_PER_PIXEL_FIELD = 20.5, 23.0


def plan(stages, options=None, **kw):
    """The options of each stage that runs, ``[(model, ExtendOptions), ...]``, checked against
    the cards before anything is loaded: the input beam must be one the first stage that runs
    takes (not coarser than its ``fwhm_lr_arcmin``), and each stage's output must feed the next."""
    o = resolve_options(options, kw, "forse.chain.plan()").check()
    stages = [str(s) for s in stages]
    if not stages:
        raise ValueError("`stages` is empty: give at least one model")
    cards = [model_cards(s, "T", o.pol_mode)["T"] for s in stages]
    px0 = float(cards[0]["pixel_arcmin"])
    beam, out = float(o.input_fwhm_arcmin), []
    for k, (name, card) in enumerate(zip(stages, cards)):
        lr, hr = float(card["fwhm_lr_arcmin"]), float(card["fwhm_hr_arcmin"])
        if hr >= beam * (1 - 1e-6):
            continue  # the input is already this sharp
        if beam > lr * (1 + 1e-3):
            raise ValueError(
                f"`input_fwhm_arcmin`={o.input_fwhm_arcmin:g} is coarser than the chain "
                f"supports: stage {name!r} takes maps at {lr:g}' or sharper"
                + (f" (its input is the {beam:g}' output of the stage before)" if out else ""))
        last = k == len(stages) - 1
        nside = (o.nside_out or min_nside(card)) if last else min_nside(card)
        scale = float(card["pixel_arcmin"]) / px0
        out.append((name, dataclasses.replace(
            o, model=name, input_fwhm_arcmin=beam, nside_out=int(nside),
            size_deg=o.size_deg * scale, overlap_deg=o.overlap_deg * scale)))
        beam = hr
    if not out:
        raise ValueError(f"`input_fwhm_arcmin`={o.input_fwhm_arcmin:g} is already as sharp as "
                         f"the last stage's output ({beam:g}'): nothing to add")
    return out


def check_memory(steps, ncomp: int, name: str = "nside_out") -> None:
    """Refuse a run whose last stage will not fit in this machine's memory, with the estimate
    (``BYTES_PER_PIXEL + ncomp * BYTES_PER_PIXEL_FIELD`` per output pixel, measured at Nside
    4096)."""
    nside = steps[-1][1].nside_out
    per_pixel = BYTES_PER_PIXEL + ncomp * BYTES_PER_PIXEL_FIELD
    _checks.memory(12.0 * nside * nside * per_pixel, name, nside,
                   f"the Nside {nside} stage ({ncomp} field(s), about {per_pixel:g} bytes per "
                   "pixel at its peak)")


def extend_chain(m, stages=CHAINS[3.0], options=None, *, progress=True, timings=None,
                 comm="auto", **kw):
    """``m`` extended through ``stages`` (``plan``); each stage's output is the next one's input.
    Returns the last stage's map (None on MPI ranks other than 0, as ``forse.extend``)."""
    from . import parallel

    timings = Timings() if timings is None else timings
    comm = parallel.world() if comm == "auto" else comm
    steps = plan(stages, options, **kw)
    check_memory(steps, 3 if np.ndim(m) == 2 and len(m) == 3 else 1)
    out = m
    for k, (_, o) in enumerate(steps):
        out = extend(out, o, progress=progress, timings=timings, comm=comm)
        if k < len(steps) - 1:  # every rank takes the next stage's input from rank 0
            out = parallel.broadcast(out, comm)
    return out
