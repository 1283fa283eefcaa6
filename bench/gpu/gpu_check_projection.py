"""GPU check of the projection kernels: CUDA against the CPU backend on fresh random inputs,
then CUDA-event timings for the 312 regular 320^2 patches at 3.75' and Nside 2048.

    python bench/gpu/gpu_check_projection.py [--nside 2048] [--repeats 10] [--json OUT]

Exits non-zero if CUDA and CPU disagree beyond the per-dtype tolerance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from forse import _dispatch, tiling
from forse import projection as P

TOL = {np.float64: 1e-10, np.float32: 2e-5}


def cuda_time(fn, repeats):
    import cupy as cp
    fn()
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return min(times), float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not _dispatch.has_cuda_device():
        print("no CUDA build or device: nothing to check")
        return 2
    import cupy as cp

    res = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(), "checks": {}}
    ok = True
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))  # fresh inputs
    lon, lat = tiling.regular()
    for dtype in (np.float64, np.float32):
        m = rng.standard_normal((3, 12 * 256**2)).astype(dtype)
        for pol in (False, True):
            a = P.healpix_to_patches(m, lon[::7], lat[::7], 96, 12.0, pol=pol, backend="cpu")
            b = cp.asnumpy(P.healpix_to_patches(cp.asarray(m), lon[::7], lat[::7], 96, 12.0,
                                                pol=pol, backend="cuda"))
            err = float(np.nanmax(np.abs(a - b)))
            res["checks"][f"project {np.dtype(dtype).name} pol={pol}"] = err
            ok &= err <= TOL[dtype] * 10
        p = rng.standard_normal((lon.size, 3, 48, 48)).astype(dtype)
        for interp in ("bicubic", "bilinear"):
            a = P.patches_to_healpix(p, lon, lat, 128, 25.0, interpolation=interp, pol=True,
                                     backend="cpu")
            b = cp.asnumpy(P.patches_to_healpix(cp.asarray(p), lon, lat, 128, 25.0,
                                                interpolation=interp, pol=True, backend="cuda"))
            err = float(np.max(np.abs(a - b)))
            res["checks"][f"backproject {np.dtype(dtype).name} {interp}"] = err
            ok &= err <= TOL[dtype]
    for k, v in res["checks"].items():
        print(f"check {k:<36s} max |cuda - cpu| = {v:.3g}")

    m = cp.asarray(rng.standard_normal(12 * args.nside**2))
    res["project_312_s"] = cuda_time(lambda: P.healpix_to_patches(m, lon, lat, backend="cuda"),
                                     args.repeats)
    patches = P.healpix_to_patches(m, lon, lat, backend="cuda")
    for interp in ("bilinear", "bicubic"):
        res[f"backproject_312_{interp}_s"] = cuda_time(
            lambda interp=interp: P.patches_to_healpix(patches, lon, lat, args.nside, interpolation=interp,
                                                       backend="cuda"), args.repeats)
    for k in ("project_312_s", "backproject_312_bilinear_s", "backproject_312_bicubic_s"):
        print(f"{k:<30s} best {res[k][0] * 1e3:8.2f} ms  median {res[k][1] * 1e3:8.2f} ms")
    res["targets"] = {"project_312_s": 5e-3, "backproject_312_bicubic_s": 10e-3}
    res["ok"] = bool(ok)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, args.json)
    print("CUDA matches CPU" if ok else "MISMATCH between CUDA and CPU")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
