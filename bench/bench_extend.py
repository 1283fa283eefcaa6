"""End-to-end timing of ``forse extend`` on the built-in synthetic sky (held-out seed 1 by
default; the input at exactly 80'), plus the checks to record: large scales (the input brought
to the 12' beam below the hand-over, ell < 217), peak memory, seams, and the polarization
statistics (EE/BB, TE correlation) of the output small scales for each polarization mode.

    python bench/bench_extend.py --nside 2048 --stokes T   --json bench/out/extend_T.json
    python bench/bench_extend.py --nside 2048 --stokes TQU --json bench/out/extend_TQU.json

The peak RSS (VmHWM) is reset after the sky is made, and the truth is reduced to what the
checks need and dropped, so the reported peak is extend's own, with its input map held (as in
``forse extend``) and the float32 write included. The sky generation and the 80'
smoothing are the input's preparation and are timed apart from extend.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import healpy as hp
import numpy as np

from _common import machine, reset_peak_rss  # bench/ is the script folder: on sys.path


def small_scale_pol_stats(ss, lmin=300, lmax=1000):
    """EE/BB and the TE correlation of a TQU small-scale map over a multipole band."""
    cl = hp.anafast(ss, lmax=lmax, iter=0)
    tt, ee, bb, te = cl[0], cl[1], cl[2], cl[3]
    band = slice(lmin, lmax + 1)
    ell = np.arange(lmax + 1)[band]
    w = 2 * ell + 1
    s = {k: float(np.sum(w * v[band])) for k, v in (("tt", tt), ("ee", ee), ("bb", bb), ("te", te))}
    return {"ee_over_bb": s["ee"] / s["bb"], "te_corr": s["te"] / np.sqrt(s["tt"] * s["ee"])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--stokes", choices=("T", "TQU"), default="T")
    ap.add_argument("--pol-mode", choices=("ratio", "qu", "p-angle", "joint"), default="joint")
    ap.add_argument("--layout", choices=("regular", "adaptive"), default="regular")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--blend", choices=("quadrature", "mean"), default="quadrature")
    ap.add_argument("--calibration", choices=("auto", "split", "spectra", "intensity", "none"),
                    default="auto")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from forse.extend import Timings, extend, peak_rss_gb
    from forse.sky import synthetic_dust
    from forse.smoothing import resmooth

    t0 = time.perf_counter()
    truth = synthetic_dust(args.nside, seed=args.seed, stokes=args.stokes, fwhm_arcmin=12.0)
    # float32, as `forse extend` reads its input
    lr = resmooth(truth, 12.0, 80.0).astype(np.float32)
    prep = time.perf_counter() - t0
    # what the checks need of the truth, then drop it: the peak memory is extend's own (+ lr)
    truths = {}
    if args.stokes == "TQU":
        truths["pol"] = small_scale_pol_stats(np.atleast_2d(truth) - np.atleast_2d(lr))
    ss2_path = f"/tmp/forse_bench_ss2_{os.getpid()}.npy"  # on disk: not in extend's peak
    np.save(ss2_path, ((np.atleast_2d(truth)[0] - np.atleast_2d(lr)[0]) ** 2).astype(np.float32))
    del truth
    reset_peak_rss()
    t = Timings()
    t1 = time.perf_counter()
    c1 = time.process_time()
    out = extend(lr, input_fwhm_arcmin=80.0, nside_out=args.nside, seed=args.seed,
                 pol_mode=args.pol_mode, layout=args.layout, timings=t, progress=False, comm=None,
                 blend=args.blend,
                 calibrate=None if args.calibration == "none" else args.calibration)
    wall = time.perf_counter() - t1
    cpu = time.process_time() - c1
    # writing is part of the user's run: time it too (float32 FITS, atomic)
    from forse import io

    path = f"/tmp/forse_bench_extend_{os.getpid()}.fits"
    with t("write"):
        io.write_map(path, out, dtype=np.float32, overwrite=True)
    os.unlink(path)
    wall += t["write"]
    rss_gb = peak_rss_gb()

    maps = np.atleast_2d(out)
    lrs = np.atleast_2d(lr)
    res = {"command": "python bench/bench_extend.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if v is not None and v is not False),
           "machine": machine(), "nside": args.nside, "stokes": args.stokes,
           "pol_mode": args.pol_mode, "layout": args.layout,
           "prepare_sky_s": round(prep, 2), "extend_wall_s": round(wall, 2),
           "extend_cpu_s": round(cpu, 2),
           "stages_s": {k: round(v, 2) for k, v in t.items()}, "peak_rss_gb": round(rss_gb, 2),
           "stage_new_peak_gb": {k: round(v, 2) for k, v in t.peaks.items()},
           "load_average": os.getloadavg()}
    # large scales: the output is the input brought from 80' to 12' below the hand-over (217)
    cl_in = hp.anafast(lrs[0], lmax=216, iter=1)
    cl_out = hp.anafast(maps[0], lmax=216, iter=1)
    b = (hp.gauss_beam(np.radians(12 / 60), lmax=216) / hp.gauss_beam(np.radians(80 / 60), lmax=216))
    res["large_scale_max_rel_dev_ell_2_216"] = float(np.max(np.abs(
        cl_out[2:] / (cl_in[2:] * b[2:] ** 2) - 1)))
    if args.stokes == "TQU":
        res["small_scale_pol"] = small_scale_pol_stats(maps - lrs)
        res["truth_small_scale_pol"] = truths["pol"]
    try:
        from forse.validate import seam_check
    except ImportError:
        res["seams"] = "forse.validate.seam_check not available"
    else:
        # power of the output small scales relative to the truth's, overlap zones vs centres
        ss_out = (maps[0] - lrs[0]) ** 2
        res["seams"] = seam_check(ss_out, np.load(ss2_path))[0]
    os.unlink(ss2_path)
    print(json.dumps(res, indent=1))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
