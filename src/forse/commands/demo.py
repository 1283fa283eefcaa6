"""``forse demo``: the main job on the built-in synthetic sky, end to end.

Draws the synthetic TQU dust sky at 12' (the truth), smooths it to 80' (the input a user would
have), extends it with the bundled models, and validates the result against the truth and the
Gaussian small-scale baseline. Writes the extended map, the figures, report.html and
summary.json into the output folder.

The default sky seed (1) is one no bundled model was trained on (they saw the sky of seed 0), so
the report's numbers are held out; a training seed is accepted but the validation warns.
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import _flags

DEFAULT_SEED = 1  # not in forse.validate.training_sky_seeds() of the bundled models (tested)

EXAMPLE = """example:
  forse demo -o forse-demo               # TQU at Nside 2048 (a few minutes on 2 cores)
  forse demo -o quick --nside 1024 --stokes T
"""


def register(sub, name):
    import argparse

    from ..data.sky import SKY_VERSION

    p = sub.add_parser(name, help="run the whole chain on the built-in synthetic sky",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default="forse-demo", help="output folder (forse-demo)")
    p.add_argument("--nside", type=int, default=2048,
                   help="Nside of sky and output: 1024 or more for the bundled 12' models, up to "
                        "8192 (2048, their native Nside)")
    p.add_argument("--stokes", choices=("T", "TQU"), default="TQU")
    p.add_argument("--sky-version", type=int, choices=(1, 2), default=SKY_VERSION,
                   help="version of the built-in sky (default %(default)s; 1 = the sky before 2026-12-03, "
                        "kept for old results)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the synthetic sky, the extension and the baseline ({DEFAULT_SEED}: "
                        "a sky no bundled model was trained on)")
    p.add_argument("--input-fwhm", type=float, default=80.0, metavar="ARCMIN",
                   help="beam of the input the demo makes from the 12' sky (80)")
    p.add_argument("--pol-mode", choices=("ratio", "qu", "p-angle", "joint"), default="joint",
                   help="Q/U small scales: the joint T/Q/U generator's, T from the T generator "
                        "(joint, default); the intensity's small-scale ratio on the large-scale "
                        "Q/U (ratio); the Q and U generators (qu, ForSE); or P from the T "
                        "generator with the large-scale angle (p-angle)")
    p.add_argument("--no-validate", action="store_true", help="skip the validation report")
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty output folder")
    _flags.quiet(p)
    _flags.backend(p)
    return p


def check(args):
    """Every argument and the output folder, before the sky is drawn and before anything is
    created."""
    from .. import _checks as c
    from ..pipeline.extend import min_nside, model_cards

    _flags.check_backend(args)
    card = model_cards(None, args.stokes, args.pol_mode)["T"]
    c.nside(args.nside, "--nside")
    c.map_memory(args.nside, len(args.stokes), "--nside")
    if args.nside < min_nside(card):
        raise ValueError(f"--nside {args.nside} is too coarse for the bundled models' "
                         f"{card['fwhm_hr_arcmin']:g}' beam: expected --nside "
                         f"{min_nside(card)} or more (a power of two)")
    c.seed(args.seed, "--seed")
    c.positive(args.input_fwhm, "--input-fwhm", hi=6000.0)
    if args.input_fwhm <= float(card["fwhm_hr_arcmin"]):
        raise ValueError(f"--input-fwhm must be larger than the models' "
                         f"{card['fwhm_hr_arcmin']:g}' beam, got {args.input_fwhm:g}")
    nbytes = 12 * args.nside ** 2 * len(args.stokes) * 4 + 2**24  # the map, report, figures
    c.output_folder(args.output, "--output", overwrite=args.overwrite, nbytes=nbytes)


def run(args):
    check(args)
    created = not os.path.isdir(args.output)
    os.makedirs(args.output, exist_ok=True)
    try:
        return _run(args)
    except BaseException:
        if created and not os.listdir(args.output):
            os.rmdir(args.output)  # no empty folder left by a failed or interrupted run
        raise


def _run(args):
    from .. import __version__
    from .._atomic import write_json
    from ..data import io
    from ..data.sky import synthetic_dust
    from ..data.units import BUILTIN_FREQ_GHZ, BUILTIN_UNIT
    from ..pipeline.extend import Timings, extend, output_header
    from ..pipeline.options import ExtendOptions
    from ..sphere.smoothing import resmooth

    t = Timings()
    t0 = time.perf_counter()
    say = (lambda *a: None) if args.quiet else print
    with t("sky"):
        truth = synthetic_dust(args.nside, seed=args.seed, stokes=args.stokes, fwhm_arcmin=12.0,
                               version=args.sky_version)
    with t("smooth"):
        lr = resmooth(truth, 12.0, args.input_fwhm)  # an input whose beam is --input-fwhm
        # float32 from here, as `forse extend` reads a map: each full-sky copy halved
        lr = lr.astype(np.float32)
        truth = truth.astype(np.float32)
    say(f"synthetic {args.stokes} sky at Nside {args.nside} ready ({t['sky'] + t['smooth']:.1f} s)")
    opts = ExtendOptions(input_fwhm_arcmin=args.input_fwhm, nside_out=args.nside,
                         seed=args.seed, pol_mode=args.pol_mode, backend=args.backend)
    out, baseline = extend(lr, opts, progress=not args.quiet, timings=t, comm=None,
                           return_baseline=True)
    with t("write"):
        path = os.path.join(args.output, f"forse_{args.stokes}_nside{args.nside}.fits")
        head = output_header(opts, stokes=args.stokes, unit=BUILTIN_UNIT,
                             freq_ghz=BUILTIN_FREQ_GHZ)
        io.write_map(path, out, dtype="float32", overwrite=True,
                     header={**head, "COORDSYS": "G"})
        out = out.astype(np.float32)  # what was written, and what is validated
    summary = {"forse_version": __version__, "nside": args.nside, "stokes": args.stokes,
               "seed": args.seed, "sky_version": args.sky_version,
               "input_fwhm_arcmin": args.input_fwhm,
               "pol_mode": args.pol_mode, "map": os.path.basename(path)}
    if not args.no_validate:
        from ..stats.validate import validate

        with t("validate"):
            # spectra to l = 1536 (the 12' beam is at 8 % there): the transforms dominate the
            # validation time and higher multipoles add little
            summary["validation"] = validate(out, reference=truth, baseline=baseline, lowres=lr,
                                             fwhm_lr_arcmin=args.input_fwhm, out_dir=args.output,
                                             lmax=min(3 * args.nside - 1, 1536),
                                             progress=not args.quiet, reference_seed=args.seed,
                                             backend=args.backend)
        h = summary["validation"]["headline"]
        if h.get("n_rows"):
            say(f"forse closer to the truth than the Gaussian baseline on {h['n_better']} of "
                f"{h['n_rows']} headline rows (report.html)")
    summary["timings_s"] = {k: round(v, 2) for k, v in t.items()}
    summary["stage_peak_gb"] = {k: round(v, 2) for k, v in t.peaks.items()}
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    write_json(os.path.join(args.output, "demo.json"), summary, indent=1)
    say("timing:\n" + t.table())
    wrote = [path] + [os.path.join(args.output, f) for f in
                      (["report.html", "summary.json"] * (not args.no_validate) + ["demo.json"])]
    print(f"done in {summary['wall_s']:.0f} s; wrote " + ", ".join(wrote))
    return 0
