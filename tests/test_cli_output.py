"""What the command line prints: on stderr only forse's own lines (no TensorFlow/absl/oneDNN/CUDA
start-up lines unless asked for), progress as plain lines in a log, and every command ends by
naming what it wrote."""
import io as stdio
import os
import re
import subprocess
import sys

import pytest

from forse import _log, io
from gan_data import write_set
from test_extend import FWHM_HR, FWHM_LR, NSIDE, PX, save_tiny_models

PROGRESS = re.compile(r"^forse (extend|train): +\d+% ")


def forse(*args, env=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", _log.LEVEL_VAR)} | (env or {})
    env["OMP_NUM_THREADS"] = "1"
    r = subprocess.run([sys.executable, "-m", "forse", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def foreign(stderr, own=PROGRESS):
    """stderr lines that are not forse's progress lines."""
    return [line for line in stderr.splitlines() if line.strip() and not own.match(line)]


@pytest.fixture(scope="module")
def extend_input(tmp_path_factory):
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    d = tmp_path_factory.mktemp("cli")
    model = save_tiny_models(d, PX, FWHM_HR, FWHM_LR, 20)
    io.write_map(d / "in.fits", smooth(synthetic_dust(NSIDE, seed=5, fwhm_arcmin=FWHM_HR),
                                       FWHM_LR), header={"UNIT": "uK_CMB"})
    return d, ["--input-fwhm", FWHM_LR, "--nside", NSIDE, "--model", model]


def test_extend_prints_only_its_own_lines(extend_input, tmp_path):
    d, opts = extend_input
    r = forse("extend", d / "in.fits", "-o", tmp_path / "out.fits", *opts)
    assert foreign(r.stderr) == [], r.stderr
    assert "\r" not in r.stderr  # a log gets lines, not a carriage-return animation
    steps = [int(line.split("%")[0].split()[-1]) for line in r.stderr.splitlines()]
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) >= 5, steps
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'out.fits'}"
    # --verbose and FORSE_LOG_LEVEL=INFO let TensorFlow's lines through (this TF prints some)
    loud = forse("extend", d / "in.fits", "-o", tmp_path / "b.fits", *opts, "--quiet",
                 "--verbose")
    assert foreign(loud.stderr)
    loud = forse("extend", d / "in.fits", "-o", tmp_path / "c.fits", *opts, "--quiet",
                 env={_log.LEVEL_VAR: "INFO"})
    assert foreign(loud.stderr)


def test_train_prints_only_its_own_lines(tmp_path):
    write_set(tmp_path, npix=32)
    r = forse("train", tmp_path, tmp_path / "run", "--steps", 4, "--patch-size", 16, "--width",
              0.125, "--batch-size", 4, "--checkpoint-every", 4, "--val-patches", 1)
    assert foreign(r.stderr) == [], r.stderr
    assert r.stdout.splitlines()[-1].startswith(f"wrote {tmp_path / 'run' / 'generator.keras'}")


def test_demo_prints_only_its_own_lines(tmp_path):
    """The bundled models at their smallest Nside (1024), intensity only, no validation."""
    out = tmp_path / "demo"
    r = forse("demo", "-o", out, "--nside", 1024, "--stokes", "T", "--no-validate")
    assert foreign(r.stderr) == [], r.stderr
    last = r.stdout.splitlines()[-1]
    assert "wrote" in last and str(out / "forse_T_nside1024.fits") in last
    _, head = io.read_map(out / "forse_T_nside1024.fits")
    assert head["UNIT"] == "uK_CMB" and head["REFFREQ"] == 353.0


def test_native_stderr_keeps_other_lines(capfd):
    with _log.quiet_native_stderr():
        os.write(2, b"I0000 00:00:1796299872.507833   17539 cudart_stub.cc:31] Could not find\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are\n")
        os.write(2, b"a native message of another library\n")
        print("python's own line", file=sys.stderr)
    err = capfd.readouterr().err
    assert "cudart_stub" not in err and "absl::" not in err
    assert "a native message of another library" in err and "python's own line" in err


def test_line_bar_prints_a_line_every_five_percent():
    out = stdio.StringIO()
    bar = _log.LineBar(total=200, desc="job", file=out)
    for _ in range(200):
        bar.update()
        bar.set_postfix(x=1)  # a redraw that passes no step prints nothing
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 21, lines
    assert lines[0].startswith("job:   0%") and lines[-1].startswith("job: 100%")


def test_extend_unit_and_header(extend_input, tmp_path):
    """--unit converts at the reference frequency (extend is linear in the input's scale), and
    the header records the unit, REFFREQ, the beams and the hand-over multipoles."""
    import numpy as np

    from forse import units

    d, opts = extend_input
    forse("extend", d / "in.fits", "-o", tmp_path / "cmb.fits", *opts, "--quiet", "--freq", 353)
    forse("extend", d / "in.fits", "-o", tmp_path / "rj.fits", *opts, "--quiet",
          "--unit", "uK_RJ", "--freq", 353)
    a, ha = io.read_map(tmp_path / "cmb.fits")
    b, hb = io.read_map(tmp_path / "rj.fits")
    assert ha["UNIT"] == "uK_CMB" and hb["UNIT"] == "uK_RJ" and hb["REFFREQ"] == 353.0
    f = units.factor("uK_CMB", "uK_RJ", 353.0)
    np.testing.assert_allclose(b, f * a, rtol=1e-4, atol=1e-5 * np.abs(f * a).max())
    assert hb["INFWHM"] == FWHM_LR and hb["OUTFWHM"] == FWHM_HR
    assert 2 <= hb["ELLKEEP"] < hb["ELLGEN"] <= 3 * NSIDE
    r = subprocess.run([sys.executable, "-m", "forse", "extend", d / "in.fits", "-o",
                        tmp_path / "x.fits", *map(str, opts), "--unit", "MJy/sr"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--freq" in r.stderr


def test_flags_are_spelled_alike_across_commands():
    """-o/--output, --quiet (with its old --no-progress spelling) and --backend mean the same in
    every command that has them."""
    import argparse

    from forse.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {name: {s for a in p._actions for s in a.option_strings}
             for name, p in sub.choices.items()}
    for name in ("extend", "demo", "validate", "training-set", "train"):
        assert {"--quiet", "-o", "--output"} <= flags[name], name
    for name in ("validate", "train"):
        assert "--no-progress" in flags[name], name  # the old spelling still works
    for name in ("extend", "demo", "validate", "training-set"):
        assert "--backend" in flags[name], name
    assert "--out-dir" in flags["validate"]
    args = sub.choices["validate"].parse_args(["m.fits", "--out-dir", "d", "--no-progress"])
    assert args.output == "d" and args.quiet
