"""Full-sky fidelity on a held-out sky: the stitched ``forse extend`` output against the truth,
beside the Gaussian baseline and the truth-vs-truth ceiling (the headline of ``forse validate``).

    python bench/quality_fullsky.py [--nside 2048] [--seed 1] [--pol-modes ratio qu p-angle]
                                    [--json bench/results/quality_fullsky.json]

For each polarization mode: the synthetic TQU sky of ``--seed`` at 12' (the truth; the bundled
models were trained on seed 0 only, and the seed is refused if a model card lists it), an input
at exactly 80' (``forse.smoothing.resmooth``), ``forse.extend.extend`` with the bundled models
(the same seed for the generator noise and the Gaussian baseline), then
``forse.validate.validate`` against the truth with the baseline: nu-Minkowski overlaps (V0, V1,
V2) with the ceiling, the min-max variant, spectrum-ratio ranges per multipole range, r_TE,
EE/BB of the small scales, skewness and kurtosis, each row better or worse than the baseline.

Beside the full-sky score, the patch-level score: the generator's small scales on the same
validation patches before any stitching (``forse.extend._small_scales`` on the input and
baseline patches, ``HR = LR * ratio`` as ForSE), so that a loss in the chain after the
generator shows as full-sky < patch-level.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from _common import machine  # noqa: E402 (bench/ is the script folder: on sys.path)

FIELDS = "TQU"


def _patch_level(lr, gauss, truth, lon, lat, seed, pol_mode, model=None, px=3.75, npix=320):
    """nu-Minkowski of the generator's patches (before stitching: ``HR = LR * ratio``, as ForSE
    makes them) vs the truth's, with the validation's small-scale definition (T: hr/lr, Q/U:
    hr - lr)."""
    from forse import extend as ext
    from forse import minkowski, projection

    gens, _ = ext.load_models(model, "TQU", pol_mode)

    def cut(m, rows, pol):
        p = projection.healpix_to_patches(m[rows], lon, lat, npix, px, pol=pol)
        return p.reshape(len(lon), rows.stop - rows.start, npix, npix)

    channels = ([(slice(0, 3), True)] if pol_mode in ("ratio", "joint")
                else [(slice(0, 1), False), (slice(1, 3), True)])
    out = {}
    for rows, pol in channels:
        lr_p, g_p, t_p = (cut(m, rows, pol) for m in (lr, gauss, truth))
        seeds = [[seed, 10_000 + i] for i in range(len(lon))]
        ss = ext._small_scales(gens, lr_p, g_p, lr_p, seeds, None, pol_mode, ext.Timings())
        hr = lr_p + ss
        for k in range(rows.stop - rows.start):
            f = FIELDS[rows.start + k]
            if f == "T":
                gen, tru = hr[:, k] / lr_p[:, k], t_p[:, k] / lr_p[:, k]
            else:
                gen, tru = hr[:, k] - lr_p[:, k], t_p[:, k] - lr_p[:, k]
            out[f] = minkowski.score(gen, tru, "nu")
    return out


def run_mode(truth, lr, seed, pol_mode, nside, lmax, out_dir, model=None):
    from forse import extend as ext
    from forse.validate import default_patches, validate

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    out, base = ext.extend(lr, input_fwhm_arcmin=80.0, nside_out=nside, seed=seed,
                           pol_mode=pol_mode, model=model, progress=False, comm=None,
                           return_baseline=True)
    extend_s, extend_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    summary = validate(out, reference=truth, baseline=base, lowres=lr, fwhm_lr_arcmin=80.0,
                       out_dir=os.path.join(out_dir, pol_mode), lmax=lmax, progress=False,
                       reference_seed=seed)
    del out
    # the generator's own patches at the validation centres
    lon, lat = default_patches()
    patch = _patch_level(lr, base, truth, lon, lat, seed, pol_mode, model)
    return {"extend_wall_s": round(extend_s, 1), "extend_cpu_s": round(extend_cpu, 1),
            "headline": summary["headline"], "patch_level_nu": patch,
            "held_out": summary.get("held_out")}


def table(res):
    h = res["headline"]
    lines = ["| field | functional | forse (full sky) | generator patches | baseline | ceiling | better |",
             "|---|---|---|---|---|---|---|"]
    for f, row in h["minkowski_nu"].items():
        for v in ("v0", "v1", "v2"):
            lines.append(f"| {f} | {v.upper()} | {row['forse'][v]:.3f} | "
                         f"{res['patch_level_nu'].get(f, {}).get(v, float('nan')):.3f} | "
                         f"{row['baseline'][v]:.3f} | {row['ceiling'][v]:.3f} | "
                         f"{'yes' if h['better'].get(f'minkowski_nu.{f}.{v}') else 'no'} |")
    lines += ["", "| spectrum | ell range | forse ratio min-max | baseline ratio min-max | better |",
              "|---|---|---|---|---|"]
    for s, rows in h["spectra"].items():
        for r in rows:
            better = [v for k, v in h["better"].items() if k.startswith(f"spectra.{s}.{r['ell'][0]}-")]
            lines.append(f"| {s} | {r['ell'][0]}-{r['ell'][1]} | {r['forse'][0]:.2f}-{r['forse'][1]:.2f} | "
                         f"{r['baseline'][0]:.2f}-{r['baseline'][1]:.2f} | "
                         f"{'yes' if better and better[0] else 'no'} |")
    if "rTE" in h:
        r = h["rTE"]
        lines.append(f"\nr_TE, ell {r['ell'][0]}-{r['ell'][1]}: max |forse - truth| "
                     f"{r['forse_max_abs_diff']:.3f}, baseline {r['baseline_max_abs_diff']:.3f}")
    if "EE_over_BB" in h:
        e = h["EE_over_BB"]
        lines.append(f"EE/BB of the small scales, ell {e['ell'][0]}-{e['ell'][1]}: forse "
                     f"{e['forse']:.3f}, baseline {e['baseline']:.3f}, truth {e['truth']:.3f}")
    for f, o in h.get("one_point", {}).items():
        lines.append(f"{f} small scales: skewness forse {o['skewness']['forse']:.2f} / baseline "
                     f"{o['skewness']['baseline']:.2f} / truth {o['skewness']['truth']:.2f}; "
                     f"kurtosis {o['kurtosis']['forse']:.1f} / {o['kurtosis']['baseline']:.1f} / "
                     f"{o['kurtosis']['truth']:.1f}")
    nu_rows = [k for k in h["better"] if k.startswith("minkowski_nu.")]
    lines.append(f"\nforse better than the baseline on {sum(h['better'][k] for k in nu_rows)} of "
                 f"{len(nu_rows)} nu-Minkowski rows, {h['n_better']} of {h['n_rows']} headline rows")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1, help="held-out sky seed (default 1)")
    ap.add_argument("--sky-version", type=int, default=None,
                    help="version of the built-in sky (default: forse.sky.SKY_VERSION)")
    ap.add_argument("--pol-modes", nargs="+", default=["ratio", "qu", "p-angle"],
                    choices=("ratio", "qu", "p-angle", "joint"))
    ap.add_argument("--lmax", type=int, default=2000, help="spectra up to this multipole")
    ap.add_argument("--out", default="bench/out/quality_fullsky", help="reports go here")
    ap.add_argument("--model-t", default=None, metavar="KERAS",
                    help="a T generator in place of the bundled dust-T (the other roles bundled)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from forse import __version__
    from forse.sky import synthetic_dust
    from forse.smoothing import resmooth
    from forse.validate import training_sky_seeds

    trained = training_sky_seeds()
    if args.seed in trained:
        ap.error(f"--seed {args.seed} is a training sky seed of the bundled models {trained}; "
                 "expected a held-out seed")
    t0 = time.perf_counter()
    from forse.sky import SKY_VERSION

    version = SKY_VERSION if args.sky_version is None else args.sky_version
    truth = synthetic_dust(args.nside, seed=args.seed, stokes="TQU", fwhm_arcmin=12.0,
                           version=version)
    lr = resmooth(truth, 12.0, 80.0)
    res = {"command": " ".join(["python"] + sys.argv), "forse_version": __version__,
           "machine": machine(),
           "nside": args.nside, "seed": args.seed, "sky_version": version, "training_sky_seeds": trained,
           "lmax": args.lmax, "model_t": args.model_t, "modes": {}}
    for mode in args.pol_modes:
        model = None if args.model_t is None else {
            "T": args.model_t, "Q": "dust-Q", "U": "dust-U", "TQU": "dust-TQU"}
        r = run_mode(truth, lr, args.seed, mode, args.nside, args.lmax, args.out, model)
        res["modes"][mode] = r
        print(f"\n## pol_mode={mode} (held-out seed {args.seed}, Nside {args.nside}; extend "
              f"{r['extend_wall_s']} s wall, {r['extend_cpu_s']} s CPU)\n")
        print(table(r), flush=True)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        from forse._atomic import write_json

        write_json(args.json, res, indent=1)
    return res


if __name__ == "__main__":
    main()
