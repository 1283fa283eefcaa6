"""Ablation of the training options at a fixed step budget: ForSE's adversarial loss alone, then
each added term, then all together, same seeds and data; scored on the test split.

    python bench/ablation_gan.py --data TS --out runs/ablation --steps 1200 \
        --json bench/results/results_ablation_gan.json

Each configuration trains in OUT/NAME (resumable: run the same command again after a kill) with
the bundled recipe's settings (64^2 crops of the 320^2 patches, width 0.25, batch 16, ForSE+
input noise 0.1, --seed; checkpoint every --every steps, the best by the validation nu score is
kept), then ``bench/quality_gan.py`` scores it on the test split (nu headline, min-max beside,
ceiling, Gaussian baseline, spectrum ratio over ell 300-1000). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

# weights: at initialization the terms are ~6 (Minkowski) and ~8 (spectrum) against an adversarial
# loss ~1 (measured on validation batches of the T set); these let them lead early, then guide
MINKOWSKI_WEIGHT = 2.0
SPECTRUM_WEIGHT = 0.2
CONFIGS = {
    "forse": {},
    "conditional": {"conditional": True},
    "minkowski": {"minkowski_weight": MINKOWSKI_WEIGHT},
    "spectrum": {"spectrum_weight": SPECTRUM_WEIGHT},
    "all": {"conditional": True, "minkowski_weight": MINKOWSKI_WEIGHT,
            "spectrum_weight": SPECTRUM_WEIGHT},
}
BASE = dict(patch_size=64, width=0.25, batch_size=16, stochastic=True, noise_amplitude=0.1,
            val_patches=24)


def run_one(name, data, out, steps, every, seed):
    from forse.gan import TrainConfig, train

    folder = Path(out) / name
    resume = (folder / "config.json").is_file()
    cfg = None if resume else TrainConfig(steps=steps, checkpoint_every=every, name=name,
                                          seed=seed, **BASE, **CONFIGS[name])
    t, c = time.perf_counter(), time.process_time()
    summary = train(data, folder, cfg, resume=resume, steps=steps, progress=False,
                    command=f"python bench/ablation_gan.py ({name})")
    return folder / f"{name}.keras", {"wall_s": time.perf_counter() - t,
                                      "cpu_s": time.process_time() - c, "summary": summary}


def table(runs):
    """Mean and per-seed markdown table over runs (one per training seed), each a dict with
    ``configs`` as written by --json."""
    import numpy as np

    names = list(runs[0]["configs"])
    keys = ("v0", "v1", "v2")
    lines = ["| recipe | V0 / V1 / V2 nu (mean of seeds) | per seed | V0 / V1 / V2 min-max (mean) "
             "| max spectrum error (mean) |", "|---|---|---|---|---|"]
    for n in names:
        rs = [r["configs"][n]["quality"]["results"]["forse"] for r in runs]
        nu = [np.mean([r[k] for r in rs]) for k in keys]
        per = "; ".join(" / ".join(f"{r[k]:.2f}" for k in keys) for r in rs)
        mm = [np.mean([r["minmax"][k] for r in rs]) for k in keys]
        err = np.mean([r["max_spectrum_error"] for r in rs])
        lines.append(f"| {n} | {' / '.join(f'{v:.3f}' for v in nu)} | {per} | "
                     f"{' / '.join(f'{v:.3f}' for v in mm)} | {err:.3f} |")
    first = runs[0]["configs"][names[0]]["quality"]["results"]
    for label, key in (("Gaussian baseline", "gaussian"), ("ceiling (truth halves)", "truth_halves")):
        r = first[key]
        err = f"{r['max_spectrum_error']:.3f}" if "max_spectrum_error" in r else "n/a"
        nu = " / ".join(f"{r[k]:.3f}" for k in keys)
        mm = " / ".join(f"{r['minmax'][k]:.3f}" for k in keys)
        lines.append(f"| {label} | {nu} | | {mm} | {err} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="training-set folder with a test split")
    ap.add_argument("--out", help="folder of the runs")
    ap.add_argument("--combine", nargs="+", metavar="JSON",
                    help="only print the table of several runs' --json files (one per seed)")
    ap.add_argument("--steps", type=int, default=1200, help="step budget of every configuration")
    ap.add_argument("--every", type=int, default=200, help="checkpoint (and validation) interval")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seed", type=int, default=0, help="training seed of every configuration")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.combine:
        print(table([json.loads(Path(p).read_text()) for p in args.combine]))
        return
    if not (args.data and args.out):
        ap.error("--data and --out are required (or --combine)")
    import quality_gan

    results = {}
    for name in args.configs:
        model, info = run_one(name, args.data, args.out, args.steps, args.every, args.seed)
        info["quality"] = quality_gan.main(["--data", args.data, "--model", str(model)])
        info["settings"] = dict(BASE, **CONFIGS[name], steps=args.steps, seed=args.seed)
        results[name] = info
        print(f"{name}: {info['wall_s']:.0f} s wall, {info['cpu_s']:.0f} s CPU", flush=True)
    text = table([{"configs": results}])
    print(text)
    if args.json:
        from forse._atomic import write_json

        write_json(args.json, {"command": "python bench/ablation_gan.py " + " ".join(
            argv if argv is not None else sys.argv[1:]), "configs": results, "table": text},
            indent=2)


if __name__ == "__main__":
    main()
