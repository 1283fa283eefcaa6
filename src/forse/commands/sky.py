"""``forse sky``: write the built-in synthetic dust sky (a stand-in for Planck GNILC 353 GHz
dust, uK_CMB, Galactic, RING), and optionally its matching noise-variance map."""
from __future__ import annotations

EXAMPLE = """examples:
  forse sky -o dust_T_2048.fits                         # Nside 2048 intensity at 12'
  forse sky -o dust_TQU_512.fits --nside 512 --stokes TQU --seed 3 --variance var_512.fits
  forse sky -o dust_80.fits --nside 256 --fwhm 80        # already at 80' resolution
"""


def register(sub, name):
    import argparse

    p = sub.add_parser(name, help="write the synthetic dust sky (GNILC stand-in)",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output HEALPix FITS file")
    p.add_argument("--nside", type=int, default=2048, help="HEALPix Nside (default 2048)")
    p.add_argument("--stokes", choices=("T", "TQU"), default="T", help="T or TQU (default T)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fwhm", type=float, default=12.0, metavar="ARCMIN",
                   help="beam FWHM of the map (default 12)")
    p.add_argument("--variance", metavar="FILE",
                   help="also write the matching noise-variance map (uK_CMB^2) to FILE")
    p.add_argument("--depth", type=float, default=60.0, metavar="UK_ARCMIN",
                   help="noise depth of the variance map in uK.arcmin (default 60)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    return p


def run(args):
    import time

    from .. import io
    from ..sky import noise_variance, synthetic_dust
    from ..units import BUILTIN_FREQ_GHZ, BUILTIN_UNIT

    for path in filter(None, (args.output, args.variance)):
        if not args.overwrite:
            import os
            if os.path.exists(path):
                raise FileExistsError(f"{path!r} exists; pass --overwrite to replace it")
    t0 = time.perf_counter()
    m = synthetic_dust(args.nside, seed=args.seed, stokes=args.stokes, fwhm_arcmin=args.fwhm)
    hdr = {"UNIT": BUILTIN_UNIT, "REFFREQ": (BUILTIN_FREQ_GHZ, "[GHz] reference frequency"),
           "COORDSYS": "G", "FWHM_AM": args.fwhm, "SEED": args.seed,
           "COMMENT": "forse synthetic dust (stand-in for Planck GNILC 353 GHz)"}
    io.write_map(args.output, m, overwrite=args.overwrite, header=hdr)
    print(f"wrote {args.output} ({args.stokes}, Nside {args.nside}, {args.fwhm:g}', seed "
          f"{args.seed}) in {time.perf_counter() - t0:.1f} s")
    if args.variance:
        v = noise_variance(args.nside, args.stokes, depth_uk_arcmin=args.depth,
                           fwhm_arcmin=args.fwhm)
        io.write_map(args.variance, v, overwrite=args.overwrite,
                     header={"UNIT": "uK_CMB^2", "COORDSYS": "G", "FWHM_AM": args.fwhm,
                             "DEPTH": args.depth})
        print(f"wrote {args.variance} (noise variance, depth {args.depth:g} uK.arcmin)")
    return 0
