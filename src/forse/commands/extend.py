"""``forse extend``: add generated 12' small scales to a low-resolution T or TQU map."""
from __future__ import annotations

import os

import numpy as np

EXAMPLE = """example:
  forse extend dust_80arcmin.fits -o dust_12arcmin.fits --seed 1
  forse extend dust_TQU_80arcmin.fits -o dust.fits --realizations 10 --pol-mode p-angle
  mpiexec -n 4 forse extend dust.fits -o out.fits --realizations 8   # realizations over ranks
"""


def register(sub, name):
    import argparse

    from .. import units

    p = sub.add_parser(name, help="extend a low-resolution map with generated small scales",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="HEALPix FITS map: T, or T,Q,U (any Nside, RING or NEST)")
    p.add_argument("-o", "--output", required=True,
                   help="output FITS; with --realizations N > 1, files OUTPUT_r000.fits ...")
    p.add_argument("--input-fwhm", type=float, default=80.0, metavar="ARCMIN",
                   help="beam FWHM of the input map (default 80)")
    p.add_argument("--nside", type=int, default=2048, help="output Nside (default 2048)")
    p.add_argument("--model", default=None,
                   help="bundled model name or .keras path (default: the bundled dust models)")
    p.add_argument("--layout", choices=("regular", "adaptive"), default="regular")
    p.add_argument("--size", type=float, default=20.0, metavar="DEG", help="patch size (20)")
    p.add_argument("--overlap", type=float, default=5.0, metavar="DEG", help="patch overlap (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of realization 0 (default 0)")
    p.add_argument("--realizations", type=int, default=1, help="number of realizations (seeds "
                   "seed, seed+1, ...)")
    p.add_argument("--pol-mode", choices=("ratio", "qu", "p-angle"), default="ratio",
                   help="Q/U small scales: the intensity's small-scale ratio on the large-scale "
                        "Q/U (ratio, default), the Q and U generators (qu, ForSE) or P from the "
                        "T generator with the large-scale angle (p-angle)")
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
                        "split for --pol-mode ratio, spectra otherwise")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar or timing table")
    return p


def output_names(output: str, n: int) -> list[str]:
    if n == 1:
        return [output]
    root, ext = os.path.splitext(output)
    if ext == ".gz":
        root, ext2 = os.path.splitext(root)
        ext = ext2 + ext
    return [f"{root}_r{i:03d}{ext or '.fits'}" for i in range(n)]


def run(args):
    from .. import io, parallel
    from ..extend import Timings, extend, output_header

    if args.realizations < 1:
        raise ValueError(f"--realizations must be >= 1, got {args.realizations}")
    names = output_names(args.output, args.realizations)
    if not args.overwrite:
        for name in names:
            if os.path.exists(name):
                raise FileExistsError(f"output {name!r} exists; pass --overwrite to replace it")
    comm = parallel.world()
    # Many realizations: whole realizations per rank; few: patches of each realization over ranks.
    by_real = comm is not None and args.realizations >= parallel.size(comm)
    todo = parallel.my_share(args.realizations, comm) if by_real else range(args.realizations)
    verbose = not args.quiet and (parallel.rank(comm) == 0 or by_real)
    t = Timings()
    with t("read"):
        maps, header = io.read_map(args.input)
    unit, freq = _units(maps, header, args)
    stokes = "TQU" if maps.ndim == 2 and len(maps) == 3 else "T"
    written = []
    for i in todo:
        seed = args.seed + i
        out = extend(maps, input_fwhm_arcmin=args.input_fwhm, nside_out=args.nside,
                     model=args.model, layout=args.layout, size_deg=args.size,
                     overlap_deg=args.overlap, seed=seed, stochastic=not args.deterministic,
                     pol_mode=args.pol_mode, batch_size=args.batch_size, progress=verbose,
                     blend=args.blend,
                     calibrate=None if args.calibration == "none" else args.calibration,
                     timings=t, comm=None if by_real else comm)
        if out is None:
            continue
        meta = output_header(args.model, seed=seed, input_fwhm_arcmin=args.input_fwhm,
                             nside_out=args.nside, pol_mode=args.pol_mode, layout=args.layout,
                             stochastic=not args.deterministic, calibrate=args.calibration,
                             blend=args.blend, stokes=stokes, unit=unit, freq_ghz=freq)
        meta["INPUT"] = os.path.basename(args.input)[:60]
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


def _units(maps, header, args):
    """The output's unit and reference frequency; converts ``maps`` in place when --unit asks
    for another unit than the input header's."""
    from .. import units

    freq = args.freq if args.freq is not None else header.get("REFFREQ")
    freq = None if freq is None else float(freq)
    given = header.get("UNIT")
    if args.unit is None or given is None:
        return args.unit or given, freq
    if units.canonical(given, "input unit") != units.canonical(args.unit, "--unit"):
        if freq is None:
            raise ValueError(f"--unit {args.unit} converts the input from {given} (its TUNIT1): "
                             "give its reference frequency with --freq GHZ")
        units.convert(maps, given, args.unit, freq)
    return args.unit, freq
