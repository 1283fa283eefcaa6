"""Quality of a generator on the test split of a training set, beside the Gaussian baseline.

    python bench/quality_gan.py --data TS_FOLDER [--model dust-T] [--seeds 0 1 2] [--json out.json]

Minkowski functionals with forse's one metric (``forse.minkowski.score``, also used by training's
checkpoint choice and ``forse validate``): overlap fraction of the mean +- 1 sigma bands of V0,
V1, V2 of the generated small scales (generator output) and of the Gaussian baseline's small
scales (``gauss / lr``) against the true ones (``target = hr / lr``).

* headline, ``nu``: each patch standardized, ``nu = (x - mean) / std``, 32 thresholds in [-3, 3].
  The metric ignores any affine map ``a x + b`` (``a > 0``) of a patch, so the generator output
  (rescaled units; ``to_physical`` is affine in it per patch) is compared with the raw ratios.
* beside it, ``minmax`` (ForSE's variant: min-max to [-1, 1], 32 thresholds in [-1, 1]), with the
  truth and the baseline rescaled as the training targets were (the card's robust range,
  clipped) as in the numbers of the model cards; ``raw_minmax`` is the min-max of the raw ratios.
* the ceiling: the truth's test patches split in two halves (first vs second), same metric.

Power spectrum: binned flat-sky spectrum (``forse.spectra.flat_power_spectrum``, 1 deg taper)
of the normalized output (``forse.normalize.to_physical``) and of the Gaussian baseline over the
true high-resolution patch, averaged over the test patches, in bins over ell in [300, 1000].
The test split must come from a sky the model was not trained on for held-out numbers: the test
region of the model's own training set (a different sky region of the same sky seed) or a
training set built from another sky seed; the script prints the card's training sky seeds.
Targets (issue 4): every overlap >= 0.85 and above the baseline; spectrum ratio within +-10 %.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402


def spectrum_ratio(images, truth, pixel_arcmin, edges):
    from forse.spectra import flat_power_spectrum

    ell, cl = flat_power_spectrum(images, pixel_arcmin, ell_edges=edges)
    _, ct = flat_power_spectrum(truth, pixel_arcmin, ell_edges=edges)
    return ell, cl.mean(axis=0) / ct.mean(axis=0)


def _bfloat16(gen):
    """A mixed-bfloat16 copy of a loaded generator (same weights and card)."""
    from forse.gan import Generator
    from forse.gan.networks import build_generator

    m = gen.model
    copy = build_generator(None, float(gen.card.get("width", 0.25)), m.input_shape[-1],
                           out_channels=m.output_shape[-1], dtype="mixed_bfloat16")
    copy.set_weights(m.get_weights())
    return Generator(copy, gen.card, gen.path)


def teb(ss, px, edges):
    """Band-mean TT, EE, BB, TE of (N, 3, n, n) small scales, r_TE and EE/BB per bin."""
    from forse.spectra import flat_teb_spectra

    ell, c = flat_teb_spectra(ss[:, 0], ss[:, 1], ss[:, 2], px, ell_edges=edges)
    m = {k: v.mean(axis=0) for k, v in c.items()}
    return ell, {"r_te": (m["TE"] / np.sqrt(m["TT"] * m["EE"])).tolist(),
                 "ee_bb": (m["EE"] / m["BB"]).tolist(),
                 **{k.lower(): v.tolist() for k, v in m.items()}}


def joint_main(args, gen, card, t0):
    """The joint T/Q/U generator on a ``--stokes TQU`` test split: Minkowski overlaps of T, Q and
    U small scales (generated, Gaussian baseline, truth halves) and, in physical units, the
    patch spectra, r_TE and EE/BB of the small scales against the truth's."""
    from forse.gan import generate
    from forse.gan.train import JOINT, read_joint
    from forse.minkowski import ceiling, score

    lr, hr, gauss, attrs = read_joint(args.data, args.split, ("lr", "hr", "gauss"))
    px = float(attrs["pixel_arcmin"])
    norm = card.get("normalization", {})
    ell_range = tuple(norm.get("ell_range", (300.0, 1000.0)))
    edges = np.linspace(ell_range[0], ell_range[1], args.nbins + 1)
    t = lr[:, 0]

    def relative(m):  # the targets' small scales: T ratio, Q/U relative to the local intensity
        return np.stack([m[:, 0] / t, (m[:, 1] - lr[:, 1]) / t, (m[:, 2] - lr[:, 2]) / t], axis=1)

    truth, base = relative(hr), relative(gauss)
    g = generate(gen, gen.inputs(lr))  # the model's seam: its card's rescaling
    # the joint model's own T as well (extend takes T from dust-T)
    phys = {"forse": gen.small_scales(g, lr, gauss, t, with_t=True),
            "gaussian": gauss - lr, "truth": hr - lr}
    rows = {}
    for name, rel in (("forse", g), ("gaussian", base)):
        rows[name] = {s: dict(score(rel[:, c], truth[:, c], "nu"),
                              minmax=score(rel[:, c], truth[:, c], "minmax"))
                      for c, s in enumerate(JOINT)}
    rows["truth_halves"] = {s: dict(ceiling(truth[:, c], "nu"), minmax=ceiling(truth[:, c], "minmax"))
                            for c, s in enumerate(JOINT)}
    spectra = {}
    for name, ss in phys.items():
        ell, spectra[name] = teb(ss, px, edges)
    for name in ("forse", "gaussian"):
        for k in ("tt", "ee", "bb"):
            spectra[name][k + "_ratio"] = (np.array(spectra[name][k]) / spectra["truth"][k]).tolist()
    train_seeds = card.get("training", {}).get("sky_seeds")
    data_sky = attrs.get("sky_seed", attrs.get("seed"))
    res = {"model": args.model, "card_name": card.get("name"), "stokes": JOINT, "data": args.data,
           "split": args.split, "n_patches": int(len(lr)), "npix": int(lr.shape[-1]),
           "pixel_arcmin": px, "ell_edges": edges.tolist(), "ell_eff": ell.tolist(),
           "data_sky_seed": data_sky, "model_training_sky_seeds": train_seeds,
           "metric": {"headline": "nu", "beside": "minmax (raw, per channel)"},
           "results": rows, "spectra": spectra, "seconds": time.perf_counter() - t0,
           "command": " ".join(["python"] + sys.argv)}
    print(f"{args.split} split of {args.data}: {len(lr)} positions of {lr.shape[-1]}^2, joint "
          f"T/Q/U model {args.model}; data sky seed {data_sky}, trained on sky seeds {train_seeds}")
    print("| field | forse nu V0 / V1 / V2 | baseline | ceiling | forse min-max | ceiling min-max |")
    print("|---|---|---|---|---|---|")
    f3 = lambda r: " / ".join(f"{r[k]:.3f}" for k in ("v0", "v1", "v2"))  # noqa: E731
    for s in JOINT:
        print(f"| {s} | {f3(rows['forse'][s])} | {f3(rows['gaussian'][s])} | "
              f"{f3(rows['truth_halves'][s])} | {f3(rows['forse'][s]['minmax'])} | "
              f"{f3(rows['truth_halves'][s]['minmax'])} |")
    print("small scales, ell bins " + " ".join(f"{e:.0f}" for e in ell))
    for name in ("truth", "forse", "gaussian"):
        sp = spectra[name]
        print(f"  {name:8s} r_TE " + " ".join(f"{v:.2f}" for v in sp["r_te"])
              + " | EE/BB " + " ".join(f"{v:.2f}" for v in sp["ee_bb"]))
    for name in ("forse", "gaussian"):
        print(f"  {name:8s} TT/EE/BB ratio to truth: "
              + " ; ".join(k.upper() + " " + " ".join(f"{v:.2f}" for v in spectra[name][k + "_ratio"])
                           for k in ("tt", "ee", "bb")))
    if args.json:
        from forse._atomic import write_json

        write_json(args.json, res, indent=2)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="training-set folder (its test.h5 is used)")
    ap.add_argument("--model", default="dust-T", help="bundled name or .keras path")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="noise seeds of the stochastic realizations")
    ap.add_argument("--nbins", type=int, default=7, help="spectrum bins over [300, 1000]")
    ap.add_argument("--bfloat16", action="store_true",
                    help="run a mixed-bfloat16 copy of the generator (same weights): the quality "
                         "cost of bfloat16 inference")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from forse.gan import generate, load_generator
    from forse.gan.train import read_split
    from forse.minkowski import ceiling, score
    from forse.normalize import rescale

    t0 = time.perf_counter()
    gen, card = load_generator(args.model, with_card=True)
    if args.bfloat16:
        gen = _bfloat16(gen)
    stokes = card.get("stokes", "T")
    if stokes == "TQU":
        return joint_main(args, gen, card, t0)
    data, attrs = read_split(args.data, args.split, stokes, ("lr", "target", "hr", "gauss"))
    lr, target, hr, gauss = data["lr"], data["target"], data["hr"], data["gauss"]
    px = float(attrs["pixel_arcmin"])
    norm = card.get("normalization", {})
    robust = norm.get("robust", True)
    pct = tuple(norm.get("percentiles", (0.5, 99.5)))
    ell_range = tuple(norm.get("ell_range", (300.0, 1000.0)))
    edges = np.linspace(ell_range[0], ell_range[1], args.nbins + 1)
    x = gen.inputs(lr)  # the model's seam: its card's rescaling
    train_seeds = card.get("training", {}).get("sky_seeds")
    data_sky = attrs.get("sky_seed", attrs.get("seed"))

    # minmax as in the cards: truth and baseline through the rescaling the network's targets had
    # in training (robust range, clipped), then the metric's min-max
    def scaled(a):
        return rescale(a, robust=robust, percentiles=pct)[0]

    truth = scaled(target)

    def metrics(g, g_scaled):
        return dict(score(g, target, "nu"), minmax=score(g_scaled, truth, "minmax"),
                    raw_minmax=score(g, target, "minmax"))

    rows = {}
    if stokes == "T":
        base = gauss / lr
        ell, ratio = spectrum_ratio(gauss, hr, px, edges)
        rows["gaussian"] = dict(metrics(base, scaled(base)), spectrum_ratio=ratio.tolist(),
                                max_spectrum_error=float(np.abs(ratio - 1).max()))
    rows["truth_halves"] = dict(ceiling(target, "nu"), minmax=ceiling(truth, "minmax"),
                                raw_minmax=ceiling(target, "minmax"),
                                note="first vs second half of the true test patches")
    runs = []
    for seed in args.seeds:
        g = generate(gen, x, seed=seed)
        run = dict(metrics(g, g), seed=seed)
        if stokes == "T":
            out = gen.small_scales(g, lr, gauss, None) + lr  # the seam, as extend calls it
            ell, ratio = spectrum_ratio(out, hr, px, edges)
            run.update(spectrum_ratio=ratio.tolist(), max_spectrum_error=float(np.abs(ratio - 1).max()))
        runs.append(run)
    fv = ("v0", "v1", "v2", "score")
    keys = list(fv) + (["max_spectrum_error"] if stokes == "T" else [])
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    for var in ("minmax", "raw_minmax"):
        mean[var] = {k: float(np.mean([r[var][k] for r in runs])) for k in fv}
    spread = {k: float(np.std([r[k] for r in runs])) for k in keys}
    if stokes == "T":
        mean["spectrum_ratio"] = np.mean([r["spectrum_ratio"] for r in runs], axis=0).tolist()
    rows["forse"] = dict(mean, std_over_seeds=spread, runs=runs)
    res = {"model": args.model, "card_name": card.get("name"), "stokes": stokes,
           "data": args.data, "split": args.split, "n_patches": int(len(lr)),
           "npix": int(lr.shape[-1]), "pixel_arcmin": px, "ell_edges": edges.tolist(),
           "seeds": args.seeds, "metric": {"headline": "nu", "beside": "minmax"},
           "data_sky_seed": data_sky, "model_training_sky_seeds": train_seeds,
           "results": rows, "seconds": time.perf_counter() - t0,
           "command": " ".join(["python"] + sys.argv)}

    print(f"{args.split} split of {args.data}: {len(lr)} patches of {lr.shape[-1]}^2, input {stokes}, "
          f"target T small scales; model {args.model} (mean over seeds {args.seeds}); data sky seed "
          f"{data_sky}, model trained on sky seeds {train_seeds}")
    print("Minkowski overlap with the truth: nu (standardized, 32 thresholds in [-3, 3]) | min-max "
          "(ForSE, 32 in [-1, 1])")
    print(f"| sky | V0 nu | V1 nu | V2 nu | V0 / V1 / V2 min-max | spectrum ratio, ell "
          f"{edges[0]:g}-{edges[-1]:g} (per bin) |")
    print("|---|---|---|---|---|---|")
    for name, r in (("ForSE generator", rows["forse"]), ("Gaussian baseline", rows.get("gaussian")),
                    ("ceiling: truth vs truth (two halves)", rows["truth_halves"])):
        if r is None:
            continue
        spec = (" ".join(f"{v:.3f}" for v in r["spectrum_ratio"])
                + f" (max err {r['max_spectrum_error']:.3f})" if "spectrum_ratio" in r else "n/a")
        mm = " / ".join(f"{r['minmax'][k]:.3f}" for k in ("v0", "v1", "v2"))
        print(f"| {name} | {r['v0']:.3f} | {r['v1']:.3f} | {r['v2']:.3f} | {mm} | {spec} |")
    print("raw min-max variant (V0, V1, V2): generator "
          + " ".join(f"{rows['forse']['raw_minmax'][k]:.3f}" for k in ("v0", "v1", "v2"))
          + ("; baseline " + " ".join(f"{rows['gaussian']['raw_minmax'][k]:.3f}" for k in ("v0", "v1", "v2"))
             if "gaussian" in rows else ""))
    if train_seeds is not None and data_sky is not None and int(data_sky) in train_seeds:
        print(f"note: the data's sky (seed {data_sky}) is the one the model was trained on; only "
              "the test split's sky region is held out")
    if args.json:
        from forse._atomic import write_json

        write_json(args.json, res, indent=2)
    return res


if __name__ == "__main__":
    main()
