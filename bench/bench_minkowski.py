"""Benchmark: forse Minkowski functionals (C++/OpenMP) against a numba marching-squares loop.

Both compute the same estimator (forse.minkowski docstring) and their results are compared
before timing. The numba opponent is the loop one writes by hand: per cell the corners are
loaded once and every threshold is classified (fully below/above cells cost two compares),
njit-compiled, serial and prange-parallel over images; compile time is excluded (warm-up call).

    python bench/bench_minkowski.py --npatch 312 --npix 320 --nthresh 32 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from _common import machine, timed  # bench/ is the script folder: on sys.path
from forse import minkowski as mk


def dust_like(npatch, npix, seed, slope=-2.4, fwhm_pix=12.0 / 3.75):
    """Gaussian patches with a dust-like power law C(k) ~ k^slope smoothed by a 12' beam in
    3.75' pixels, each standardized."""
    rng = np.random.default_rng(seed)
    k = 2 * np.pi * np.hypot(*np.meshgrid(np.fft.fftfreq(npix), np.fft.fftfreq(npix)))
    s = fwhm_pix / np.sqrt(8 * np.log(2))
    amp = np.maximum(k, 2 * np.pi / npix) ** (slope / 2) * np.exp(-0.5 * k**2 * s**2)
    amp[0, 0] = 0.0
    out = np.empty((npatch, npix, npix))
    for i in range(npatch):
        f = np.fft.ifft2(np.fft.fft2(rng.standard_normal((npix, npix))) * amp).real
        out[i] = (f - f.mean()) / f.std()
    return out


def beam_grf(npatch, npix, seed, fwhm_pix=12.0 / 3.75):
    """Stress case: white noise smoothed by the beam only (~4x more boundary per pixel)."""
    rng = np.random.default_rng(seed)
    k2 = (2 * np.pi) ** 2 * (np.fft.fftfreq(npix)[:, None] ** 2 + np.fft.fftfreq(npix) ** 2)
    s = fwhm_pix / np.sqrt(8 * np.log(2))
    amp = np.exp(-0.5 * k2 * s**2)
    out = np.empty((npatch, npix, npix))
    for i in range(npatch):
        f = np.fft.ifft2(np.fft.fft2(rng.standard_normal((npix, npix))) * amp).real
        out[i] = (f - f.mean()) / f.std()
    return out


def numba_kernels():  # noqa: C901 (numba kernels: a flat port of the C++ loop, kept as one piece)
    import numba

    @numba.njit(inline="always")
    def corner(c0, c1, c3, u):
        # triangle at a corner with neighbours c1, c3 on the other side: (area, length)
        s = (c0 - u) / (c0 - c1)
        t = (c0 - u) / (c0 - c3)
        return 0.5 * s * t, np.sqrt(s * s + t * t)

    @numba.njit
    def one_image(f, u, v0, v1, v2):  # noqa: C901
        ny, nx = f.shape
        c = np.empty(4)
        for i in range(ny - 1):
            for j in range(nx - 1):
                c[0] = f[i, j]
                c[1] = f[i, j + 1]
                c[2] = f[i + 1, j + 1]
                c[3] = f[i + 1, j]
                if not (np.isfinite(c[0]) and np.isfinite(c[1]) and np.isfinite(c[2])
                        and np.isfinite(c[3])):
                    continue
                mean = 0.25 * (c[0] + c[1] + c[2] + c[3])
                for t in range(u.size):
                    ut = u[t]
                    code = 0
                    for k in range(4):
                        if c[k] > ut:
                            code |= 1 << k
                    if code == 0:
                        continue
                    if code == 15:
                        v0[t] += 1.0
                        continue
                    n = 0
                    for k in range(4):
                        n += (code >> k) & 1
                    if n == 1 or n == 3:
                        want = 1 if n == 1 else 0
                        k = 0
                        for q in range(4):
                            if (code >> q) & 1 == want:
                                k = q
                        a, ln = corner(c[k], c[(k + 1) % 4], c[(k + 3) % 4], ut)
                        v0[t] += a if n == 1 else 1.0 - a
                        v1[t] += ln
                        v2[t] += 0.25 if n == 1 else -0.25
                    elif code == 5 or code == 10:
                        k = 0 if code == 5 else 1
                        if mean > ut:  # connected: cut off the two below corners
                            a1, l1 = corner(c[k + 1], c[(k + 2) % 4], c[k], ut)
                            a2, l2 = corner(c[(k + 3) % 4], c[k], c[(k + 2) % 4], ut)
                            v0[t] += 1.0 - a1 - a2
                            v2[t] -= 0.5
                        else:
                            a1, l1 = corner(c[k], c[k + 1], c[(k + 3) % 4], ut)
                            a2, l2 = corner(c[k + 2], c[(k + 3) % 4], c[k + 1], ut)
                            v0[t] += a1 + a2
                            v2[t] += 0.5
                        v1[t] += l1 + l2
                    else:
                        k = 0
                        for q in range(4):
                            if (code >> q) & 1 and (code >> ((q + 1) % 4)) & 1:
                                k = q
                        k1 = (k + 1) % 4
                        d1 = (c[k] - ut) / (c[k] - c[(k + 3) % 4])
                        d2 = (c[k1] - ut) / (c[k1] - c[(k + 2) % 4])
                        v0[t] += 0.5 * (d1 + d2)
                        v1[t] += np.sqrt(1.0 + (d1 - d2) ** 2)

    @numba.njit
    def serial(images, u):
        n = images.shape[0]
        v0 = np.zeros((n, u.size))
        v1 = np.zeros((n, u.size))
        v2 = np.zeros((n, u.size))
        for i in range(n):
            one_image(images[i], u, v0[i], v1[i], v2[i])
        return v0, v1, v2

    @numba.njit(parallel=True)
    def parallel(images, u):
        n = images.shape[0]
        v0 = np.zeros((n, u.size))
        v1 = np.zeros((n, u.size))
        v2 = np.zeros((n, u.size))
        for i in numba.prange(n):
            one_image(images[i], u, v0[i], v1[i], v2[i])
        return v0, v1, v2

    return serial, parallel


