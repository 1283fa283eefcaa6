"""The built-in sky against Planck's dust statistics, and its generation time.

For each sky version and seed: ``forse.skystats.spectra_stats`` (slopes, EE/BB and r_TE at the
pivot ell = 80 from fits over ell 40-600 at |b| > 30°, as Planck 2018 XI), ``polarization_stats``
(p and the angle dispersion S at 80', as Planck 2018 XII) and the skewness of the small-scale
ratio I_12'/I_80' at |b| > 20°. Then the wall and CPU time of ``synthetic_dust`` (T and TQU) at
each --time-nside, one run each, machine quiet.

Example (what bench/results/results_sky_stats.json holds):
  python bench/bench_sky.py --nside 2048 --seeds 0 1 2 --versions 1 2 --time-nside 2048 4096 \
      --json bench/results/results_sky_stats.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402


def stats(nside, seed, version):
    import numpy as np
    from scipy.stats import skew

    from forse.masks import latitude_mask
    from forse.sky import synthetic_dust
    from forse.skystats import polarization_stats, spectra_stats
    from forse.smoothing import smooth

    m = synthetic_dust(nside, seed=seed, stokes="TQU", version=version)
    out = {"seed": seed, **spectra_stats(m), **polarization_stats(m)}
    high = latitude_mask(nside, 20.0)
    out["skew_ratio_12_80"] = float(skew((m[0] / smooth(m[0], 80.0))[high]))
    out["I_median_b_gt_60"] = float(np.median(m[0][latitude_mask(nside, 60.0)]))
    return out


def timing(nside, version, stokes):
    from forse.sky import synthetic_dust

    t, c = time.perf_counter(), time.process_time()
    synthetic_dust(nside, seed=0, stokes=stokes, version=version)
    return {"nside": nside, "version": version, "stokes": stokes,
            "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def summary(runs):
    import numpy as np

    keys = [k for k, v in runs[0].items() if isinstance(v, float)]
    return {k: {"mean": float(np.mean([r[k] for r in runs])),
                "min": float(np.min([r[k] for r in runs])),
                "max": float(np.max([r[k] for r in runs]))} for k in keys}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nside", type=int, default=1024, help="Nside of the statistics")
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2],
                   help="sky seeds of the statistics (none: only the timing)")
    p.add_argument("--versions", type=int, nargs="+", default=[1, 2])
    p.add_argument("--time-nside", type=int, nargs="*", default=[], help="Nsides to time")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    from forse.skystats import PLANCK

    res = {"command": "python bench/bench_sky.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine(), "planck": PLANCK, "nside": args.nside, "versions": {}}
    for v in args.versions if args.seeds else []:
        runs = [stats(args.nside, s, v) for s in args.seeds]
        res["versions"][str(v)] = {"runs": runs, "summary": summary(runs)}
        print(f"version {v}: " + ", ".join(f"{k} {d['mean']:.3f}" for k, d in
                                           res["versions"][str(v)]["summary"].items()), flush=True)
    res["timing"] = [timing(n, v, s) for n in args.time_nside for v in args.versions
                     for s in ("T", "TQU")]
    for t in res["timing"]:
        print(t, flush=True)
    res["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
