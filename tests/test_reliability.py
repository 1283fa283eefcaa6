"""Hostile input (issues 12 and 18): every argument and file checked before the work (and before
TensorFlow loads), one-line errors that name the flag or argument and the value, outputs that are
never lost to a race, a full disk or Ctrl-C, and models whose cards are checked."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from forse import _atomic, _checks, io
from forse.cli import main

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
# runs the CLI in a fresh interpreter and says whether TensorFlow was imported
CLI = ("import sys; from forse.cli import main; rc = main(sys.argv[1:]); "
       "print('tensorflow' in sys.modules); sys.exit(rc)")


def cli(args, cwd, env=None, timeout=300):
    """(exit code, stdout, stderr) of ``forse ARGS`` in a subprocess."""
    r = subprocess.run([sys.executable, "-c", CLI, *map(str, args)], cwd=cwd, text=True,
                       capture_output=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


def one_line_error(err, *words):
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("forse "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def sky64(tmp_path_factory):
    """A T map at Nside 64 (480' beam) on disk."""
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    d = tmp_path_factory.mktemp("sky")
    m = smooth(synthetic_dust(64, seed=5, fwhm_arcmin=120.0), 480.0)
    io.write_map(d / "sky.fits", m)
    return d / "sky.fits"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from test_extend import FWHM_HR, FWHM_LR, PX, save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("tiny"), PX, FWHM_HR, FWHM_LR, 20)


# ------------------------------------------------------------------ 12.1: the command says it
def test_extend_command_says_it_masked_extreme_pixels(sky64, tiny, tmp_path):
    """The API behaviour is tested in test_extend.py (output > 5 deg away unchanged to 1 % of
    the small-scale RMS); here: the command's user is told, and the run succeeds."""
    m, _ = io.read_map(sky64)
    m[1000] = 1e30
    io.write_map(tmp_path / "hot.fits", m)
    rc, out, err = cli(["extend", "hot.fits", "-o", "out.fits", "--model", tiny, "--nside", "64",
                        "--input-fwhm", "480", "--quiet"], tmp_path)
    assert rc == 0, err[-2000:]
    assert "1 isolated extreme pixel(s) masked as spikes" in err
    assert io.read_map(tmp_path / "out.fits")[0][1000] == -1.6375e30  # UNSEEN there


# ------------------------------------------------------- 12.2, 12.8, 13.4: checks first
@pytest.mark.parametrize("args, words", [
    (["--nside", "256"], ["--nside 256", "1024"]),          # the bundled 12' models
    (["--nside", "100"], ["--nside", "power of two", "100"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--size", "0"], ["--size", "0"]),
    (["--overlap", "30"], ["--overlap", "30"]),
    (["--input-fwhm", "5"], ["--input-fwhm", "12'"]),
    (["--model", "dust3-T"], ["--input-fwhm 80'", "far coarser", "'dust3-T'", "--fwhm-out 3"]),
    (["--fwhm-out", "3", "--input-fwhm", "120"],
     ["--input-fwhm 120 is coarser than the chain supports", "'dust-T' takes maps at 80'"]),
    (["--fwhm-out", "3", "--input-fwhm", "3"], ["already as sharp as the last stage's output"]),
    (["--fwhm-out", "3", "--nside", "2048"], ["--nside 2048", "3' beam", "--nside 4096"]),
    (["--realizations", "0"], ["--realizations", "0"]),
    (["-o", "missing/out.fits"], ["--output", "'missing'", "does not exist"]),
    (["-o", "."], ["--output", "is a folder"]),
])
def test_extend_checks_everything_before_tensorflow(sky64, tmp_path, args, words):
    base = ["extend", sky64, "-o", "out.fits"]
    rc, out, err = cli(base + args, tmp_path)
    assert rc == 2 and out.strip() == "False"  # refused before TensorFlow was imported
    one_line_error(err, *words)
    assert not (tmp_path / "out.fits").exists()


def test_extend_refuses_its_input_as_output_and_existing_output(sky64, tmp_path):
    rc, out, err = cli(["extend", sky64, "-o", sky64], tmp_path)
    assert rc == 2 and out.strip() == "False"
    one_line_error(err, "--output", "also an input", "--overwrite")
    (tmp_path / "x.fits").write_text("keep")
    rc, out, err = cli(["extend", sky64, "-o", "x.fits"], tmp_path)
    one_line_error(err, "--output 'x.fits' exists", "--overwrite")
    assert (tmp_path / "x.fits").read_text() == "keep"


def test_unwritable_or_full_output_folder_is_refused_before_the_work(tmp_path, monkeypatch,
                                                                       capsys):
    # root may write anywhere: the two conditions are simulated
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode & os.W_OK
                        else real(p, mode, **k))
    assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"]) == 2
    one_line_error(capsys.readouterr().err, "--output", "not writable")
    monkeypatch.setattr(os, "access", real)
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 1000))
    assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"]) == 2
    one_line_error(capsys.readouterr().err, "--output", "MB free")
    assert not any(tmp_path.iterdir())


