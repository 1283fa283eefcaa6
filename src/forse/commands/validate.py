"""``forse validate MAP [--reference TRUE_MAP] [--baseline gaussian|FILE] [--mask FILE] -o DIR``."""
from __future__ import annotations

import json

from . import _flags


def register(subparsers, name):
    p = subparsers.add_parser(
        name, help="measure a map's small scales against a reference and a Gaussian baseline",
        description="Minkowski functionals, patch and masked full-sky spectra, one-point statistics "
                    "and a seam check of MAP (FITS, T or TQU) against --reference and --baseline; "
                    "writes DIR/summary.json and DIR/report.html.")
    p.add_argument("map", help="FITS map to validate (T or TQU, RING)")
    p.add_argument("--reference", help="true map at the same resolution")
    p.add_argument("--baseline", help="'gaussian' (built from MAP smoothed to --fwhm-lr) or a FITS map")
    p.add_argument("--mask", help="FITS mask (1 = use): selects validation patches, masks spectra")
    p.add_argument("--lowres", help="the low-resolution input map (default: MAP smoothed to --fwhm-lr)")
    p.add_argument("-o", "--output", "--out-dir", dest="output", required=True,
                   help="output folder (summary.json, report.html)")
    p.add_argument("--stokes", choices=["T", "TQU"], help="fields to validate (default: all of MAP)")
    p.add_argument("--fwhm-lr", type=float, default=80.0, help="low-resolution beam, arcmin (80)")
    p.add_argument("--fwhm-hr", type=float, default=12.0, help="map beam, arcmin (12)")
    p.add_argument("--patches", help="validation patch centres: 'lon,lat;lon,lat;...' in degrees, "
                                     "or 'test' / 'test:MODEL' (the test-region centres recorded "
                                     "in a model card) (default: 32 patches at |b| = 40, 60 deg)")
    p.add_argument("--npix", type=int, default=320, help="patch side in pixels (320)")
    p.add_argument("--pixel-arcmin", type=float, default=3.75, help="patch pixel size (3.75)")
    p.add_argument("--lmax", type=int, help="full-sky spectra lmax (default min(3 nside - 1, 2048))")
    p.add_argument("--apodize-deg", type=float, default=2.0, help="mask apodization (2 deg)")
    p.add_argument("--seam-tiling", default="20,5",
                   help="'size_deg,overlap_deg' of the tiling MAP was made with, or 'none' (20,5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian baseline (0)")
    p.add_argument("--reference-seed", type=int,
                   help="synthetic-sky seed of --reference (default: its SEED header, written by "
                        "`forse sky`); a seed the bundled models were trained on gives a warning")
    p.add_argument("--no-figures", action="store_true", help="write summary.json only")
    _flags.quiet(p, "no progress bar")
    _flags.backend(p)
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty output folder")
    return p


def _pairs(text, name):
    try:
        pts = [tuple(float(v) for v in item.split(",")) for item in text.split(";") if item.strip()]
    except ValueError:
        pts = []
    if not pts or any(len(p) != 2 for p in pts):
        raise ValueError(f"--{name} must look like 'lon,lat;lon,lat' in degrees, got {text!r}")
    return pts


def _tiling(text):
    """--seam-tiling 'size_deg,overlap_deg' (or 'none') -> (size, overlap) or None."""
    if text.strip().lower() == "none":
        return None
    try:
        size, overlap = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--seam-tiling must look like 'size_deg,overlap_deg' (e.g. '20,5') or "
                         f"'none', got {text!r}") from None
    if not 0 < size < 90 or not 0 <= overlap < size:
        raise ValueError(f"--seam-tiling needs 0 < size < 90 and 0 <= overlap < size degrees, "
                         f"got {text!r}")
    return size, overlap


def check(args):
    """Every flag, the input files and the output folder, before any work."""
    from .. import _checks as c

    _flags.check_backend(args)
    c.input_file(args.map, "MAP")
    for flag in ("reference", "mask", "lowres"):
        if getattr(args, flag):
            c.input_file(getattr(args, flag), f"--{flag}")
    if args.baseline and args.baseline.lower() != "gaussian":
        c.input_file(args.baseline, "--baseline")
    c.positive(args.fwhm_hr, "--fwhm-hr", hi=6000.0)
    c.positive(args.fwhm_lr, "--fwhm-lr", hi=6000.0)
    if args.fwhm_lr <= args.fwhm_hr:
        raise ValueError(f"--fwhm-lr ({args.fwhm_lr:g}) must be larger than --fwhm-hr "
                         f"({args.fwhm_hr:g})")
    c.integer(args.npix, "--npix", 8, 8192)
    c.positive(args.pixel_arcmin, "--pixel-arcmin", hi=600.0)
    c.seed(args.seed, "--seed")
    if args.apodize_deg < 0:
        raise ValueError(f"--apodize-deg must be >= 0, got {args.apodize_deg:g}")
    if args.lmax is not None:
        from ..data.io import _healpix_hdu

        nside = int(_healpix_hdu(args.map)[1]["NSIDE"])
        c.integer(args.lmax, "--lmax", 2, 4 * nside)
    patches = None
    if args.patches and args.patches.split(":")[0].strip() == "test":
        patches = args.patches.strip()
    elif args.patches:
        pts = _pairs(args.patches, "patches")
        patches = ([p[0] for p in pts], [p[1] for p in pts])
    seam = _tiling(args.seam_tiling)
    c.output_folder(args.output, "--output (--out-dir)", overwrite=args.overwrite, nbytes=2**24)
    return patches, seam


def _header_seed(path):
    """The SEED keyword of a HEALPix FITS map (``forse sky`` writes it), or None."""
    from ..data.io import _healpix_hdu

    try:
        seed = _healpix_hdu(path)[1].get("SEED")
    except (OSError, ValueError):
        return None  # validate() reports an unreadable file
    try:
        return None if seed is None else int(seed)
    except (TypeError, ValueError):
        return None


def run(args):
    patches, seam = check(args)
    from ..stats.validate import validate

    ref_seed = args.reference_seed
    if ref_seed is None and args.reference:
        ref_seed = _header_seed(args.reference)
    s = validate(args.map, reference=args.reference, baseline=args.baseline, mask=args.mask,
                 out_dir=args.output, lowres=args.lowres, stokes=args.stokes,
                 fwhm_lr_arcmin=args.fwhm_lr, fwhm_hr_arcmin=args.fwhm_hr, patches=patches,
                 npix=args.npix, pixel_arcmin=args.pixel_arcmin, lmax=args.lmax,
                 apodize_deg=args.apodize_deg, seam_tiling=seam, seed=args.seed,
                 figures=not args.no_figures, progress=not args.quiet,
                 reference_seed=ref_seed, backend=args.backend)
    h = s["headline"]
    print(json.dumps({"out_dir": args.output, "overlap": s["minkowski"]["overlap"],
                      "ceiling": s["minkowski"]["ceiling"], "held_out": s["held_out"],
                      "better_than_baseline": f"{h['n_better']} of {h['n_rows']}",
                      "patches_used": s["patches"]["n_used"],
                      "time_s": s["timings_s"]["total"]}, indent=1))
    if args.output is not None:
        import os

        wrote = ["report.html"] * (not args.no_figures) + ["summary.json"]
        print("wrote " + ", ".join(os.path.join(args.output, w) for w in wrote))
    return 0
