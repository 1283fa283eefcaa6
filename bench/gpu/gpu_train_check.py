"""GPU check for the GAN: 200 training steps of the paper configuration (320^2 patches, width 1.0,
batch 16) and full-sky inference (312 patches of 320^2, Nside 2048 with the regular tiling),
printing steps/s and patches/s. Run through bench/gpu/gpu_train_check.sh on a CUDA machine."""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--npix", type=int, default=320)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--patches", type=int, default=312, help="full sky at Nside 2048")
    ap.add_argument("--xla", action="store_true")
    ap.add_argument("--mixed-precision", action="store_true")
    ap.add_argument("--allow-cpu", action="store_true", help="run even without a GPU (smoke test)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from forse.gan import generate
    from forse.gan.train import Batches, TrainConfig, Trainer

    gpus = tf.config.list_physical_devices("GPU")
    print(f"tensorflow {tf.__version__}, GPUs: {[g.name for g in gpus]}", flush=True)
    if not gpus and not args.allow_cpu:
        print("no GPU visible to TensorFlow: nothing measured", file=sys.stderr)
        return 1
    cfg = TrainConfig(patch_size=args.npix, width=args.width, batch_size=args.batch_size,
                      steps=args.steps, jit_compile=args.xla,
                      mixed_precision=args.mixed_precision).check()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, args.npix, args.npix)).astype(np.float32)
    y = np.tanh(x + 0.3 * rng.standard_normal(x.shape)).astype(np.float32)
    batches = Batches(x, y, cfg)
    t = Trainer(cfg)
    t0 = time.perf_counter()
    t.train_step(batches)
    print(f"first step (tracing{', XLA' if args.xla else ''}): {time.perf_counter() - t0:.1f} s",
          flush=True)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        d, g = t.train_step(batches)  # float() of the losses syncs the device every step
    dt = time.perf_counter() - t0
    print(f"training {args.npix}^2 width {args.width} batch {args.batch_size}: "
          f"{args.steps / dt:.2f} steps/s (losses d={d:.3f} g={g:.3f})", flush=True)

    lr = rng.uniform(-1, 1, (args.patches, args.npix, args.npix)).astype(np.float32)
    generate(t.G, lr[:args.batch_size], seed=0, stochastic=True, batch_size=args.batch_size)
    t0 = time.perf_counter()
    out = generate(t.G, lr, seed=0, stochastic=True, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    assert np.all(np.isfinite(out))
    print(f"inference {args.patches} patches of {args.npix}^2 (width {args.width}): "
          f"{args.patches / dt:.1f} patches/s, {dt:.2f} s for the full sky", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