def test_write_time_oserror_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "_write_rows", full)
    assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"]) == 2
    one_line_error(capsys.readouterr().err, "a.fits': No space left on device")
    assert not any(tmp_path.iterdir())  # neither the file nor its temporary
    monkeypatch.setenv("FORSE_DEBUG", "1")  # the traceback on request
    with pytest.raises(OSError, match="No space left"):
        main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"])
    with pytest.raises(OSError, match="No space left"):
        main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16", "--debug"])


def test_demo_checks_before_the_sky_and_leaves_no_folder(tmp_path):
    for args, words in ((["--nside", "512"], ["--nside 512", "1024"]),
                        (["--nside", "1024", "--input-fwhm", "5"], ["--input-fwhm", "5"]),
                        (["--nside", "1024", "--seed", "-1"], ["--seed", "-1"])):
        rc, out, err = cli(["demo", "-o", "d"] + args, tmp_path)
        assert rc == 2 and out.strip() == "False"
        one_line_error(err, *words)
        assert not (tmp_path / "d").exists()


def test_sky_checks_before_writing(tmp_path, capsys):
    for args, words in ((["--depth", "-1"], ["--depth", "-1"]),
                        (["--variance", "a.fits"], ["--variance", "also --output"]),
                        (["--nside", "-256"], ["--nside", "-256", "power of two"]),
                        (["--nside", str(2**30)], ["--nside", str(2**30)])):
        assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"]
                    + [a if a != "a.fits" else str(tmp_path / a) for a in args]) == 2
        one_line_error(capsys.readouterr().err, *words)
        assert not any(tmp_path.iterdir())


def test_help_states_the_nside_range():
    from forse.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("extend", "demo"):
        text = " ".join(sub[name].format_help().split())
        assert "1024 or more" in text and "8192" in text


class Loaded(Exception):
    """Raised instead of loading the generators: every check before that point has passed."""


@pytest.fixture
def stop_at_load(monkeypatch):
    from forse import extend as ext

    def stop(*a, **k):
        raise Loaded

    monkeypatch.setattr(ext, "load_models", stop)
    return ext


def test_extend_api_warns_when_it_changes_the_nside(tiny, stop_at_load):
    from forse.sky import synthetic_dust

    ext = stop_at_load
    m = synthetic_dust(64, seed=1, fwhm_arcmin=480.0)
    with pytest.raises(ValueError, match="`nside_out`=32 has"):  # up front, before the work
        ext.extend(m, input_fwhm_arcmin=480.0, model=tiny, nside_out=32, progress=False,
                   comm=None)
    with pytest.warns(UserWarning, match="`m` has Nside 64; the output has Nside 2048"), \
            pytest.raises(Loaded):
        ext.extend(m, input_fwhm_arcmin=480.0, model=tiny, progress=False, comm=None)
    with pytest.raises(Loaded):  # asked for: no warning
        ext.extend(m, input_fwhm_arcmin=480.0, model=tiny, nside_out=64, progress=False,
                   comm=None)


