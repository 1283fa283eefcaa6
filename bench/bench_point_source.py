"""A bright compact source in the input: how much do the output small scales change around it?

A Gaussian source of the input beam (80'), ``--amplitude`` times the median sky, at b = +60 deg
is added to the synthetic 80' T sky; both maps are extended with the same seed and the RMS of
the output small scales (output - input) is compared in annuli around the source: as they are,
and above ell = 300 (where the generated structure lives; the part below is the input's ell <
100 removal spreading the source core's own small scales over a few degrees).

    python bench/bench_point_source.py --json bench/results/results_point_source.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

import healpy as hp
import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--amplitude", type=float, default=50.0, help="source peak / median sky")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from forse import sht
    from forse.extend import extend
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    t0 = time.perf_counter()
    nside, fwhm = args.nside, 80.0
    t = smooth(synthetic_dust(nside, seed=3, fwhm_arcmin=12.0), fwhm)
    theta, phi = np.radians(30.0), 2.0
    sigma = np.radians(fwhm / 60) / np.sqrt(8 * np.log(2))
    vec = np.asarray(hp.pix2vec(nside, np.arange(t.size)))
    dist = np.degrees(np.arccos(np.clip(hp.ang2vec(theta, phi) @ vec, -1, 1)))
    del vec
    src = args.amplitude * np.median(t) * np.exp(-0.5 * (np.radians(dist) / sigma) ** 2)
    kw = dict(input_fwhm_arcmin=fwhm, nside_out=nside, progress=False, comm=None, seed=args.seed)
    ss = {"base": extend(t, **kw) - t, "source": extend(t + src, **kw) - (t + src)}
    lmax = 3 * nside - 1
    hp_win = (np.arange(lmax + 1) >= 300).astype(float)

    def high(m):
        return sht.alm2map(hp.almxfl(sht.map2alm(m, lmax), hp_win), nside, lmax)

    ss_hi = {k: high(v) for k, v in ss.items()}
    rows = []
    for lo, hi in [(0, 1), (1, 2), (2, 5), (5, 10), (10, 25), (45, 180)]:
        sel = (dist >= lo) & (dist < hi)
        rows.append({"annulus_deg": [lo, hi],
                     "input_ratio": float(np.mean((t + src)[sel]) / np.mean(t[sel])),
                     "small_scale_rms_ratio": float(np.std(ss["source"][sel]) / np.std(ss["base"][sel])),
                     "ell_gt_300_rms_ratio": float(np.std(ss_hi["source"][sel])
                                                   / np.std(ss_hi["base"][sel]))})
        print("{annulus_deg} deg: input x{input_ratio:.2f}, small scales x{small_scale_rms_ratio:.2f}, "
              "above ell 300 x{ell_gt_300_rms_ratio:.2f}".format(**rows[-1]))
    res = {"command": "python bench/bench_point_source.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
           "nside": nside, "amplitude": args.amplitude, "annuli": rows,
           "wall_s": round(time.perf_counter() - t0, 1), "load_average": os.getloadavg()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
