"""Benchmark: HEALPix <-> patches, forse (C++ backend) against fair opponents in the same run.

Case: the 312 regular patches (20 deg, 5 deg overlap) of 320 x 320 pixels of 3.75' and an
Nside-2048 map. Opponents:

* projection: healpy ``get_interp_val`` at the patch pixel positions (chunks of 26 patches);
* back-projection: vectorized healpy + numpy, per patch ``query_polygon`` + gnomonic in numpy +
  bilinear + taper window + ``np.add.at`` (bilinear, as forse's bilinear mode);
* astropy ``reproject`` (``reproject_from_healpix`` / ``reproject_to_healpix``, bilinear) if it is
  installed: it is far too slow for 312 patches, so a few patches are timed and the time is
  extrapolated linearly to 312 (said so in the output).

Also: back-projection time against Nside (512 .. 4096) and the peak memory of the
back-projection (VmHWM in a fresh subprocess) against the size of its output map.

    python bench/bench_projection.py --nside 2048 --repeats 3 --json bench/out/projection.json

``--baseline-core PATH`` also times another build of ``forse._core`` (e.g. one built from main,
copied out of its venv) through the same Python code, interleaved with this build's calls, so
a before/after ratio comes from one run on a shared machine.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import subprocess
import sys
import time

import healpy as hp
import numpy as np

from _common import machine, timed  # bench/ is the script folder: on sys.path
from forse import projection as P
from forse import tiling

NPIX, PIXEL_ARCMIN = 320, 3.75




def best(fn, repeats):
    """Best wall time of `repeats` calls after one warm-up; also the CPU time of the best call."""
    return timed(fn, repeats, warmup=True)[:2]


def load_core(path):
    """A compiled ``forse._core`` from another build (its init symbol fixes the name ``_core``)."""
    spec = importlib.util.spec_from_file_location("forse_baseline._core", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def using_core(core):
    from forse import _dispatch
    saved = _dispatch._core
    _dispatch._core = core
    try:
        yield
    finally:
        _dispatch._core = saved


# ------------------------------------------------------------------ opponents
def opp_project(m, lon, lat, chunk=26):
    out = np.empty((lon.size, NPIX, NPIX))
    for s in range(0, lon.size, chunk):
        theta, phi = P.patch_angles(lon[s:s + chunk], lat[s:s + chunk], NPIX, PIXEL_ARCMIN)
        out[s:s + chunk] = hp.get_interp_val(m, theta.ravel(), phi.ravel()).reshape(theta.shape)
    return out


def opp_backproject(patches, lon, lat, nside):
    npix = patches.shape[-1]
    c, d = (npix - 1) / 2.0, np.radians(PIXEL_ARCMIN / 60.0)
    er, ee, en = P._frames(lon, lat)
    acc = np.zeros(12 * nside * nside)
    wsum = np.zeros(12 * nside * nside)
    h = c * d
    for n in range(lon.size):
        verts = np.array([er[n] + sx * h * ee[n] + sy * h * en[n]
                          for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
        pix = hp.query_polygon(nside, verts / np.linalg.norm(verts, axis=1)[:, None])
        v = np.stack(hp.pix2vec(nside, pix), axis=-1)
        dot = v @ er[n]
        col = c + (v @ ee[n]) / dot / d
        row = c - (v @ en[n]) / dot / d
        ok = (col >= 0) & (col <= npix - 1) & (row >= 0) & (row <= npix - 1)
        pix, row, col = pix[ok], row[ok], col[ok]
        val = P._interp_patch(patches[n][None], row, col, "bilinear")[0]
        w = P._taper_1d(row, npix, 0.25) * P._taper_1d(col, npix, 0.25)
        np.add.at(acc, pix, w * val)
        np.add.at(wsum, pix, w)
    out = np.full(acc.size, hp.UNSEEN)
    good = wsum > 0
    out[good] = acc[good] / wsum[good]
    return out


def _wcs(lon, lat):
    from astropy.wcs import WCS
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    w.wcs.crval = [lon, lat]
    w.wcs.crpix = [(NPIX + 1) / 2.0, (NPIX + 1) / 2.0]
    # forse: longitude grows with the column, row 0 at the top -> FITS rows are flipped.
    w.wcs.cdelt = [PIXEL_ARCMIN / 60.0, PIXEL_ARCMIN / 60.0]
    return w


def reproject_times(m, patches, lon, lat, nside, n_patches):
    try:
        import reproject
    except ImportError:
        return {"installed": False}
    res = {"installed": True, "version": reproject.__version__, "patches_timed": n_patches}
    t0 = time.perf_counter()
    for n in range(n_patches):
        reproject.reproject_from_healpix((m, "galactic"), _wcs(lon[n], lat[n]),
                                         shape_out=(NPIX, NPIX), order="bilinear", nested=False)
    res["project_s_per_patch"] = (time.perf_counter() - t0) / n_patches
    t0 = time.perf_counter()
    for n in range(n_patches):
        reproject.reproject_to_healpix((np.flipud(patches[n]), _wcs(lon[n], lat[n])), "galactic",
                                       nside=nside, order="bilinear", nested=False)
    res["backproject_s_per_patch"] = (time.perf_counter() - t0) / n_patches
    res["project_s_312_extrapolated"] = res["project_s_per_patch"] * lon.size
    res["backproject_s_312_extrapolated"] = res["backproject_s_per_patch"] * lon.size
    return res


# ------------------------------------------------------------------ memory (fresh process)
_MEM_CHILD = r"""
import sys, numpy as np
from forse import projection as P, tiling
def hwm():  # peak RSS of this process image in bytes (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
nside, interp = int(sys.argv[1]), sys.argv[2]
lon, lat = tiling.regular()
patches = np.empty((lon.size, 320, 320)); patches.fill(1.0)
P.patches_to_healpix(patches[:2], lon[:2], lat[:2], 8, 3.75)  # import/warm-up at tiny size
base = hwm()
m = P.patches_to_healpix(patches, lon, lat, nside, 3.75, interpolation=interp, backend="cpu")
print(hwm() - base, m.nbytes)
"""


def peak_memory(nside, interp):
    out = subprocess.run([sys.executable, "-c", _MEM_CHILD, str(nside), interp],
                         capture_output=True, text=True, check=True).stdout.split()
    extra, out_bytes = int(out[0]), int(out[1])
    return {"extra_peak_bytes": extra, "output_bytes": out_bytes, "ratio": extra / out_bytes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="write the results here (JSON)")
    ap.add_argument("--scaling", type=int, nargs="*", default=[512, 1024, 2048, 4096],
                    help="Nsides for the back-projection scaling (empty: skip)")
    ap.add_argument("--reproject-patches", type=int, default=2,
                    help="patches timed with astropy reproject (0: skip)")
    ap.add_argument("--skip-opponent", action="store_true")
    ap.add_argument("--baseline-core", default=None,
                    help="path of another build's _core*.so to time against this one")
    args = ap.parse_args(argv)

    res = {"machine": machine(), "nside": args.nside, "npix": NPIX, "pixel_arcmin": PIXEL_ARCMIN,
           "repeats": args.repeats, "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])}
    lon, lat = tiling.regular()
    res["patches"] = int(lon.size)
    m = np.random.default_rng(0).standard_normal(12 * args.nside**2)

    def show(name, wall_cpu):
        print(f"{name:<42s} {wall_cpu[0]:8.3f} s  (cpu {wall_cpu[1]:.3f} s, load "
              f"{os.getloadavg()[0]:.2f})", flush=True)
        return {"wall_s": wall_cpu[0], "cpu_s": wall_cpu[1]}

    holder = {}
    project = lambda: holder.__setitem__("p", P.healpix_to_patches(  # noqa: E731
        m, lon, lat, NPIX, PIXEL_ARCMIN, backend="cpu"))
    back = {i: (lambda i=i: P.patches_to_healpix(holder["p"], lon, lat, args.nside, PIXEL_ARCMIN,
                                                 interpolation=i, backend="cpu"))
            for i in ("bilinear", "bicubic")}
    res["forse_project"] = show("forse project (cpu, bilinear)", best(project, args.repeats))
    patches = holder["p"]
    for interp in ("bilinear", "bicubic"):
        res[f"forse_backproject_{interp}"] = show(f"forse back-project (cpu, {interp})",
                                                  best(back[interp], args.repeats))
    if args.baseline_core:
        # Baseline and this build alternate, each its best of `repeats`, twice; the best is kept.
        base = load_core(args.baseline_core)
        res["baseline_core"] = args.baseline_core
        for rnd in range(2):
            for tag, core in (("baseline", base), ("forse", None)):
                with using_core(core) if core is not None else contextlib.nullcontext():
                    for name, fn in (("project", project), ("backproject_bilinear", back["bilinear"]),
                                     ("backproject_bicubic", back["bicubic"])):
                        key = f"{tag}_{name}" if tag == "baseline" else f"forse_{name}"
                        r = show(f"{tag} {name} (round {rnd + 1})", best(fn, args.repeats))
                        r["loadavg"] = os.getloadavg()[0]
                        if key not in res or r["wall_s"] < res[key]["wall_s"]:
                            res[key] = r
        holder["p"] = patches
        for name in ("project", "backproject_bilinear", "backproject_bicubic"):
            b, f = res[f"baseline_{name}"], res[f"forse_{name}"]
            res[f"speedup_vs_baseline_{name}"] = {"wall": b["wall_s"] / f["wall_s"],
                                                  "cpu": b["cpu_s"] / f["cpu_s"]}
            print(f"vs baseline {name}: {b['wall_s'] / f['wall_s']:.2f}x wall, "
                  f"{b['cpu_s'] / f['cpu_s']:.2f}x CPU", flush=True)
    if not args.skip_opponent:
        res["healpy_project"] = show("healpy get_interp_val project", best(
            lambda: opp_project(m, lon, lat), 1))
        res["healpy_numpy_backproject"] = show("healpy+numpy back-project (bilinear)", best(
            lambda: opp_backproject(patches, lon, lat, args.nside), 1))
        res["ratio_project"] = res["healpy_project"]["wall_s"] / res["forse_project"]["wall_s"]
        res["ratio_backproject_bilinear"] = (res["healpy_numpy_backproject"]["wall_s"]
                                             / res["forse_backproject_bilinear"]["wall_s"])
        print(f"speed-up projection {res['ratio_project']:.1f}x, back-projection (bilinear) "
              f"{res['ratio_backproject_bilinear']:.1f}x", flush=True)
    if args.reproject_patches > 0:
        res["reproject"] = reproject_times(m, patches, lon, lat, args.nside, args.reproject_patches)
        print("reproject:", res["reproject"], flush=True)
    m = patches = holder = None  # free them for the scaling runs (the closures above hold these names)
    res["scaling_backproject_bilinear"] = {}
    for nside in args.scaling:
        pt = np.random.default_rng(1).standard_normal((lon.size, NPIX, NPIX))
        r = best(lambda pt=pt, nside=nside: P.patches_to_healpix(pt, lon, lat, nside, PIXEL_ARCMIN,
                                                                 interpolation="bilinear", backend="cpu"),
                 1 if nside > 2048 else args.repeats)
        res["scaling_backproject_bilinear"][str(nside)] = show(f"scaling: back-project Nside {nside}", r)
        del pt
    res["peak_memory_backproject"] = {i: peak_memory(args.nside, i) for i in ("bilinear", "bicubic")}
    print("peak memory:", res["peak_memory_backproject"], flush=True)
    res["machine"]["loadavg_end"] = os.getloadavg()
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        from forse._atomic import write_json

        write_json(args.json, res, indent=2)
    return res


if __name__ == "__main__":
    main()
