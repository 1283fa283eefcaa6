"""Speed of the ForSE networks: training steps/s and generator throughput (patches/s).

    python bench/bench_gan.py [--quick] [--json bench/results/results_gan.json]

Training: the bundled configuration (64^2 crops, width 0.25, batch 16, one D and one G update
per step) on random data, timed after the first (tracing) step. Inference: the generator (no
noise) at 64^2 and 320^2, widths 1.0 (paper) and 0.25 (bundled), float32 and mixed bfloat16,
batch 8, timed after a warm-up call; best of `--repeats`. Uses whatever cores TensorFlow sees.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from _common import machine  # noqa: E402 (bench/ is on sys.path)


def bench_train(width, patch, batch, steps):
    from forse.gan.train import Batches, TrainConfig, Trainer

    cfg = TrainConfig(patch_size=patch, width=width, batch_size=batch, steps=steps).check()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, patch * 2, patch * 2)).astype(np.float32)
    y = rng.uniform(-1, 1, x.shape).astype(np.float32)
    batches = Batches(x, y, cfg)
    t = Trainer(cfg)
    t.train_step(batches)  # trace
    t0 = time.perf_counter()
    for _ in range(steps):
        t.train_step(batches)
    return steps / (time.perf_counter() - t0)


def bench_generate(width, npix, dtype, n, batch, repeats):
    import keras
    import tensorflow as tf

    from forse.gan import build_generator

    keras.utils.set_random_seed(0)
    ref = build_generator(None, width)
    g = build_generator(None, width, dtype=dtype)
    g.set_weights(ref.get_weights())
    fn = tf.function(lambda t: g(t, training=False))
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, npix, npix, 1)).astype(np.float32))
    fn(x).numpy()  # trace + warm-up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(max(1, n // batch)):
            fn(x).numpy()
        best = min(best, time.perf_counter() - t0)
    return max(1, n // batch) * batch / best


def bench_full_sky(model, n=312, npix=320, batch=8):
    """The bundled generator on a full sky's worth of patches (Nside 2048, regular tiling)."""
    from forse.gan import generate, load_generator

    gen = load_generator(model)
    x = np.random.default_rng(0).uniform(-1, 1, (n, npix, npix)).astype(np.float32)
    generate(gen, x[:batch], seed=0, batch_size=batch)  # trace
    t0 = time.perf_counter()
    generate(gen, x, seed=0, batch_size=batch)
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps/patches")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--only-full-sky", action="store_true",
                    help="only time the bundled dust-T generator on 312 patches of 320^2")
    args = ap.parse_args(argv)
    import tensorflow as tf

    res = {"machine": machine(), "tensorflow": tf.__version__,
           "command": " ".join(["python"] + sys.argv)}
    if args.only_full_sky:
        dt = bench_full_sky("dust-T")
        res["full_sky_dust_T_s"] = dt
        print(f"bundled dust-T, 312 patches of 320^2 (full sky, Nside 2048): {dt:.1f} s "
              f"({312 / dt:.2f} patches/s)", flush=True)
    if not args.skip_train and not args.only_full_sky:
        steps = 10 if args.quick else 30
        r = bench_train(0.25, 64, 16, steps)
        res["train_steps_per_s"] = {"width": 0.25, "patch": 64, "batch": 16, "steps": steps,
                                    "value": r}
        print(f"training, bundled config (64^2, width 0.25, batch 16): {r:.2f} steps/s", flush=True)
    rows = []
    for width in (() if args.only_full_sky else (1.0, 0.25)):
        for npix in (64, 320):
            for dtype in ("float32", "mixed_bfloat16"):
                n = (64 if npix == 64 else 8) * (1 if width == 1.0 else 2)
                if args.quick:
                    n = max(8, n // 4)
                r = bench_generate(width, npix, dtype, n, 8, args.repeats)
                rows.append({"width": width, "npix": npix, "dtype": dtype, "patches": n,
                             "patches_per_s": r})
                print(f"generator width {width:4.2f} {npix:3d}^2 {dtype:15s}: {r:8.2f} patches/s",
                      flush=True)
    if rows:
        res["generate"] = rows
    if args.json:
        from forse._atomic import write_json

        write_json(args.json, res, indent=2)
    return res


if __name__ == "__main__":
    main()
