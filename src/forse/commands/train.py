"""``forse train``: train a ForSE generator on a training-set folder (resumable)."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def register(subparsers, name):
    p = subparsers.add_parser(
        name, help="train a ForSE generator (DCGAN) on a training-set folder",
        description="Adversarial training of the ForSE generator on the train.h5 split of a "
                    "training-set folder (forse training-set). Checkpoints every N steps are "
                    "scored on validation.h5 (Minkowski-functional overlap) and the best one "
                    "becomes OUT/NAME.keras + NAME.json (model card, with test.h5 metrics). "
                    "--resume continues a killed run exactly where its last checkpoint was.",
        epilog="example: forse train sets/T runs/T --steps 3000 --width 0.25 --patch-size 64 "
               "--stochastic --name dust-T")
    p.add_argument("data", help="training-set folder (train.h5, validation.h5, test.h5)")
    p.add_argument("out", help="output folder (checkpoints, log.csv, loss.png, NAME.keras)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default 2000; "
                   "with --resume: train up to this many)")
    p.add_argument("--patch-size", type=int, default=64, help="training crop side in pixels "
                   "(multiple of 4; default 64)")
    p.add_argument("--width", type=float, default=0.25, help="filter-count multiplier (1.0 = paper)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-4, help="Adam learning rate")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta_1")
    p.add_argument("--no-label-smoothing", action="store_true",
                   help="hard labels 1/0 instead of real U[0.7,1], fake U[0,0.3]")
    p.add_argument("--swap-prob", type=float, default=0.0, help="probability of swapping the "
                   "real/fake labels of a sample")
    p.add_argument("--d-steps", type=int, default=1, help="discriminator updates per step")
    p.add_argument("--g-steps", type=int, default=1, help="generator updates per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--keep", type=int, default=3, help="checkpoints kept besides the best")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--stochastic", action="store_true", help="train with ForSE+ input noise")
    p.add_argument("--noise-amplitude", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true", help="no random flips / quarter turns")
    p.add_argument("--minmax", action="store_true", help="plain min-max rescaling (ForSE) "
                   "instead of the robust percentile range")
    p.add_argument("--input-stokes", choices=("T", "Q", "U"), default="T")
    p.add_argument("--target-stokes", choices=("T", "Q", "U"), default="T")
    p.add_argument("--val-patches", type=int, default=32, help="validation patches per checkpoint")
    p.add_argument("--xla", action="store_true", help="compile the update steps with XLA")
    p.add_argument("--mixed-precision", action="store_true", help="mixed bfloat16 compute")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (bit-reproducible runs and resumes)")
    p.add_argument("--name", default="generator", help="file name of the final model")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in "
                   "OUT with its saved settings (only --steps may change)")
    p.add_argument("--overwrite", action="store_true", help="start again in an OUT that has "
                   "checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args):
    from ..gan.train import TrainConfig, train

    cfg = TrainConfig(
        patch_size=args.patch_size, width=args.width, batch_size=args.batch_size,
        steps=args.steps if args.steps is not None else 2000, learning_rate=args.learning_rate,
        beta_1=args.beta1, label_smoothing=not args.no_label_smoothing, swap_prob=args.swap_prob,
        d_steps=args.d_steps, g_steps=args.g_steps, seed=args.seed,
        checkpoint_every=args.checkpoint_every, keep=args.keep, log_every=args.log_every,
        stochastic=args.stochastic, noise_amplitude=args.noise_amplitude,
        augment=not args.no_augment, robust=not args.minmax, input_stokes=args.input_stokes,
        target_stokes=args.target_stokes, val_patches=args.val_patches, jit_compile=args.xla,
        mixed_precision=args.mixed_precision, deterministic=args.deterministic, name=args.name)
    if args.resume and (Path(args.out) / "config.json").is_file():
        cfg = None  # the saved settings; only --steps may change
    command = "forse train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else None
    summary = train(args.data, args.out, cfg, resume=args.resume, overwrite=args.overwrite,
                    steps=args.steps,
                    progress=not args.no_progress, command=command)
    print(json.dumps(summary, indent=2))
    model = Path(summary["model"])
    print(f"wrote {model}, {model.with_suffix('.json')}, {Path(args.out) / 'summary.json'}, "
          f"log.csv, loss.png and checkpoints/ in {args.out}")
    return 0
