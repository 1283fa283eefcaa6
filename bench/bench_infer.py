"""Generator inference speed on 320^2 patches: tf.function in float32 at several batch sizes,
against XLA (``jit_compile=True``) and a mixed-bfloat16 copy of the same weights.

    python bench/bench_infer.py [--model dust-T] [--json bench/results/results_infer.json]

48 random rescaled patches, best of 2 passes after a warm-up call. bfloat16 reports the largest
and mean output change (tanh units); its effect on the quality metrics is not measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

from _common import machine  # noqa: E402 (bench/ is on sys.path)


def rate(fn, x, bs, reps=2):
    import tensorflow as tf

    fn(tf.constant(x[:bs]))  # trace
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for i in range(0, len(x), bs):
            out = fn(tf.constant(x[i:i + bs]))
        np.asarray(out)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dust-T")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import tensorflow as tf

    from forse.gan import load_generator
    from forse.gan.networks import build_generator

    gen = load_generator(args.model)
    m = gen.model
    x = np.random.default_rng(0).uniform(-1, 1, (48, 320, 320, m.input_shape[-1])).astype(np.float32)
    plain = tf.function(lambda t: m(t, training=False), reduce_retracing=True)
    xla = tf.function(lambda t: m(t, training=False), jit_compile=True, reduce_retracing=True)
    gb = build_generator(None, float(gen.card.get("width", 0.25)), m.input_shape[-1],
                         out_channels=m.output_shape[-1], dtype="mixed_bfloat16")
    gb.set_weights(m.get_weights())
    bf16 = tf.function(lambda t: gb(t, training=False), reduce_retracing=True)
    ref = np.asarray(plain(tf.constant(x[:8])))
    diff = np.abs(np.asarray(bf16(tf.constant(x[:8]))) - ref)
    res = {"model": args.model, "patches_per_s": {
        f"float32_batch{b}": rate(plain, x, b) for b in (8, 16, 24)},
        "machine": machine()}
    res["patches_per_s"]["xla_batch16"] = rate(xla, x, 16)
    res["patches_per_s"]["bfloat16_batch16"] = rate(bf16, x, 16)
    res["bfloat16_output_change"] = {"max": float(diff.max()), "mean": float(diff.mean())}
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
