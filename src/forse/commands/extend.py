"""``forse extend``: add generated 12' small scales to a low-resolution T or TQU map."""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from . import _flags

EXAMPLE = """example:
  forse extend dust_80arcmin.fits -o dust_12arcmin.fits --seed 1
  forse extend dust_80arcmin.fits -o dust_3arcmin.fits --fwhm-out 3      # Nside 4096, two stages
  forse extend dust_TQU_80arcmin.fits -o dust.fits --realizations 10 --pol-mode p-angle
  mpiexec -n 4 forse extend dust.fits -o out.fits --realizations 8   # realizations over ranks
"""


def register(sub, name):
    import argparse

    from ..data import units

    p = sub.add_parser(name, help="extend a low-resolution map with generated small scales",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="HEALPix FITS map: T, or T,Q,U (any Nside, RING or NEST)")
    p.add_argument("-o", "--output", required=True,
                   help="output FITS; with --realizations N > 1, files OUTPUT_r000.fits ...")
    p.add_argument("--input-fwhm", type=float, default=80.0, metavar="ARCMIN",
                   help="beam FWHM of the input map (default 80)")
    p.add_argument("--nside", type=int, default=None,
                   help="output Nside, a power of two; the bundled 12' models need 1024 or more "
                        "(pixels of at most 6'), up to 8192; default 2048 (their native Nside), "
                        "4096 with --fwhm-out 3")
    p.add_argument("--fwhm-out", type=float, choices=(12.0, 3.0), default=12.0, metavar="ARCMIN",
                   help="output beam: 12 (default; one stage, 80' -> 12') or 3 (two stages as "
                        "ForSE+: 80' -> 12' at Nside 1024, then 3' at Nside 4096; a 12' input "
                        "(--input-fwhm 12) starts at the 3' stage)")
    p.add_argument("--model", default=None,
                   help="bundled model name or .keras path of the (last stage's) T generator "
                        "(default: the bundled dust models)")
    p.add_argument("--layout", choices=("regular", "adaptive"), default="regular")
    p.add_argument("--size", type=float, default=20.0, metavar="DEG", help="patch size (20)")
    p.add_argument("--overlap", type=float, default=5.0, metavar="DEG", help="patch overlap (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of realization 0 (default 0)")
    p.add_argument("--realizations", type=int, default=1, help="number of realizations (seeds "
                   "seed, seed+1, ...)")
    p.add_argument("--pol-mode", choices=("ratio", "qu", "p-angle", "joint"), default="joint",
                   help="Q/U small scales: the joint T/Q/U generator's, T from the T generator "
                        "(joint, default); the intensity's small-scale ratio on the large-scale "
                        "Q/U (ratio); the Q and U generators (qu, ForSE); or P from the T "
                        "generator with the large-scale angle (p-angle)")
    p.add_argument("--deterministic", action="store_true",
                   help="no input noise: one output per input (ForSE) instead of ForSE+ sampling")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--blend", choices=("quadrature", "mean"), default="quadrature",
                   help="stitching of overlapping patches: weights whose squares sum to one "
                        "(default: the small-scale power is kept in overlaps) or ForSE's "
                        "weighted mean (halves it in the middle of an overlap strip)")
    p.add_argument("--calibration", choices=("auto", "split", "spectra", "intensity", "none"),
                   default="auto",
                   help="harmonic calibration of the small scales to the spectra extrapolated "
                        "from the input: TT, E/B split and TE from the input, polarized power "
                        "from the small scales (split); all four from the input (spectra); TT "
                        "only (intensity); none (the generator's own spectrum); auto (default): "
                        "spectra")
    p.add_argument("--unit", choices=units.UNITS, default=None,
                   help="unit of the output map; an input whose header (TUNIT1) gives another "
                        "unit is converted at --freq, one without a unit is taken to be in it "
                        "(default: the input's unit)")
    p.add_argument("--freq", type=float, default=None, metavar="GHZ",
                   help="reference frequency of the input map, written as REFFREQ (default: "
                        "the input's REFFREQ keyword; 353 for the built-in sky)")
    p.add_argument("--float64", action="store_true",
                   help="write float64 maps (default float32, as healpy: half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _flags.quiet(p)
    _flags.backend(p)
    return p


def output_names(output: str, n: int) -> list[str]:
    if n == 1:
        return [output]
    root, ext = os.path.splitext(output)
    if ext == ".gz":
        root, ext2 = os.path.splitext(root)
        ext = ext2 + ext
    return [f"{root}_r{i:03d}{ext or '.fits'}" for i in range(n)]


def check(args) -> tuple[list[str], list]:
    """Every argument, the input's header, the model cards and the outputs, before TensorFlow
    loads and before anything is written; returns the output names and the stages
    ``[(model, ExtendOptions)]``."""
    from .. import _checks as c
    from ..data.io import _healpix_hdu

    _flags.check_backend(args)
    c.input_file(args.input, "INPUT")
    _, head, ncol = _healpix_hdu(args.input)
    _units(args, head)
    c.positive(args.input_fwhm, "--input-fwhm", hi=6000.0)
    c.seed(args.seed, "--seed")
    c.integer(args.realizations, "--realizations", 1, 100_000)
    c.integer(args.batch_size, "--batch-size", 1, 4096)
    if args.nside is None:
        args.nside = 2048 if args.fwhm_out == 12.0 else 4096
    c.nside(args.nside, "--nside")
    c.map_memory(args.nside, 3 if ncol >= 3 else 1, "--nside")
    c.positive(args.size, "--size", hi=89.9)
    if not 0 <= args.overlap < args.size:
        raise ValueError(f"--overlap must be in [0, --size={args.size:g}) degrees, got "
                         f"{args.overlap:g}")
    steps = _steps(args, ncol)
    for name, opts in steps:
        _check_stage(args, name, opts, ncol)
    names = output_names(args.output, args.realizations)
    nbytes = 12 * args.nside ** 2 * (3 if ncol >= 3 else 1) * (8 if args.float64 else 4)
    for name in names:
        c.output_file(name, "--output", overwrite=args.overwrite, nbytes=nbytes,
                      inputs=[args.input])
    return names, steps


def _options(args):
    from ..pipeline.options import ExtendOptions

    # ForSE+ sampling (the T generator's; never the joint one) unless --deterministic
    return ExtendOptions(input_fwhm_arcmin=args.input_fwhm, nside_out=args.nside,
                         model=args.model, layout=args.layout, size_deg=args.size,
                         overlap_deg=args.overlap, stochastic=not args.deterministic,
                         pol_mode=args.pol_mode, batch_size=args.batch_size, blend=args.blend,
                         calibrate=None if args.calibration == "none" else args.calibration,
                         backend=args.backend)


def _steps(args, ncol):
    """[(model, ExtendOptions)] of each stage: one for 12', the planned chain for 3' (its cards
    checked against the input beam, the memory of its last stage estimated)."""
    opts = _options(args)
    if args.fwhm_out == 12.0:
        return [(args.model, opts)]
    from ..pipeline import chain

    stages = list(chain.CHAINS[3.0])
    if args.model is not None:
        stages[-1] = args.model
    try:
        steps = chain.plan(stages, opts)
    except ValueError as exc:  # the API names the option; the command line, the flag
        raise ValueError(str(exc).replace("`input_fwhm_arcmin`=", "--input-fwhm ")) from None
    chain.check_memory(steps, 3 if ncol >= 3 else 1, "--nside")
    return steps


def _check_stage(args, model, opts, ncol):
    from ..pipeline.extend import check_input_beam, min_nside, model_cards

    card = model_cards(model, "TQU" if ncol >= 3 else "T", args.pol_mode)["T"]
    fwhm_hr, px = float(card["fwhm_hr_arcmin"]), float(card["pixel_arcmin"])
    if opts.input_fwhm_arcmin <= fwhm_hr:
        raise ValueError(f"--input-fwhm must be larger than the model's {fwhm_hr:g}' output beam, "
                         f"got {opts.input_fwhm_arcmin:g}")
    check_input_beam(opts.input_fwhm_arcmin, card, "--input-fwhm")
    if opts.nside_out < min_nside(card):
        raise ValueError(f"--nside {opts.nside_out} is too coarse for the model's {fwhm_hr:g}' "
                         f"beam: expected --nside {min_nside(card)} or more (a power of two)")
    if round(opts.size_deg * 60.0 / px) % 4:
        raise ValueError(f"--size {args.size:g} gives {round(opts.size_deg * 60.0 / px)}-pixel "
                         f"patches at the model's {px:g}' pixels; expected a multiple of 4 pixels")


def run(args):
    names, steps = check(args)
    from .._checks import ascii_text
    from ..data import io, units
    from ..pipeline import parallel
    from ..pipeline.chain import extend_chain
    from ..pipeline.extend import Timings, extend, output_header

    comm = parallel.world()
    # Many realizations: whole realizations per rank; few: patches of each realization over ranks.
    by_real = comm is not None and args.realizations >= parallel.size(comm)
    todo = parallel.my_share(args.realizations, comm) if by_real else range(args.realizations)
    verbose = not args.quiet and (parallel.rank(comm) == 0 or by_real)
    opts = _options(args)
    t = Timings()
    with t("read"):
        maps, header = io.read_map(args.input)
    given, unit, freq = _units(args, header)
    if given and unit:  # --unit: the input in the output's unit
        units.convert(maps, given, unit, freq)
    stokes = "TQU" if maps.ndim == 2 and len(maps) == 3 else "T"
    # an 80' map needs no float64: the float32 copy halves what is held through the run
    maps = maps.astype(np.float32)
    written = []
    for i in todo:
        real = dataclasses.replace(opts, seed=args.seed + i)
        mine = None if by_real else comm
        out = (extend(maps, real, progress=verbose, timings=t, comm=mine) if args.fwhm_out == 12.0
               else extend_chain(maps, [m for m, _ in steps], real, progress=verbose, timings=t,
                                 comm=mine))
        if out is None:
            continue
        last = dataclasses.replace(steps[-1][1], seed=real.seed)
        meta = output_header(last, stokes=stokes, unit=unit, freq_ghz=freq)
        if len(steps) > 1:  # the stages, first to last
            meta["CHAIN"] = (">".join(os.path.basename(str(m)) for m, _ in steps)[:68],
                             "forse stages, first to last")
        # FITS values are printable ASCII on one card: a name like 'map ☃.fits' is stored escaped
        meta = {k: ascii_text(v)[:68] if isinstance(v, str) else v for k, v in meta.items()}
        meta["INPUT"] = ascii_text(os.path.basename(args.input))[:60]
        if header.get("COORDSYS"):
            meta["COORDSYS"] = header["COORDSYS"]
        with t("write"):
            io.write_map(names[i], out, dtype=np.float64 if args.float64 else np.float32,
                         overwrite=args.overwrite, header=meta)
        written.append(names[i])
    if verbose:
        print("timing:\n" + t.table())
    for name in written:  # each rank names what it wrote, last
        print(f"wrote {name}")
    return 0


def _units(args, head):
    """(input unit, output unit, reference frequency) from --unit, --freq and the input's
    header (TUNIT1, REFFREQ); refuses a conversion whose frequency is unknown."""
    from ..data import units

    freq = args.freq if args.freq is not None else head.get("REFFREQ")
    freq = None if freq is None else float(freq)
    given = str(head.get("TUNIT1", "")).strip() or None
    if given and args.unit and freq is None and \
            units.canonical(given, "the input's TUNIT1")[0] != units.canonical(args.unit)[0]:
        raise ValueError(f"--unit {args.unit} converts the input from {given} (its TUNIT1): "
                         "give its reference frequency with --freq GHZ")
    return given, args.unit or given, freq
