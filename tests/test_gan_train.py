"""Training: a few steps of tiny networks, checkpoints, exact resume (also after SIGKILL)."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from forse.gan import TrainConfig, checkpoints, load_generator, train  # noqa: E402
from forse.gan.train import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from gan_data import TINY, write_set  # noqa: E402


def _log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _weights(path):
    return [np.asarray(w) for w in load_generator(path).model.get_weights()]


def test_train_writes_everything(data, tmp_path):
    s = train(data, tmp_path, TrainConfig(steps=8, name="tiny", **TINY), progress=False,
              command="forse train test")
    assert s["steps"] == 8 and s["resumed_from"] == 0
    for f in ("config.json", "log.csv", "loss.png", "tiny.keras", "tiny.json", "summary.json"):
        assert (tmp_path / f).is_file(), f
    rows = _log(tmp_path / "log.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["g_loss"])) for r in rows)
    scored = [r for r in rows if r["score"]]
    assert [int(r["step"]) for r in scored] == [4, 8]
    assert all(0 <= float(r[k]) <= 1 for r in scored for k in ("v0", "v1", "v2"))
    # kept: the last `keep` checkpoints and the best one
    steps = [s for s, _ in checkpoints.list_checkpoints(tmp_path / "checkpoints")]
    assert steps == [4, 8]
    best = checkpoints.read_best(tmp_path / "checkpoints")
    assert best["step"] in steps
    card = json.loads((tmp_path / "tiny.json").read_text())
    for k in ("patch_size", "pixel_arcmin", "fwhm_hr_arcmin", "fwhm_lr_arcmin", "stokes", "width",
              "stochastic", "normalization", "training", "metrics", "forse_version"):
        assert k in card, k
    assert card["training"]["command"] == "forse train test"
    assert card["training"]["data_seed"] == 0 and card["training"]["steps"] == 8
    assert card["metrics"]["checkpoint_step"] == best["step"]
    assert set(card["metrics"]["test"]) == {"v0", "v1", "v2", "score"}
    assert card["metrics"]["validation"]["score"] == pytest.approx(best["score"])
    # the checkpoint choice and the card use the standardized (nu) metric, min-max and ceiling beside
    assert card["metrics"]["metric"].startswith("nu") and best["metrics"]["variant"] == "nu"
    for k in ("test_minmax", "test_ceiling"):
        assert set(card["metrics"][k]) == {"v0", "v1", "v2", "score"}
    # held-out bookkeeping: this set records no sky, so its seed is taken as the sky seed
    assert card["training"]["sky_seeds"] == [0] and "assumed" in card["training"]["sky"]
    tp = card["training"]["test_patches"]
    assert len(tp["lon_deg"]) == len(tp["lat_deg"]) == 8 and tp["npix"] == 32


def test_same_seed_same_model_other_seed_differs(data, tmp_path):
    a = train(data, tmp_path / "a", TrainConfig(steps=4, **TINY), progress=False)
    b = train(data, tmp_path / "b", TrainConfig(steps=4, **TINY), progress=False)
    c = train(data, tmp_path / "c", TrainConfig(steps=4, seed=1, **TINY), progress=False)
    wa, wb, wc = _weights(a["model"]), _weights(b["model"]), _weights(c["model"])
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert not all(np.array_equal(x, y) for x, y in zip(wa, wc))


def test_resume_equals_uninterrupted(data, tmp_path):
    cfg = dict(TINY, stochastic=True, swap_prob=0.3, d_steps=2)
    full = train(data, tmp_path / "full", TrainConfig(steps=12, **cfg), progress=False)
    part = train(data, tmp_path / "part", TrainConfig(steps=8, **cfg), progress=False)
    assert part["steps"] == 8
    resumed = train(data, tmp_path / "part", TrainConfig(steps=12, **cfg), resume=True,
                    progress=False)
    assert resumed["resumed_from"] == 8 and resumed["steps"] == 12
    card = json.loads((tmp_path / "part" / "generator.json").read_text())
    assert card["training"]["steps"] == 12 and card["training"]["resumes"] == []
    for x, y in zip(_weights(full["model"]), _weights(resumed["model"])):
        np.testing.assert_array_equal(x, y)
    full_log = (tmp_path / "full" / "log.csv").read_text().splitlines()
    part_log = (tmp_path / "part" / "log.csv").read_text().splitlines()
    strip = lambda lines: [line.rsplit(",", 1)[0] for line in lines]  # noqa: E731 (drop seconds)
    assert strip(full_log) == strip(part_log)


def test_checkpoint_restores_every_stream(data):
    from forse.gan.train import Batches, prepare

    cfg = TrainConfig(steps=4, **TINY).check()
    x, y, _ = prepare(data, "train", cfg)
    batches = Batches(x, y, cfg)
    t = Trainer(cfg)
    t.train_step(batches)
    arrays, meta = t.state()
    meta = json.loads(json.dumps(meta))  # as written to meta.json
    after = t.train_step(batches), [v.numpy().copy() for v in t.D.variables]
    u = Trainer(cfg)
    u.restore(arrays, meta)
    assert u.step == 1
    again = u.train_step(batches), [v.numpy().copy() for v in u.D.variables]
    assert after[0] == again[0]
    for p, q in zip(after[1], again[1]):
        np.testing.assert_array_equal(p, q)


def test_labels_smoothing_and_swaps():
    t = Trainer(TrainConfig(**TINY))
    real, fake = (np.asarray(v) for v in t._labels(4000))
    assert 0.7 <= real.min() and real.max() <= 1.0 and 0.0 <= fake.min() and fake.max() <= 0.3
    assert real.std() > 0.05
    t = Trainer(TrainConfig(swap_prob=1.0, **TINY))
    real, fake = (np.asarray(v) for v in t._labels(100))
    assert real.max() <= 0.3 and fake.min() >= 0.7
    t = Trainer(TrainConfig(swap_prob=0.25, label_smoothing=False, **TINY))
    real, fake = (np.asarray(v) for v in t._labels(4000))
    assert set(np.unique(real)) == {0.0, 1.0}
    assert np.mean(real == 0) == pytest.approx(0.25, abs=0.03)
    np.testing.assert_array_equal(real + fake, 1.0)


def test_mixed_precision_steps_are_finite(data, tmp_path):
    s = train(data, tmp_path, TrainConfig(steps=3, mixed_precision=True,
                                          **dict(TINY, checkpoint_every=3)), progress=False)
    assert np.all([np.all(np.isfinite(w)) for w in _weights(s["model"])])


def test_refuses_to_overwrite_and_checks_resume_settings(data, tmp_path):
    train(data, tmp_path, TrainConfig(steps=4, **TINY), progress=False)
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train(data, tmp_path, TrainConfig(steps=4, **TINY), progress=False)
    with pytest.raises(ValueError, match=r"different settings \['width'\]"):
        train(data, tmp_path, TrainConfig(steps=8, **dict(TINY, width=0.25)), resume=True,
              progress=False)
    s = train(data, tmp_path, TrainConfig(steps=4, **TINY), overwrite=True, progress=False,
              command="forse train a b")
    assert s["resumed_from"] == 0
    s = train(data, tmp_path, None, resume=True, steps=6, progress=False,
              command="forse train a b --resume --steps 6")
    assert s["resumed_from"] == 4 and s["steps"] == 6
    card = json.loads((tmp_path / "generator.json").read_text())
    assert card["training"]["command"] == "forse train a b"
    assert card["training"]["resumes"] == ["forse train a b --resume --steps 6"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(patch_size=18), "multiple of 4"),
    (dict(batch_size=0), "batch_size"),
    (dict(swap_prob=1.5), "swap_prob"),
    (dict(input_stokes="I"), "input_stokes"),
    (dict(d_steps=-1), "d_steps"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs).check()


def test_patch_size_larger_than_data(data, tmp_path):
    with pytest.raises(ValueError, match="larger than the training patches"):
        train(data, tmp_path, TrainConfig(steps=2, **dict(TINY, patch_size=64)), progress=False)


def test_missing_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        train(tmp_path, tmp_path / "out", TrainConfig(steps=2, **TINY), progress=False)


def test_checkpoint_files_are_atomic(tmp_path):
    arrays = {"a": np.arange(3.0)}
    for step in (1, 2, 3, 4):
        checkpoints.save(tmp_path, step, arrays, {"x": step})
    checkpoints.write_best(tmp_path, 2, 0.5, {})
    (tmp_path / ".tmp-ckpt-00000005-abc").mkdir()  # what a kill during a write leaves
    (tmp_path / "ckpt-00000006").mkdir()  # never complete: no files
    assert [s for s, _ in checkpoints.list_checkpoints(tmp_path)] == [1, 2, 3, 4]
    checkpoints.prune(tmp_path, keep=1)
    assert [s for s, _ in checkpoints.list_checkpoints(tmp_path)] == [2, 4]
    checkpoints.clean_temporaries(tmp_path)
    assert not (tmp_path / ".tmp-ckpt-00000005-abc").exists()
    a, meta = checkpoints.load(checkpoints.latest(tmp_path))
    assert meta == {"x": 4, "step": 4}
    np.testing.assert_array_equal(a["a"], arrays["a"])


def _cli(data, out, steps, *extra):
    return [sys.executable, "-m", "forse", "train", str(data), str(out), "--steps", str(steps),
            "--patch-size", "16", "--width", "0.125", "--batch-size", "4", "--checkpoint-every",
            "25", "--keep", "100", "--val-patches", "1", "--deterministic", "--no-progress", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_checkpoint(data, tmp_path):
    """Kill `forse train` with SIGKILL mid-run; --resume goes on from the last checkpoint and
    ends with the same model as an uninterrupted run."""
    steps = 300
    ck = tmp_path / "run" / "checkpoints"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(_cli(data, tmp_path / "run", steps), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = checkpoints.list_checkpoints(ck)
        if found and found[-1][0] >= 25:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    killed_at = checkpoints.list_checkpoints(ck)[-1][0]
    assert 25 <= killed_at < steps
    assert not (tmp_path / "run" / "generator.keras").exists()

    res = subprocess.run(_cli(data, tmp_path / "run", steps, "--resume"), env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.JSONDecoder().raw_decode(res.stdout[res.stdout.index("{"):])[0]
    assert summary["resumed_from"] == killed_at and summary["steps"] == steps
    log_steps = [int(r["step"]) for r in _log(tmp_path / "run" / "log.csv")]
    assert log_steps == sorted(set(log_steps)) and log_steps[-1] == steps  # no duplicated rows

    ref = subprocess.run(_cli(data, tmp_path / "ref", steps), env=env, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    for x, y in zip(_weights(tmp_path / "run" / "generator.keras"),
                    _weights(tmp_path / "ref" / "generator.keras")):
        np.testing.assert_array_equal(x, y)


def test_polarization_sets_select_by_component(tmp_path):
    from forse.gan.train import read_split

    write_set(tmp_path, npix=16, counts=(8, 4, 4), stokes="QU")
    q, attrs = read_split(tmp_path, "train", "Q")
    u, _ = read_split(tmp_path, "train", "U")
    assert attrs["stokes"] == "QU" and len(q["lr"]) == len(u["lr"]) == 4
    import h5py

    with h5py.File(tmp_path / "train.h5") as f:
        np.testing.assert_array_equal(q["lr"], f["lr"][0::2])
        np.testing.assert_array_equal(u["target"], f["target"][1::2])
    with pytest.raises(ValueError, match="holds no 'T' inputs"):
        read_split(tmp_path, "train", "T")
    s = train(tmp_path, tmp_path / "out", TrainConfig(steps=2, input_stokes="U",
                                                      **dict(TINY, checkpoint_every=2)),
              progress=False)
    assert json.loads((tmp_path / "out" / "generator.json").read_text())["stokes"] == "U"
    assert s["steps"] == 2
    with pytest.raises(ValueError, match="target_stokes"):
        train(tmp_path, tmp_path / "o2", TrainConfig(steps=2, target_stokes="Q", **TINY),
              progress=False)


def test_rate_from_log_skips_resume_restarts():
    from forse.gan.train import _rate_from_log

    rows = [{"step": s, "seconds": t} for s, t in ((10, 5.0), (20, 10.0), (30, 15.0), (40, 1.0),
                                                  (50, 6.0))]
    assert _rate_from_log(rows) == pytest.approx(30 / 15.0)
    assert np.isnan(_rate_from_log(rows[:1]))


@pytest.mark.slow
def test_xla_steps_are_finite(data, tmp_path):
    s = train(data, tmp_path, TrainConfig(steps=2, jit_compile=True,
                                          **dict(TINY, checkpoint_every=2)), progress=False)
    assert np.all([np.all(np.isfinite(w)) for w in _weights(s["model"])])


def test_sky_provenance_of_training_sets():
    """The card's training.sky_seeds: the synthetic sky's seed when the set records it, none for
    a user map, the set's seed for sets that predate the record."""
    from forse.gan.train import _sky_provenance

    assert _sky_provenance({"seed": 2, "sky": "synthetic", "sky_seed": 5}) == ([5], "synthetic")
    assert _sky_provenance({"seed": 2, "sky": "gnilc.fits"}) == ([], "gnilc.fits")
    seeds, sky = _sky_provenance({"seed": 2})
    assert seeds == [2] and "assumed" in sky
    assert _sky_provenance({})[0] == []


def test_sky_version_of_training_sets():
    """The card's training.sky_version: recorded by sets since version 2 existed; a synthetic
    set from before is version 1; a user map has none."""
    from forse.gan.train import _sky_version

    assert _sky_version({"sky": "synthetic", "sky_seed": 5, "sky_version": 2}) == 2
    assert _sky_version({"sky": "synthetic", "sky_seed": 5}) == 1
    assert _sky_version({"seed": 2}) == 1
    assert _sky_version({"sky": "gnilc.fits"}) is None


def test_bundled_cards_name_their_sky_version():
    from forse.gan import load_generator

    for name in ("dust-T", "dust-Q", "dust-U"):
        _, card = load_generator(name, with_card=True)
        assert card["training"]["sky_version"] == 1
