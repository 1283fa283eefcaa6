"""GPU check for the Minkowski functionals: CUDA against the C++ CPU kernel on fresh random inputs
(both dtypes, NaN pixels, unsorted thresholds), determinism, then the time of 312 patches of
320^2 at 32 thresholds with CUDA events (target <= 20 ms on an H200).

Needs a build with CUDA (pip install . -Ccmake.define.FORSE_USE_CUDA=ON) and CuPy.

    python bench/gpu/gpu_check_minkowski.py [--npatch 312] [--npix 320] [--nthresh 32] [--json f]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from forse import _dispatch
from forse import minkowski as mk


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npatch", type=int, default=312)
    p.add_argument("--npix", type=int, default=320)
    p.add_argument("--nthresh", type=int, default=32)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not _dispatch.has_cuda_device():
        print("no CUDA build or no device: nothing to check", file=sys.stderr)
        return 2
    import cupy

    rng = np.random.default_rng()  # fresh inputs every run
    ok = True
    for dtype, tol in ((np.float64, 1e-11), (np.float32, 1e-11)):
        img = rng.standard_normal((9, 77, 101)).astype(dtype)
        img[2, 10, 10] = np.nan
        u = rng.uniform(-3, 3, 40)
        ref = mk.functionals(img, u, backend="cpu")
        got = mk.functionals(cupy.asarray(img), u, backend="cuda")
        again = mk.functionals(cupy.asarray(img), u, backend="cuda")
        for name, a, b, c in zip(("v0", "v1", "v2"), got, ref, again):
            a = cupy.asnumpy(a)
            err = np.abs(a - b).max()
            good = np.allclose(a, b, rtol=tol, atol=tol * 77 * 101)
            same = np.array_equal(a, cupy.asnumpy(c))
            ok &= good and same
            print(f"{dtype.__name__:8s} {name}: max|cuda-cpu| = {err:.3g} "
                  f"{'ok' if good else 'FAIL'}, deterministic {'yes' if same else 'NO'}")

    images = cupy.asarray(rng.standard_normal((args.npatch, args.npix, args.npix)))
    u = np.linspace(-3.5, 3.5, args.nthresh)
    mk.functionals(images, u, backend="cuda")  # warm-up
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(args.repeats):
        start.record()
        mk.functionals(images, u, backend="cuda")
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    best = min(times)
    dev = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"{dev}: {args.npatch} patches {args.npix}^2, {args.nthresh} thresholds: "
          f"best {best:.3f} ms, median {np.median(times):.3f} ms (target <= 20 ms)")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"device": dev, "best_ms": best, "median_ms": float(np.median(times)),
                       "correct": bool(ok), "npatch": args.npatch, "npix": args.npix,
                       "nthresh": args.nthresh}, fh, indent=1)
        os.replace(tmp, args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
