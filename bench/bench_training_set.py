"""Benchmark: synthetic sky generation and ``forse training-set`` at Nside 2048.

Times (perf_counter, one run each unless --repeats):
  * ``synthetic_dust`` at --nside for T and (unless --skip-tqu) TQU;
  * the S/N + latitude mask (``noise_variance`` + ``training_mask``);
  * ``training_set.build`` of --n pairs of --npix^2 patches (smoothing to 80', the Gaussian
    baseline, centre selection, cutting with the projection backend, HDF5 writing), for each
    backend in --backends (the fair opponent of the C++ cut is the numpy reference).

Example:
  python bench/bench_training_set.py --nside 2048 --n 1000 --backends cpu numpy \
      --json bench/training_set.json
  python bench/bench_training_set.py --sky-stats 1024     # slopes, EE/BB, TE, skewness
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time


def machine():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0))}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info["loadavg_start"] = os.getloadavg()
    return info


def sky_stats(nside, seed=0, lmax=1000, ell_range=(30, 600)):
    """Spectral slopes, EE/BB, TE and skewness of the synthetic TQU sky (full sky and |b| > 30)."""
    import healpy as hp
    import numpy as np
    from scipy.stats import skew

    from forse.masks import latitude_mask
    from forse.sky import synthetic_dust
    from forse.smoothing import fit_power_law, smooth

    lmax = min(lmax, 3 * nside - 1)
    lo, hi = ell_range[0], min(ell_range[1], lmax - 1)
    m = synthetic_dust(nside, seed=seed, stokes="TQU")
    b = hp.gauss_beam(np.radians(12 / 60), lmax=lmax, pol=True)
    out = {"nside": nside, "seed": seed, "ell_range": [lo, hi]}
    for name, bmin in (("full_sky", 0.0), ("b_gt_30", 30.0)):
        if bmin:
            w = smooth(latitude_mask(nside, bmin).astype(float), 300.0)  # 5 deg apodization
            w = np.clip(w, 0, 1)
        else:
            w = np.ones(m.shape[1])
        cl = hp.anafast(m * w, lmax=lmax, iter=0) / np.mean(w ** 2)
        sel = slice(lo, hi + 1)
        st = {}
        for k, lab in ((0, "TT"), (1, "EE"), (2, "BB")):
            st[f"slope_{lab}"] = fit_power_law(cl[k] / b[:, min(k, 1)] ** 2, (lo, hi))[1]
        st["EE_over_BB"] = float(cl[1][sel].mean() / cl[2][sel].mean())
        st["TE_corr"] = float(np.mean(cl[3][sel] / np.sqrt(cl[0][sel] * cl[1][sel])))
        st["TE_positive_fraction"] = float(np.mean(cl[3][sel] > 0))
        out[name] = st
    high = latitude_mask(nside, 20.0)
    lr = smooth(m[0], 80.0)
    out["skew_I_b_gt_20"] = float(skew(m[0][high]))
    out["skew_hr_over_lr_b_gt_20"] = float(skew((m[0] / lr)[high]))
    p = np.hypot(m[1], m[2]) / m[0]
    out["p_median"], out["p_max"] = float(np.median(p)), float(p.max())
    out["I_median_b_gt_60"] = float(np.median(m[0][latitude_mask(nside, 60.0)]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nside", type=int, default=2048)
    p.add_argument("--n", type=int, default=1000, help="patch pairs")
    p.add_argument("--npix", type=int, default=320)
    p.add_argument("--pixel", type=float, default=3.75)
    p.add_argument("--backends", nargs="+", default=["auto"])
    p.add_argument("--skip-tqu", action="store_true", help="do not time the TQU sky")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default=None, help="folder for the sets (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--sky-stats", type=int, default=0, metavar="NSIDE",
                   help="only measure the synthetic sky's statistics at this Nside")
    args = p.parse_args(argv)
    if args.sky_stats:
        text = json.dumps({"machine": machine(), "sky_stats": sky_stats(args.sky_stats)}, indent=2)
        print(text)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")
        return

    import forse
    from forse import _dispatch
    from forse.masks import training_mask
    from forse.sky import noise_variance, synthetic_dust
    from forse.training_set import build

    res = {"machine": machine(), "forse": forse.__version__, "args": vars(args), "runs": {}}
    if not args.skip_tqu:
        t, c = time.perf_counter(), time.process_time()
        m = synthetic_dust(args.nside, seed=0, stokes="TQU")
        res["runs"]["sky_TQU_s"] = time.perf_counter() - t
        res["runs"]["sky_TQU_cpu_s"] = time.process_time() - c
        del m
    best = float("inf")
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        sky = synthetic_dust(args.nside, seed=0, stokes="T")
        best = min(best, time.perf_counter() - t)
    res["runs"]["sky_T_s"] = best
    res["runs"]["sky_T_cpu_s"] = time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    mask = training_mask(sky, noise_variance(args.nside, "T"))
    res["runs"]["mask_s"] = time.perf_counter() - t
    res["runs"]["mask_cpu_s"] = time.process_time() - c
    res["runs"]["mask_fraction"] = float(mask.mean())
    out = args.out or tempfile.mkdtemp(prefix="forse_bench_ts_")
    try:
        for backend in args.backends:
            resolved = _dispatch.resolve(backend)
            best, phases = float("inf"), None
            for _ in range(args.repeats):
                timings = {}
                t = time.perf_counter()
                c = time.process_time()
                build(sky, out, mask=mask, n_patches=args.n, npix=args.npix,
                      pixel_arcmin=args.pixel, seed=0, overwrite=True, progress=False,
                      backend=backend, timings=timings)
                dt = time.perf_counter() - t
                cpu = time.process_time() - c
                if dt < best:
                    best, phases, best_cpu = dt, timings, cpu
            res["runs"][f"build_{resolved}_s"] = best
            res["runs"][f"build_{resolved}_phases_s"] = phases
            res["runs"][f"build_{resolved}_cpu_s"] = best_cpu  # CPU seconds, all threads
            print(f"build ({resolved}): {best:.1f} s  " +
                  ", ".join(f"{k} {v:.1f}" for k, v in phases.items()), flush=True)
        res["set_bytes"] = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
