"""``forse train``: train a ForSE generator on a training-set folder (resumable)."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from . import _flags


def register(subparsers, name):
    p = subparsers.add_parser(
        name, help="train a ForSE generator (DCGAN) on a training-set folder",
        description="Adversarial training of the ForSE generator on the train.h5 split of a "
                    "training-set folder (forse training-set). Checkpoints every N steps are "
                    "scored on validation.h5 (Minkowski-functional overlap) and the best one "
                    "becomes OUT/NAME.keras + NAME.json (model card, with test.h5 metrics). "
                    "--resume continues a killed run exactly where its last checkpoint was.",
        epilog="examples: forse train sets/T runs/T --steps 3000 --width 0.25 --patch-size 64 "
               "--stochastic --name dust-T; joint T/Q/U generator on a --stokes TQU set: forse "
               "train tsTQU runs/TQU --steps 6000 --input-stokes TQU --target-stokes TQU "
               "--spectrum-weight 0.2 --val-patches 50 --name dust-TQU")
    p.add_argument("data", help="training-set folder (train.h5, validation.h5, test.h5)")
    p.add_argument("out", nargs="?", metavar="OUT",
                   help="output folder (checkpoints, log.csv, loss.png, NAME.keras); or -o")
    p.add_argument("-o", "--output", help="the output folder, as the other commands take it")
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
    p.add_argument("--input-stokes", choices=("T", "Q", "U", "TQU"), default="T",
                   help="TQU: the joint generator (T, Q, U in and out; a --stokes TQU set)")
    p.add_argument("--target-stokes", choices=("T", "Q", "U", "TQU"), default="T")
    p.add_argument("--val-patches", type=int, default=32, help="validation patches per checkpoint")
    p.add_argument("--xla", action="store_true", help="compile the update steps with XLA")
    p.add_argument("--mixed-precision", action="store_true", help="mixed bfloat16 compute")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic TensorFlow ops (bit-reproducible runs and resumes)")
    p.add_argument("--conditional", action="store_true",
                   help="the discriminator sees the input patch beside the small scales")
    p.add_argument("--minkowski-weight", type=float, default=0.0, metavar="W",
                   help="weight of the soft Minkowski-functional term in the generator loss "
                        "(default 0: ForSE's adversarial loss alone)")
    p.add_argument("--spectrum-weight", type=float, default=0.0, metavar="W",
                   help="weight of the log power-spectrum term in the generator loss (default 0)")
    p.add_argument("--name", default="generator", help="file name of the final model")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in "
                   "OUT with its saved settings (only --steps may change)")
    p.add_argument("--overwrite", action="store_true", help="start again in an OUT that has "
                   "checkpoints")
    _flags.quiet(p, "no progress bar")
    p.set_defaults(_defaults={a.dest: a.default for a in p._actions})
    return p


# flag -> TrainConfig field, for the settings a --resume must not change
FIELDS = {"--patch-size": "patch_size", "--width": "width", "--batch-size": "batch_size",
          "--learning-rate": "learning_rate", "--beta1": "beta_1", "--swap-prob": "swap_prob",
          "--d-steps": "d_steps", "--g-steps": "g_steps", "--seed": "seed",
          "--checkpoint-every": "checkpoint_every", "--keep": "keep", "--log-every": "log_every",
          "--noise-amplitude": "noise_amplitude", "--input-stokes": "input_stokes",
          "--target-stokes": "target_stokes", "--val-patches": "val_patches", "--name": "name",
          "--minkowski-weight": "minkowski_weight", "--spectrum-weight": "spectrum_weight"}
SWITCHES = {"--no-label-smoothing": ("label_smoothing", False), "--stochastic": ("stochastic", True),
            "--no-augment": ("augment", False), "--minmax": ("robust", False),
            "--xla": ("jit_compile", True), "--mixed-precision": ("mixed_precision", True),
            "--deterministic": ("deterministic", True), "--conditional": ("conditional", True)}


def _check_numbers(args):
    from .. import _checks as c

    for flag, lo in (("--patch-size", 4), ("--batch-size", 1), ("--d-steps", 0),
                     ("--g-steps", 1), ("--checkpoint-every", 1), ("--keep", 1),
                     ("--log-every", 1), ("--val-patches", 1)):
        c.integer(getattr(args, flag[2:].replace("-", "_")), flag, lo, 1 << 20)
    if args.steps is not None:
        c.integer(args.steps, "--steps", 1)
    if args.patch_size % 4:
        raise ValueError(f"--patch-size must be a multiple of 4, got {args.patch_size}")
    c.seed(args.seed, "--seed")
    c.positive(args.width, "--width", hi=8.0)
    c.positive(args.learning_rate, "--learning-rate", hi=1.0)
    if not 0 <= args.beta1 < 1:
        raise ValueError(f"--beta1 must be in [0, 1), got {args.beta1:g}")
    if not 0 <= args.swap_prob <= 1:
        raise ValueError(f"--swap-prob must be in [0, 1], got {args.swap_prob:g}")
    if not 0 <= args.noise_amplitude < 10:
        raise ValueError(f"--noise-amplitude must be in [0, 10), got {args.noise_amplitude:g}")
    for flag in ("--minkowski-weight", "--spectrum-weight"):
        w = getattr(args, flag[2:].replace("-", "_"))
        if not 0 <= w < 1e6:  # also refuses NaN
            raise ValueError(f"{flag} must be a number in [0, 1e6), got {w:g}")
    c.file_name(args.name, "--name")


def _check_data(args):
    from .. import _checks as c
    from ..data.training_set import TrainingSet

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"DATA {args.data!r} is not a folder (expected the output of "
                                "`forse training-set`)")
    for split in ("train", "validation", "test"):
        path = Path(args.data) / f"{split}.h5"
        if split == "train" or path.exists():
            c.input_file(path, "DATA")
            TrainingSet(path, require=("lr", "target"), name="DATA").close()


def _check_resume(args, out: Path):
    """--resume continues a run with its saved settings: a flag that changes one is refused
    (as the Python API refuses a different ``cfg``), and so is a folder with nothing to resume."""
    ck = out / "checkpoints"
    if not (out / "config.json").is_file() or not ck.is_dir() or \
            not any(p.name.startswith("ckpt-") for p in ck.iterdir()):
        raise FileNotFoundError(f"--resume: {str(out)!r} has no checkpoint to resume from; "
                                "start without --resume")
    saved = json.loads((out / "config.json").read_text())["config"]
    given = {k for k, v in args._defaults.items() if getattr(args, k, v) != v}
    changed = []
    for flag, field in FIELDS.items():
        dest = flag[2:].replace("-", "_")
        if dest in given and getattr(args, dest) != saved.get(field):
            changed.append(f"{flag} {getattr(args, dest)!r} (saved {saved.get(field)!r})")
    for flag, (field, on) in SWITCHES.items():
        if flag[2:].replace("-", "_") in given and saved.get(field) != on:
            changed.append(f"{flag} (saved {field}={saved.get(field)!r})")
    if changed:
        raise ValueError(f"--resume keeps the saved settings of {str(out)!r}; only --steps may "
                         f"change, got {', '.join(changed)}")


def check(args):
    """Every flag, the training set and the output folder, before TensorFlow loads and before
    anything is written."""
    from .. import _checks as c

    if args.out is not None and args.output is not None and args.out != args.output:
        raise ValueError(f"OUT {args.out!r} and --output {args.output!r} name two folders: give one")
    args.out = args.out if args.out is not None else args.output
    if args.out is None:
        raise ValueError("no output folder: give OUT (forse train DATA OUT) or -o/--output")
    _check_numbers(args)
    out = Path(args.out)
    c.output_folder(out, "OUT", overwrite=True)  # not a file, inside a writable folder
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if args.resume:
        _check_resume(args, out)
    else:
        _check_data(args)
        for ext in (".keras", ".json") if out.is_dir() else ():
            c.output_file(out / f"{args.name}{ext}", "--name", overwrite=args.overwrite)
        if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()) \
                and not args.overwrite:
            raise FileExistsError(f"OUT {args.out!r} already holds checkpoints; pass --resume to "
                                  "continue or --overwrite to start again")


def run(args):
    check(args)
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
        mixed_precision=args.mixed_precision, deterministic=args.deterministic,
        conditional=args.conditional, minkowski_weight=args.minkowski_weight,
        spectrum_weight=args.spectrum_weight, name=args.name)
    if args.resume and (Path(args.out) / "config.json").is_file():
        cfg = None  # the saved settings; only --steps may change
    command = "forse train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else None
    summary = train(args.data, args.out, cfg, resume=args.resume, overwrite=args.overwrite,
                    steps=args.steps,
                    progress=not args.quiet, command=command)
    print(json.dumps(summary, indent=2))
    model = Path(summary["model"])
    print(f"wrote {model}, {model.with_suffix('.json')}, {Path(args.out) / 'summary.json'}, "
          f"log.csv, loss.png and checkpoints/ in {args.out}")
    return 0
