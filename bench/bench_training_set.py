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

The sky's statistics against Planck's: bench/bench_sky.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from _common import machine  # noqa: E402 (bench/ is on sys.path)


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
    args = p.parse_args(argv)

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
