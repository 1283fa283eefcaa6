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

    from ..data.sky import SKY_VERSION

    p = sub.add_parser(name, help="write the synthetic dust sky (GNILC stand-in)",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output HEALPix FITS file")
    p.add_argument("--nside", type=int, default=2048,
                   help="HEALPix Nside, a power of two up to 8192 (default 2048)")
    p.add_argument("--stokes", choices=("T", "TQU"), default="T", help="T or TQU (default T)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sky-version", type=int, choices=(1, 2), default=SKY_VERSION,
                   help="version of the built-in sky (default %(default)s; 1 = the sky before 2026-12-03, "
                        "kept for old results)")
    p.add_argument("--fwhm", type=float, default=12.0, metavar="ARCMIN",
                   help="beam FWHM of the map (default 12)")
    p.add_argument("--variance", metavar="FILE",
                   help="also write the matching noise-variance map (uK_CMB^2) to FILE")
    p.add_argument("--depth", type=float, default=60.0, metavar="UK_ARCMIN",
                   help="noise depth of the variance map in uK.arcmin (default 60)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    return p


def check(args):
    """Every argument and both outputs, before the sky is drawn."""
    import os

    from .. import _checks as c

    c.nside(args.nside, "--nside")
    c.map_memory(args.nside, len(args.stokes), "--nside")
    c.seed(args.seed, "--seed")
    c.positive(args.fwhm, "--fwhm", hi=6000.0)
    c.positive(args.depth, "--depth", hi=1e9)
    if args.variance and os.path.abspath(args.variance) == os.path.abspath(args.output):
        raise ValueError(f"--variance {args.variance!r} is also --output; give two file names")
    nbytes = 12 * args.nside ** 2 * len(args.stokes) * 8
    for flag, path in (("--output", args.output), ("--variance", args.variance)):
        if path:
            c.output_file(path, flag, overwrite=args.overwrite, nbytes=nbytes)


def run(args):
    import time

    check(args)
    from ..data import io
    from ..data.sky import noise_variance, synthetic_dust
    from ..data.units import BUILTIN_FREQ_GHZ, BUILTIN_UNIT

    t0 = time.perf_counter()
    m = synthetic_dust(args.nside, seed=args.seed, stokes=args.stokes, fwhm_arcmin=args.fwhm,
                       version=args.sky_version)
    hdr = {"UNIT": BUILTIN_UNIT, "REFFREQ": (BUILTIN_FREQ_GHZ, "[GHz] reference frequency"),
           "COORDSYS": "G", "FWHM_AM": args.fwhm, "SEED": args.seed,
           "SKYVER": args.sky_version,
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
