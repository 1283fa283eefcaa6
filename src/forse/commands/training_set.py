"""``forse training-set``: cut (low-, high-resolution) patch pairs from a map into train /
validation / test HDF5 files split by sky region (no patch of one split overlaps another's),
with the ForSE target T_hr / T_lr and the Gaussian-baseline patch. Without --input, the
built-in synthetic dust sky is used (--nside, --seed)."""
from __future__ import annotations

from . import _flags

EXAMPLE = """examples:
  forse training-set -o ts/ --nside 2048 -n 1000                  # synthetic sky, 320^2 at 3.75'
  forse training-set -o ts64/ --nside 2048 -n 5000 --npix 64      # 4 deg patches
  forse training-set -i gnilc_12arcmin.fits --variance var.fits -o ts/ --fwhm-lr 60
  forse training-set -o tsqu/ --stokes QU -n 500 --npy            # Q/U inputs, T targets
  forse training-set -o tstqu/ --stokes TQU -n 500                # T, Q, U per position (joint)
"""


def register(sub, name):
    import argparse

    from ..data.sky import SKY_VERSION

    p = sub.add_parser(name, help="build train/validation/test patch sets",
                       description=__doc__, epilog=EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output folder (train.h5, ...)")
    p.add_argument("-i", "--input", help="high-resolution HEALPix FITS map (T or T,Q,U); "
                   "default: the synthetic dust sky")
    p.add_argument("--lr-input", help="low-resolution map (default: --input smoothed to --fwhm-lr)")
    p.add_argument("--variance", help="noise-variance FITS for the S/N mask (default with the "
                   "synthetic sky: its noise_variance; otherwise no S/N cut)")
    p.add_argument("--mask", help="0/1 mask FITS to use instead of the S/N + latitude mask")
    p.add_argument("--nside", type=int, default=2048, help="Nside of the synthetic sky (2048)")
    p.add_argument("--seed", type=int, default=0, help="seed (sky, centres, split, baseline)")
    p.add_argument("--sky-version", type=int, choices=(1, 2), default=SKY_VERSION,
                   help="version of the built-in sky (default %(default)s; 1 = the sky before 2026-12-03, "
                        "kept for old results)")
    p.add_argument("-n", "--n-patches", type=int, default=1000,
                   help="patch positions over the three splits (default 1000)")
    p.add_argument("--npix", type=int, default=320, help="patch side in pixels (320)")
    p.add_argument("--pixel", type=float, default=3.75, metavar="ARCMIN", help="pixel size (3.75)")
    p.add_argument("--fwhm-hr", type=float, default=12.0, metavar="ARCMIN", help="(12)")
    p.add_argument("--fwhm-lr", type=float, default=80.0, metavar="ARCMIN", help="(80)")
    p.add_argument("--stokes", choices=("T", "Q", "U", "QU", "TQU"), default="T",
                   help="low-resolution inputs; targets are always T_hr/T_lr; TQU: T, Q, U entries per "
                        "position, for the joint generator (default T)")
    p.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                   metavar=("TRAIN", "VAL", "TEST"), help="split shares (0.8 0.1 0.1)")
    p.add_argument("--min-coverage", type=float, default=0.9,
                   help="smallest fraction of a patch inside the mask (0.9)")
    p.add_argument("--snr", type=float, default=8.0, help="S/N threshold of the mask (8)")
    p.add_argument("--bmin", type=float, default=10.0, metavar="DEG", help="|b| cut (10)")
    p.add_argument("--npy", action="store_true",
                   help="also export each split to ForSE's (2, N, npix, npix) .npy layout")
    _flags.backend(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    _flags.quiet(p, "no progress bar")
    return p


def check(args):
    """Every argument, the input files and the output folder, before any work."""
    from pathlib import Path

    from .. import _checks as c

    _flags.check_backend(args)
    for flag, path in (("--input", args.input), ("--lr-input", args.lr_input),
                       ("--variance", args.variance), ("--mask", args.mask)):
        if path:
            c.input_file(path, flag)
    if args.lr_input and not args.input:
        raise ValueError("--lr-input needs --input (the high-resolution map it goes with)")
    c.nside(args.nside, "--nside")
    c.seed(args.seed, "--seed")
    c.integer(args.n_patches, "--n-patches", 1, 10_000_000)
    c.integer(args.npix, "--npix", 8, 8192)
    c.positive(args.pixel, "--pixel", hi=600.0)
    if args.npix * args.pixel > 90 * 60:
        raise ValueError(f"--npix {args.npix} x --pixel {args.pixel:g}' is a patch wider than 90 "
                         "degrees; expected a smaller patch")
    c.positive(args.fwhm_hr, "--fwhm-hr", hi=6000.0)
    c.positive(args.fwhm_lr, "--fwhm-lr", hi=6000.0)
    if args.fwhm_lr <= args.fwhm_hr:
        raise ValueError(f"--fwhm-lr ({args.fwhm_lr:g}) must be larger than --fwhm-hr "
                         f"({args.fwhm_hr:g})")
    if min(args.fractions) < 0 or sum(args.fractions) <= 0:
        raise ValueError(f"--fractions must be three non-negative shares, got {args.fractions}")
    from ..data.training_set import split_counts

    split_counts(args.n_patches, args.fractions, "--n-patches", "--fractions")
    if not 0 < args.min_coverage <= 1:
        raise ValueError(f"--min-coverage must be in (0, 1], got {args.min_coverage:g}")
    if not 0 <= args.bmin < 90:
        raise ValueError(f"--bmin must be in [0, 90) degrees, got {args.bmin:g}")
    if not 0 <= args.snr < 1e9:
        raise ValueError(f"--snr must be a number >= 0, got {args.snr:g}")
    per = args.npix ** 2 * 4 * 4 * len(args.stokes)  # 4 float32 datasets per entry
    c.output_folder(args.output, "--output", overwrite=True, nbytes=args.n_patches * per)
    if not args.overwrite and Path(args.output).is_dir():
        for split in ("train", "validation", "test"):
            for ext in (".h5", ".npy") if args.npy else (".h5",):
                c.output_file(Path(args.output) / f"{split}{ext}", "--output", overwrite=False)


def run(args):
    import os

    import numpy as np

    check(args)

    from .._log import Timings
    from ..data import io
    from ..data.masks import latitude_mask, training_mask, valid_pixels
    from ..data.training_set import build, to_forse_npy

    clock = Timings()
    need_pol = args.stokes != "T"
    if args.input:
        hr, head = io.read_map(args.input, field=(0, 1, 2) if need_pol else 0)
        sky = {"sky": os.path.basename(args.input)}
        if "SEED" in head:  # written by `forse sky`: the synthetic sky's seed
            sky["sky_seed"] = int(head["SEED"])
            sky["sky_version"] = int(head.get("SKYVER", 1))  # files before SKYVER: version 1
        lr = io.read_map(args.lr_input, field=(0, 1, 2) if need_pol else 0)[0] if args.lr_input else None
        variance = io.read_map(args.variance, field=0)[0] if args.variance else None
    else:
        from ..data.sky import noise_variance, synthetic_dust

        hr = synthetic_dust(args.nside, seed=args.seed, stokes="TQU" if need_pol else "T",
                            fwhm_arcmin=args.fwhm_hr, version=args.sky_version)
        lr = None
        sky = {"sky": "synthetic", "sky_seed": int(args.seed), "sky_version": args.sky_version}
        variance = noise_variance(args.nside, "T", fwhm_arcmin=args.fwhm_hr)
    clock.lap("read" if args.input else "sky")
    if args.mask:
        mask = io.read_map(args.mask, field=0)[0] > 0.5
    elif variance is not None:
        mask = training_mask(hr, variance, snr=args.snr, bmin_deg=args.bmin)
    else:
        t = hr if hr.ndim == 1 else hr[0]
        nside = int(np.sqrt(t.size / 12))
        mask = valid_pixels(t) & (latitude_mask(nside, args.bmin) if args.bmin > 0 else True)
    del variance  # 1.6 GB at Nside 4096: not held through the build
    clock.lap("mask")
    paths = build(hr, args.output, lr_map=lr, mask=mask, fwhm_hr_arcmin=args.fwhm_hr,
                  fwhm_lr_arcmin=args.fwhm_lr, n_patches=args.n_patches, npix=args.npix,
                  pixel_arcmin=args.pixel, fractions=tuple(args.fractions),
                  min_coverage=args.min_coverage, stokes=args.stokes, seed=args.seed,
                  overwrite=args.overwrite, progress=not args.quiet, backend=args.backend,
                  attrs=sky)
    clock.lap("build")
    if args.npy:
        for path in paths.values():
            to_forse_npy(path, path.with_suffix(".npy"), overwrite=args.overwrite)
        clock.lap("npy")
    timing = dict(clock, total=sum(clock.values()))
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    for path in paths.values():
        print(f"wrote {path}" + (f" and {path.with_suffix('.npy')}" if args.npy else ""))
    return 0
