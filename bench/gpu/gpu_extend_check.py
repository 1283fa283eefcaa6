"""Whole ``forse extend`` T run at Nside 2048 with a paper-size generator (width 1.0), timed from
the command line as a user runs it: TensorFlow start-up, FITS read, smoothing, projection,
inference, normalization, back-projection and FITS write included. Issue 5's CUDA target is
<= 30 s on one GPU.

The paper-size generator is built untrained (random weights, the bundled dust-T card with
width 1.0): run time does not depend on the weights. ``--width 0.25`` runs the bundled
model's size instead, to try the script on a CPU.

    python bench/gpu/gpu_extend_check.py --json bench/out/gpu_extend.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nside", type=int, default=2048)
    ap.add_argument("--width", type=float, default=1.0, help="generator width (1.0 = paper)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from forse import gan, io
    from forse.gan.networks import build_generator
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    work = tempfile.mkdtemp(prefix="forse_gpu_extend_")
    card = dict(gan.load_generator("dust-T").card)
    card.update(name=f"paper-width-{args.width:g}-untrained", width=args.width, metrics={},
                training={"note": "untrained: timing only"})
    model_path = os.path.join(work, "paper-T.keras")
    gan.save_generator(build_generator(None, width=args.width), model_path, card)
    src = os.path.join(work, "in.fits")
    io.write_map(src, smooth(synthetic_dust(args.nside, seed=0, fwhm_arcmin=12.0), 80.0))
    cmd = [sys.executable, "-m", "forse", "extend", src, "-o", os.path.join(work, "out.fits"),
           "--nside", str(args.nside), "--model", model_path, "--batch-size",
           str(args.batch_size), "--overwrite"]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    print(run.stdout[-3000:], run.stderr[-3000:] if run.returncode else "")
    gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.strip() \
        if shutil.which("nvidia-smi") else ""
    res = {"command": "python bench/gpu/gpu_extend_check.py " + " ".join(sys.argv[1:]),
           "extend_command": " ".join(cmd), "returncode": run.returncode,
           "wall_s": round(wall, 2), "width": args.width, "nside": args.nside, "gpu": gpus,
           "target": "<= 30 s on one GPU (issue 5)"}
    print(json.dumps(res, indent=1))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
