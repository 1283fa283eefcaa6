"""``forse mask``: training mask from a map and its noise variance: S/N > --snr, smoothed with
a --smooth-fwhm beam and cut at --cut, and |b| > --bmin; UNSEEN pixels are always excluded.
Writes a 0/1 HEALPix map (RING)."""
from __future__ import annotations

EXAMPLE = """examples:
  forse sky -o dust.fits --nside 512 --variance var.fits
  forse mask dust.fits var.fits -o mask.fits
  forse mask dust.fits var.fits -o mask.fits --snr 20 --bmin 20 --smooth-fwhm 2 --cut 0.95
"""


def register(sub, name):
    import argparse

    p = sub.add_parser(name, help="S/N + latitude training mask", description=__doc__,
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("map", help="HEALPix FITS map (its first field, intensity, is used)")
    p.add_argument("variance", help="HEALPix FITS noise-variance map, same Nside")
    p.add_argument("-o", "--output", required=True, help="output mask FITS (0/1)")
    p.add_argument("--snr", type=float, default=8.0, help="S/N threshold (default 8)")
    p.add_argument("--smooth-fwhm", type=float, default=1.0, metavar="DEG",
                   help="FWHM of the beam applied to the S/N mask (default 1)")
    p.add_argument("--cut", type=float, default=0.9, help="threshold on the smoothed mask (0.9)")
    p.add_argument("--bmin", type=float, default=10.0, metavar="DEG",
                   help="keep |b| > BMIN (default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return p


def check(args):
    from .. import _checks as c

    for flag, path in (("MAP", args.map), ("VARIANCE", args.variance)):
        c.input_file(path, flag)
    if not 0 <= args.snr < 1e9:
        raise ValueError(f"--snr must be a number >= 0, got {args.snr:g}")
    if not 0 <= args.smooth_fwhm <= 180:
        raise ValueError(f"--smooth-fwhm must be in [0, 180] degrees, got {args.smooth_fwhm:g}")
    if not 0 < args.cut < 1:
        raise ValueError(f"--cut must be in (0, 1), got {args.cut:g}")
    if not 0 <= args.bmin < 90:
        raise ValueError(f"--bmin must be in [0, 90) degrees, got {args.bmin:g}")
    c.output_file(args.output, "--output", overwrite=args.overwrite,
                  inputs=[args.map, args.variance])


def run(args):
    import numpy as np

    check(args)
    from ..data import io
    from ..data.masks import training_mask

    m, _ = io.read_map(args.map, field=0)
    v, _ = io.read_map(args.variance, field=0)
    mask = training_mask(m, v, snr=args.snr, smooth_fwhm_deg=args.smooth_fwhm, cut=args.cut,
                         bmin_deg=args.bmin)
    io.write_map(args.output, mask.astype(np.float32), overwrite=args.overwrite,
                 header={"COORDSYS": "G", "SNR": args.snr, "SMOOTHDG": args.smooth_fwhm,
                         "CUT": args.cut, "BMIN": args.bmin})
    print(f"wrote {args.output}: {mask.mean():.1%} of the sky kept")
    return 0