# ------------------------------------------------------------ 12.3, 12.5: the write path
WRITER = """
import sys, time
import numpy as np
from forse import io
orig = io._write_rows
def slow(*a, **k):
    orig(*a, **k)
    time.sleep(1.0)  # both writers are past the existence check before either publishes
io._write_rows = slow
while time.time() < float(sys.argv[2]):
    time.sleep(0.01)
try:
    io.write_map(sys.argv[1], np.full(12 * 16 * 16, float(sys.argv[3])))
    print("ok")
except FileExistsError as e:
    print("refused", e)
"""


def test_two_writers_cannot_both_succeed_without_overwrite(tmp_path):
    path = tmp_path / "m.fits"
    start = time.time() + 5.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start), str(v)],
                              stdout=subprocess.PIPE, text=True) for v in (1, 2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sorted(o.split()[0] for o in outs) == ["ok", "refused"], outs
    winner = 1.0 if outs[0].startswith("ok") else 2.0
    assert np.all(io.read_map(path)[0] == winner)  # the file is the one writer that succeeded
    assert [p.name for p in tmp_path.iterdir()] == ["m.fits"]  # no temporary left


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    path = tmp_path / "m.fits"
    stale = tmp_path / ".m.fits.abcd1234.tmp.fits"
    live = tmp_path / ".m.fits.efgh5678.tmp.fits"  # newer than this process: maybe a live write
    other = tmp_path / ".n.fits.abcd1234.tmp.fits"  # another file's
    for p in (stale, live, other):
        p.write_bytes(b"x" * 100)
    old = _atomic._STARTED - 3600
    for p in (stale, other):
        os.utime(p, (old, old))
    os.utime(live, (_atomic._STARTED + 60, _atomic._STARTED + 60))
    held = tmp_path / ".m.fits.ijkl9012.tmp.fits"  # old, but a running write holds its lock
    held.write_bytes(b"x")
    os.utime(held, (old, old))
    import fcntl

    with open(held, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        io.write_map(path, np.zeros(12 * 4 * 4))
    assert not stale.exists() and path.exists()
    assert live.exists() and other.exists() and held.exists()


# ------------------------------------------------------------------ 12.4: validate
def test_validate_refuses_a_non_empty_output_folder(sky64, tmp_path, capsys):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "report.html").write_text("old")
    assert main(["validate", str(sky64), "-o", str(tmp_path / "v")]) == 2
    one_line_error(capsys.readouterr().err, "--out-dir", "not empty", "--overwrite")
    assert (tmp_path / "v" / "report.html").read_text() == "old"


def test_validate_checks_lmax_and_seam_tiling_first(sky64, tmp_path, capsys):
    assert main(["validate", str(sky64), "-o", str(tmp_path / "v"), "--lmax", "100000"]) == 2
    one_line_error(capsys.readouterr().err, "--lmax", "100000", "[2, 256]")
    assert main(["validate", str(sky64), "-o", str(tmp_path / "v"), "--seam-tiling", "20"]) == 2
    one_line_error(capsys.readouterr().err, "--seam-tiling", "'size_deg,overlap_deg'")
    assert not (tmp_path / "v").exists()


# ------------------------------------------------------------------ 12.6: the messages
def test_fits_reading_errors_name_the_file_and_what_is_wrong(tmp_path, capsys):
    from astropy.io import fits

    io.write_map(tmp_path / "ok.fits", np.arange(12 * 16 * 16, dtype=float))
    data = (tmp_path / "ok.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(data[:-2880])
    with pytest.raises(ValueError, match="'.*cut.fits' is truncated"):
        io.read_map(tmp_path / "cut.fits")
    col = fits.Column(name="T", format="D", array=np.zeros(1000))
    h = fits.BinTableHDU.from_columns([col])
    h.header.update(NSIDE=16, ORDERING="RING", PIXTYPE="HEALPIX")
    h.writeto(tmp_path / "wrong.fits")
    with pytest.raises(ValueError, match="holds 1000 pixels per field but its NSIDE keyword "
                                         "says 16"):
        io.read_map(tmp_path / "wrong.fits")
    with pytest.raises(ValueError, match="is a folder, expected a file"):
        io.read_map(tmp_path)
    assert capsys.readouterr().out == ""  # nothing from healpy on stdout
    assert main(["mask", str(tmp_path / "cut.fits"), str(tmp_path / "ok.fits"), "-o",
                 str(tmp_path / "m.fits")]) == 2
    one_line_error(capsys.readouterr().err, "cut.fits", "truncated")


def test_validate_names_a_constant_map(tmp_path):
    from forse.validate import validate

    with pytest.raises(ValueError, match="`map` field 0 is constant"):
        validate(np.zeros(12 * 16 * 16), out_dir=None, figures=False, progress=False)


def test_cli_messages_say_overwrite_flag_not_the_api_argument(sky64, tmp_path, capsys):
    (tmp_path / "m.fits").write_text("x")
    assert main(["mask", str(sky64), str(sky64), "-o", str(tmp_path / "m.fits")]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    (tmp_path / "ts").mkdir()
    (tmp_path / "ts" / "train.h5").write_text("x")
    assert main(["training-set", "-o", str(tmp_path / "ts"), "--nside", "16"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err


# ------------------------------------------------------------------ 12.9, 18.7: one check layer
def test_threads_are_validated_and_capped():
    from forse import minkowski

    x = np.random.default_rng(0).normal(size=(2, 16, 16))
    u = np.linspace(-1, 1, 5)
    for bad in (-1, 1.5, "x", True):
        with pytest.raises(ValueError, match="`nthreads` must be an integer >= 0"):
            minkowski.functionals(x, u, nthreads=bad)
    assert _checks.nthreads(10_000) == _checks.available_cpus()
    many = minkowski.functionals(x, u, nthreads=10**6)
    one = minkowski.functionals(x, u, nthreads=1)
    assert all(np.array_equal(a, b) for a, b in zip(many, one))


def test_absurd_sizes_are_refused_with_the_size():
    from forse import projection

    m = np.zeros(12 * 16 * 16)
    with pytest.raises(ValueError, match="`pixel_arcmin`=1000000.0 makes 20-pixel patches"):
        projection.healpix_to_patches(m, [0.0], [0.0], npix=20, pixel_arcmin=1e6)
    with pytest.raises(ValueError, match=r"`npix`=1048576 needs \d+\.\d GiB"):
        projection.healpix_to_patches(m, [0.0], [0.0], npix=2**20, pixel_arcmin=1e-3)


def test_a_map_too_large_for_this_machine_is_refused_before_the_work(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setattr(_checks, "physical_memory", lambda: 2**30)  # a 1 GiB machine
    assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "2048"]) == 2
    one_line_error(capsys.readouterr().err, "--nside=2048 needs 1.1 GiB", "1.0 GiB of memory")
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------ 12.10: negative intensity
def test_negative_intensity_map_warns(tiny, stop_at_load):
    from forse.sky import synthetic_dust

    ext = stop_at_load
    m = synthetic_dust(64, seed=1, fwhm_arcmin=480.0)
    with pytest.warns(UserWarning, match=r"100% of the intensity pixels are negative"), \
            pytest.raises(Loaded):
        ext.extend(-m, input_fwhm_arcmin=480.0, model=tiny, nside_out=64, progress=False,
                   comm=None)
    with pytest.raises(Loaded):  # the dust sky itself: no warning
        ext.extend(m, input_fwhm_arcmin=480.0, model=tiny, nside_out=64, progress=False,
                   comm=None)


# ------------------------------------------------------------------ 18.1: full disk
FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (200000, 200000))
from forse.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_training_set_on_a_full_disk_fails_cleanly(tmp_path):
    r = subprocess.run([sys.executable, "-c", FULL_DISK, "training-set", "-o", "ts", "--nside",
                        "64", "-n", "60", "--npix", "32", "--pixel", "30", "--fwhm-hr", "60",
                        "--fwhm-lr", "240", "--quiet", "--bmin", "0"], cwd=tmp_path, text=True,
                       capture_output=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]  # not 139 (segmentation fault)
    one_line_error(r.stderr, "train.h5': File too large")
    assert list((tmp_path / "ts").iterdir()) == []  # no temporary left behind


# ------------------------------------------------------------------ 18.2, 18.5, 12.7: train
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A training set and a 4-step run with checkpoints."""
    from gan_data import write_set

    d = tmp_path_factory.mktemp("train")
    (d / "set").mkdir()
    write_set(d / "set", npix=32)
    assert main(["train", str(d / "set"), str(d / "run"), "--steps", "4", "--patch-size", "16",
                 "--width", "0.0625", "--batch-size", "4", "--checkpoint-every", "2",
                 "--val-patches", "4", "--no-progress"]) == 0
    return d


@pytest.mark.parametrize("extra, words", [
    (["--batch-size", "8"], ["--batch-size 8 (saved 4)", "only --steps"]),
    (["--width", "0.5"], ["--width 0.5 (saved 0.0625)"]),
    (["--stochastic"], ["--stochastic"]),
])
def test_resume_refuses_changed_settings(run_folder, capsys, extra, words):
    d = run_folder
    assert main(["train", str(d / "set"), str(d / "run"), "--resume", "--steps", "6"]
                + extra) == 2
    one_line_error(capsys.readouterr().err, *words)


def test_resume_needs_checkpoints(run_folder, tmp_path, capsys):
    from forse.gan import TrainConfig, train

    assert main(["train", str(run_folder / "set"), str(tmp_path / "new"), "--resume"]) == 2
    one_line_error(capsys.readouterr().err, "--resume", "no checkpoint")
    with pytest.raises(FileNotFoundError, match="`resume`: .* no checkpoint"):
        train(run_folder / "set", tmp_path / "new", TrainConfig(steps=2), resume=True,
              progress=False)
    assert not (tmp_path / "new").exists()


def test_train_name_cannot_escape_the_output_folder(run_folder, tmp_path, capsys):
    from forse.gan import TrainConfig

    assert main(["train", str(run_folder / "set"), str(tmp_path / "out"), "--name",
                 "../../escaped"]) == 2
    one_line_error(capsys.readouterr().err, "--name", "'../../escaped'", "plain file name")
    with pytest.raises(ValueError, match="`name` must be a plain file name"):
        TrainConfig(name="../x").check()
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped.keras").exists()


def test_train_does_not_replace_an_existing_model(run_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "generator.keras").write_text("mine")
    assert main(["train", str(run_folder / "set"), str(out), "--steps", "2"]) == 2
    one_line_error(capsys.readouterr().err, "generator.keras' exists", "--overwrite")
    assert (out / "generator.keras").read_text() == "mine"


def test_train_bad_data_and_seed_leave_nothing(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train.h5").write_text("not hdf5")
    assert main(["train", str(tmp_path / "bad"), str(tmp_path / "o1")]) == 2
    one_line_error(capsys.readouterr().err, "train.h5", "not a readable HDF5 file")
    assert main(["train", str(tmp_path / "bad"), str(tmp_path / "o2"), "--seed", "-1"]) == 2
    one_line_error(capsys.readouterr().err, "--seed", "-1")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


# ------------------------------------------------------------------ 18.4: model cards
def _card_copy(tiny, tmp_path, **changes):
    """A copy of the tiny T model with its card changed (None removes a field, or the card)."""
    import shutil

    src = Path(tiny)
    dst = tmp_path / "m-T.keras"
    shutil.copy(src, dst)
    card = json.loads(src.with_suffix(".json").read_text())
    for k, v in changes.items():
        if k == "card" and v is None:
            return str(dst)
        if v is None:
            card.pop(k)
        elif k == "ell_range":
            card["normalization"]["ell_range"] = v
        else:
            card[k] = v
    dst.with_suffix(".json").write_text(json.dumps(card))
    return str(dst)


@pytest.mark.parametrize("changes, match", [
    (dict(card=None), "has no card"),
    (dict(fwhm_hr_arcmin=None), "no field 'fwhm_hr_arcmin'"),
    (dict(pixel_arcmin=0), "`pixel_arcmin` must be a positive number"),
    (dict(fwhm_hr_arcmin=-1), "`fwhm_hr_arcmin` must be a positive number"),
    (dict(fwhm_hr_arcmin=float("nan")), "`fwhm_hr_arcmin` must be a positive number"),
    (dict(ell_range=[300, 1000]), "below the Nyquist multipole 180"),
    (dict(format="forse-generator-card/2"), "'forse-generator-card/2', which this forse"),
    (dict(format=3), "`format` is 3"),
])
def test_broken_model_cards_are_refused_before_loading(tiny, tmp_path, sky64, changes, match):
    from forse.extend import model_cards

    model = _card_copy(tiny, tmp_path, **changes)
    with pytest.raises(ValueError, match=match):
        model_cards(model, "T", "ratio")
    rc, out, err = cli(["extend", sky64, "-o", "o.fits", "--model", model, "--nside", "64",
                        "--input-fwhm", "480"], tmp_path)
    assert rc == 2 and out.strip() == "False"
    one_line_error(err)


def test_qu_sibling_cards_are_checked(tiny, tmp_path):
    from forse.extend import model_cards

    model = _card_copy(tiny, tmp_path)
    import shutil

    for s in "QU":  # siblings: Q fine, U broken
        shutil.copy(tiny.replace("-T", f"-{s}"), tmp_path / f"m-{s}.keras")
        card = json.loads(Path(tiny.replace("-T", f"-{s}")).with_suffix(".json").read_text())
        if s == "U":
            card["pixel_arcmin"] = 0
        (tmp_path / f"m-{s}.json").write_text(json.dumps(card))
    assert set(model_cards(model, "TQU", "ratio")) == {"T"}  # ratio mode uses T only
    with pytest.raises(ValueError, match="m-U.json.*`pixel_arcmin`"):
        model_cards(model, "TQU", "qu")


def test_default_card_fits_the_training_pixels():
    from forse.gan.models import make_card

    kw = dict(name="x", patch_size=64, fwhm_hr_arcmin=30, fwhm_lr_arcmin=120, input_stokes="T",
              target_stokes="T", width=0.25, stochastic=False, noise_amplitude=0, robust=True,
              percentiles=(0.5, 99.5))
    assert make_card(pixel_arcmin=3.75, **kw)["normalization"]["ell_range"] == [300.0, 1000.0]
    assert make_card(pixel_arcmin=15.0, **kw)["normalization"]["ell_range"] == [75.0, 250.0]


def test_train_on_15_arcmin_pixels_then_extend(tmp_path, capsys):
    """The card `forse train` writes for 15' pixels is one `forse extend` accepts."""
    assert main(["training-set", "-o", str(tmp_path / "ts"), "--nside", "256", "-n", "16",
                 "--npix", "16", "--pixel", "15", "--fwhm-hr", "30", "--fwhm-lr", "120",
                 "--quiet", "--bmin", "0", "--min-coverage", "0.5"]) == 0
    assert main(["train", str(tmp_path / "ts"), str(tmp_path / "run"), "--steps", "2",
                 "--patch-size", "16", "--width", "0.0625", "--batch-size", "4",
                 "--checkpoint-every", "2", "--val-patches", "2", "--no-progress"]) == 0
    from forse.sky import synthetic_dust
    from forse.smoothing import smooth

    io.write_map(tmp_path / "in.fits", smooth(synthetic_dust(256, seed=3, fwhm_arcmin=30.0),
                                              120.0))
    capsys.readouterr()
    assert main(["extend", str(tmp_path / "in.fits"), "-o", str(tmp_path / "out.fits"),
                 "--model", str(tmp_path / "run" / "generator.keras"), "--nside", "256",
                 "--input-fwhm", "120", "--quiet"]) == 0, capsys.readouterr().err
    out, head = io.read_map(tmp_path / "out.fits")
    assert np.all(np.isfinite(out)) and head["OUTFWHM"] == 30.0


# ------------------------------------------------------------------ 18.3: non-ASCII names
def test_non_ascii_input_name_is_stored_escaped(sky64, tiny, tmp_path, capsys):
    import shutil

    src = tmp_path / "map ☃.fits"
    shutil.copy(sky64, src)
    assert main(["extend", str(src), "-o", str(tmp_path / "out.fits"), "--model", tiny,
                 "--nside", "64", "--input-fwhm", "480", "--quiet"]) == 0
    _, head = io.read_map(tmp_path / "out.fits")
    assert head["INPUT"] == "map \\u2603.fits"
    assert _checks.ascii_text("map ☃.fits").encode("ascii")


# ------------------------------------------------------------------ 18.8: Ctrl-C
SLOW_SKY = """
import sys, time
import forse.sky
def slow(*a, **k):
    print("ready", flush=True)
    time.sleep(600)
forse.sky.synthetic_dust = slow
from forse.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_exits_130_with_one_line(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", SLOW_SKY, "sky", "-o", "a.fits", "--nside", "16"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert err.strip() == "forse sky: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "_write_rows", interrupted)
    assert main(["sky", "-o", str(tmp_path / "a.fits"), "--nside", "16"]) == 130
    assert list(tmp_path.iterdir()) == []


def test_a_card_of_another_format_is_refused_by_every_reader(tiny, tmp_path):
    from forse.gan import load_generator
    from forse.gan.models import load_card

    model = _card_copy(tiny, tmp_path, format="forse-generator-card/2")
    for read in (load_card, load_generator):
        with pytest.raises(ValueError, match=r"\.json'.*forse-generator-card/2"):
            read(model)


def test_one_unseen_rule_is_healpys():
    """_checks.unseen / bad_mask / clean follow healpy's mask_bad rule (within 1e-5 of UNSEEN,
    relative) in both precisions, as the numpy reference and the C++ kernels do."""
    import healpy as hp

    from forse import _checks

    rng = np.random.default_rng()
    for dtype in (np.float32, np.float64):
        rel = rng.uniform(-3e-5, 3e-5, 2000)
        x = np.concatenate([hp.UNSEEN * (1 + rel), rng.normal(size=100), [np.nan, np.inf]])
        x = x.astype(dtype)
        want = np.asarray(hp.mask_bad(x.astype(np.float64)), dtype=bool) | ~np.isfinite(x)
        edge = np.abs(np.abs(rel) - 1e-5) < 3e-7  # float32 rounds the value and the bound
        keep = np.concatenate([~edge, np.ones(102, bool)])
        got = _checks.unseen(x) | ~np.isfinite(x)
        np.testing.assert_array_equal(got[keep], want[keep])
        np.testing.assert_array_equal(_checks.bad_mask(x)[keep], want[keep])
        assert _checks.unseen(np.float32(hp.UNSEEN)) and not _checks.clean(x)
        assert _checks.clean(x[2000:2100])