def show(name, t, c, npatch):
    print(f"{name:32s} wall {t:7.3f} s {1e3 * t / npatch:7.3f} ms/patch | "
          f"cpu {c:7.3f} s {1e3 * c / npatch:7.3f} ms/patch", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npatch", type=int, default=312)
    p.add_argument("--npix", type=int, default=320)
    p.add_argument("--nthresh", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data", choices=["dust", "beam"], default="dust")
    p.add_argument("--no-numba", action="store_true")
    p.add_argument("--json", default=None, help="write results here")
    args = p.parse_args(argv)

    make = dust_like if args.data == "dust" else beam_grf
    images = make(args.npatch, args.npix, seed=0)
    u = np.linspace(-3.5, 3.5, args.nthresh)
    res = {"machine": machine(),
           "npatch": args.npatch, "npix": args.npix, "nthresh": args.nthresh,
           "data": args.data, "repeats": args.repeats, "times_s": {}, "cpu_s": {},
           "loadavg_before": os.getloadavg()}
    ref = None
    for name, kw, arr in [("forse cpu float64, all threads", {}, images),
                          ("forse cpu float64, 1 thread", {"nthreads": 1}, images),
                          ("forse cpu float32, all threads", {}, images.astype(np.float32))]:
        mk.functionals(arr[:2], u, backend="cpu", **kw)  # warm-up
        t, c, out = timed(lambda arr=arr, kw=kw: mk.functionals(arr, u, backend="cpu", **kw), args.repeats)
        ref = out if ref is None else ref
        res["times_s"][name] = t
        res["cpu_s"][name] = c
        show(name, t, c, args.npatch)
    if not args.no_numba:
        serial, parallel = numba_kernels()
        for name, fn in [("numba serial", serial), ("numba parallel", parallel)]:
            fn(images[:1, :16, :16].copy(), u)  # compile outside the timing
            t, c, out = timed(lambda fn=fn: fn(images, u), 1 if "serial" in name else args.repeats)
            for a, b in zip(out, ref):
                assert np.allclose(a, b, rtol=1e-9, atol=1e-6), "numba and forse disagree"
            res["times_s"][name] = t
            res["cpu_s"][name] = c
            show(name, t, c, args.npatch)
        tf = res["times_s"]["forse cpu float64, all threads"]
        res["ratio_vs_numba_parallel"] = res["times_s"]["numba parallel"] / tf
        res["ratio_vs_numba_serial"] = res["times_s"]["numba serial"] / tf
        res["ratio_cpu_time_1thread_vs_numba_serial"] = (
            res["cpu_s"]["numba serial"] / res["cpu_s"]["forse cpu float64, 1 thread"])
        print(f"speed-up vs numba parallel: {res['ratio_vs_numba_parallel']:.1f}x, "
              f"vs numba serial: {res['ratio_vs_numba_serial']:.1f}x (wall); "
              f"1 thread vs numba serial in CPU time: "
              f"{res['ratio_cpu_time_1thread_vs_numba_serial']:.1f}x")
    res["loadavg_after"] = os.getloadavg()
    print(f"load average before/after: {res['loadavg_before'][0]:.2f} / "
          f"{res['loadavg_after'][0]:.2f} (other processes share the cores)")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(res, fh, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
