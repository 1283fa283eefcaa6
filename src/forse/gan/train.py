"""Adversarial training of the ForSE generator, resumable and seeded.

Data: a training-set folder with ``train.h5`` (and ``validation.h5``, ``test.h5``) as written by
``forse training-set``. The input is the low-resolution patch (``lr``) of ``input_stokes``, the
target the small-scale ratio (``target`` = hr/lr) of ``target_stokes``; both are rescaled to
[-1, 1] per full patch (``forse.normalize.rescale``), then random ``patch_size`` crops, flips and
quarter turns make the batches. Stochastic models get ForSE+ input noise on the full patch.

One step = ``d_steps`` discriminator updates (each on a fresh batch) + ``g_steps`` generator
updates; binary cross-entropy on logits, labels smoothed (real U[0.7, 1], fake U[0, 0.3]) and
swapped per sample with probability ``swap_prob``. Options beyond ForSE (``forse.gan.losses``):
``conditional`` (the discriminator sees the input patch beside the small scales),
``minkowski_weight`` and ``spectrum_weight`` (soft Minkowski functionals and log power of the
generated against the true small scales of the same batch, added to the generator's loss).

Random streams: numpy (batches, crops, noise) and ``tf.random.Generator`` (labels) seeded from
``seed``; dropout uses a seeded Keras seed generator. All of them, both networks and both
optimizers are in every checkpoint, so ``resume`` continues exactly where the checkpoint was
(bit for bit with ``deterministic=True``).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import replacing
from .._checks import file_name, seed
from . import checkpoints
from .models import Generator, add_input_noise, make_card, save_generator

JOINT = "TQU"  # the joint generator's stokes: T, Q, U small scales from T, Q, U inputs
LOG_FIELDS = ("step", "d_loss", "g_loss", "v0", "v1", "v2", "score", "seconds")
METRIC = ("nu: forse.minkowski.score, V0-V2 of (x - mean) / std per patch at 32 thresholds in "
          "[-3, 3], overlap of the mean +- 1 sigma bands")


@dataclass
class TrainConfig:
    patch_size: int = 64
    width: float = 0.25
    batch_size: int = 16
    steps: int = 2000
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    label_smoothing: bool = True
    swap_prob: float = 0.0
    d_steps: int = 1
    g_steps: int = 1
    seed: int = 0
    checkpoint_every: int = 200
    keep: int = 3
    log_every: int = 10
    stochastic: bool = False
    noise_amplitude: float = 0.1
    augment: bool = True
    robust: bool = True
    percentiles: tuple = (0.5, 99.5)
    input_stokes: str = "T"
    target_stokes: str = "T"
    val_patches: int = 32
    jit_compile: bool = False
    mixed_precision: bool = False
    deterministic: bool = False
    conditional: bool = False
    minkowski_weight: float = 0.0
    spectrum_weight: float = 0.0
    name: str = "generator"
    extra: dict = field(default_factory=dict)

    def check(self):
        ints = dict(patch_size=4, batch_size=1, steps=1, d_steps=0, g_steps=1, checkpoint_every=1,
                    keep=1, log_every=1, val_patches=1)
        for k, lo in ints.items():
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"`{k}` must be an integer >= {lo}, got {v!r}")
        if self.patch_size % 4:
            raise ValueError(f"`patch_size` must be a multiple of 4, got {self.patch_size}")
        if not 0 <= self.swap_prob <= 1:
            raise ValueError(f"`swap_prob` must be in [0, 1], got {self.swap_prob!r}")
        if not 0 < self.width <= 8:
            raise ValueError(f"`width` must be in (0, 8], got {self.width!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.beta_1 < 1:
            raise ValueError(f"`beta_1` must be in [0, 1), got {self.beta_1!r}")
        for k in ("noise_amplitude", "minkowski_weight", "spectrum_weight"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"`{k}` must be a finite number >= 0, got {v!r}")
        for k in ("input_stokes", "target_stokes"):
            if getattr(self, k) not in ("T", "Q", "U", JOINT):
                raise ValueError(f"`{k}` must be 'T', 'Q', 'U' or {JOINT!r}, got {getattr(self, k)!r}")
        if (self.input_stokes == JOINT) != (self.target_stokes == JOINT):
            raise ValueError(f"the joint generator takes `input_stokes` and `target_stokes` both "
                             f"{JOINT!r}, got {self.input_stokes!r} and {self.target_stokes!r}")
        if self.joint and self.stochastic:
            raise ValueError("`stochastic` is not supported for the joint T/Q/U generator: ForSE+ "
                             "noise re-scales each channel and would break the shared Q/U scale")
        seed(self.seed, "seed")
        file_name(self.name, "name")  # NAME.keras must land inside the output folder
        return self

    @property
    def joint(self) -> bool:
        """T, Q, U in and out (``forse.gan.train.prepare_joint``)."""
        return self.input_stokes == JOINT

    @property
    def channels(self) -> int:
        return 3 if self.joint else 1

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["percentiles"] = list(self.percentiles)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        d = dict(d)
        if "percentiles" in d:
            d["percentiles"] = tuple(d["percentiles"])
        return cls(**d)


# ---------------------------------------------------------------- data

_COMPONENT = {"T": 0, "Q": 1, "U": 2}


def read_split(folder, split: str, input_stokes: str = "T", datasets=("lr", "target")):
    """``({dataset: (N, n, n) float32}, attrs)`` of the entries of one split whose input is
    ``input_stokes``.

    Files with a ``component`` dataset (0/1/2 = T/Q/U, e.g. ``stokes="QU"`` sets with two entries
    per position) are filtered by it; ``target`` is always the intensity small-scale ratio.
    ``input_stokes="TQU"`` takes every entry of a ``stokes="TQU"`` set (T, Q, U per position, in
    that order; ``read_joint`` groups them).
    """
    from ..data.training_set import TrainingSet

    path = Path(folder) / f"{split}.h5"
    if not path.is_file():
        raise FileNotFoundError(f"training-set split {split!r} not found: {path}")
    with TrainingSet(path, require=tuple(datasets), name="data") as ts:
        attrs, n = ts.attrs, len(ts)
        comp = ts.component if ts.has_component else None
        if input_stokes == JOINT:  # every entry, if they come as T, Q, U per position
            joint = (attrs.get("stokes") == JOINT and comp is not None and n % 3 == 0
                     and np.array_equal(comp, np.tile(np.arange(3), n // 3)))
            if not joint:
                raise ValueError(f"{path} is not a joint T/Q/U training set (stokes="
                                 f"{attrs.get('stokes')!r}); build one with `forse "
                                 "training-set --stokes TQU`")
            rows = np.arange(n)
        elif comp is not None:
            rows = np.flatnonzero(comp == _COMPONENT[input_stokes])
        elif input_stokes == str(attrs.get("stokes", "T")):
            rows = np.arange(n)
        else:
            rows = np.arange(0)
        if rows.size == 0:
            raise ValueError(f"{path} holds no {input_stokes!r} inputs (its stokes attribute is "
                             f"{attrs.get('stokes')!r})")
        out = {}
        for d in datasets:
            a = ts._f[d]
            if a.ndim != 3:
                raise ValueError(f"{path}:{d} has shape {a.shape}, expected (N, n, n)")
            out[d] = np.ascontiguousarray(a[...][rows], dtype=np.float32)
    return out, attrs


def read_joint(folder, split: str, datasets=("lr", "hr")):
    """``(*arrays, attrs)`` of a ``stokes="TQU"`` training set, one ``(N, 3, n, n)`` float32
    stack of T, Q, U patches per position (Q/U in the patch frame) for each of ``datasets``."""
    data, attrs = read_split(folder, split, JOINT, datasets)
    return (*(a.reshape((-1, 3) + a.shape[1:]) for a in (data[k] for k in datasets)), attrs)


def joint_inputs(lr, robust=True, percentiles=(0.5, 99.5), t_scaled=None):
    """The joint generator's input ``(N, 3, n, n)`` from ``(N, 3, n, n)`` T, Q, U patches: T
    rescaled as the scalar models' input (``t_scaled``, if the caller has it already), Q and U
    divided by one scale (the shared P percentile, ``forse.normalize.rescale_spin2``); NaN
    pixels stay NaN."""
    from ..pipeline.normalize import rescale, rescale_spin2

    xt = (rescale(lr[:, 0], robust=robust, percentiles=tuple(percentiles))[0]
          if t_scaled is None else t_scaled)
    xq, xu, _ = rescale_spin2(lr[:, 1], lr[:, 2])
    return np.stack([xt, xq, xu], axis=1).astype(np.float32)


def joint_targets(lr, hr, robust=True, percentiles=(0.5, 99.5)):
    """The joint generator's target ``(N, 3, n, n)``: the intensity ratio ``T_hr / T_lr``
    rescaled as the scalar models' target, and the polarized small scales relative to the local
    intensity, ``(Q_hr - Q_lr) / T_lr`` and the same for U, under one shared scale."""
    from ..pipeline.normalize import rescale, rescale_spin2

    t = lr[:, 0]
    yt = rescale(hr[:, 0] / t, robust=robust, percentiles=tuple(percentiles))[0]
    yq, yu, _ = rescale_spin2((hr[:, 1] - lr[:, 1]) / t, (hr[:, 2] - lr[:, 2]) / t)
    return np.stack([yt, yq, yu], axis=1).astype(np.float32)


def _channels_last(a):
    return np.nan_to_num(np.moveaxis(a, 1, -1)).astype(np.float32)


def prepare(folder, split, cfg: TrainConfig, limit=None):
    """Rescaled ``(x, y, attrs)`` for a split: x the input, y the target, both in [-1, 1];
    ``(N, n, n)``, or ``(N, n, n, 3)`` for the joint generator."""
    from ..pipeline.normalize import rescale

    if cfg.joint:
        lr, hr, attrs = read_joint(folder, split)
        lr, hr = lr[:limit], hr[:limit]
        x = joint_inputs(lr, cfg.robust, cfg.percentiles)
        y = joint_targets(lr, hr, cfg.robust, cfg.percentiles)
        return _channels_last(x), _channels_last(y), attrs
    if cfg.target_stokes != "T":
        raise ValueError(f"`target_stokes` must be 'T': training sets store the intensity "
                         f"small-scale ratio as target, got {cfg.target_stokes!r}")
    data, attrs = read_split(folder, split, cfg.input_stokes)
    lr, tg = data["lr"], data["target"]
    if limit is not None:
        lr, tg = lr[:limit], tg[:limit]
    x = rescale(lr, robust=cfg.robust, percentiles=cfg.percentiles)[0]
    y = rescale(tg, robust=cfg.robust, percentiles=cfg.percentiles)[0]
    return np.nan_to_num(x).astype(np.float32), np.nan_to_num(y).astype(np.float32), attrs


class Batches:
    """Random batches (crop, flip, quarter turn, optional input noise) from a numpy stream."""

    def __init__(self, x, y, cfg: TrainConfig):
        if x.ndim == 3:  # one channel
            x, y = x[..., None], y[..., None]
        self.x, self.y, self.cfg = x, y, cfg
        n = x.shape[1]
        if n < cfg.patch_size:
            raise ValueError(f"`patch_size`={cfg.patch_size} is larger than the training patches "
                             f"({n}x{n})")

    def __call__(self, rng: np.random.Generator):
        cfg = self.cfg
        b, p, n, c = cfg.batch_size, cfg.patch_size, self.x.shape[1], self.x.shape[-1]
        idx = rng.integers(0, len(self.x), size=b)
        x, y = self.x[idx], self.y[idx]
        if cfg.stochastic and cfg.noise_amplitude > 0:
            x = add_input_noise(x, cfg.noise_amplitude, rng)
        i0 = rng.integers(0, n - p + 1, size=b)
        j0 = rng.integers(0, n - p + 1, size=b)
        turns = rng.integers(0, 4, size=b)
        flips = rng.integers(0, 2, size=b)
        xb = np.empty((b, p, p, c), np.float32)
        yb = np.empty((b, p, p, c), np.float32)
        for k in range(b):
            xs = x[k, i0[k]:i0[k] + p, j0[k]:j0[k] + p]
            ys = y[k, i0[k]:i0[k] + p, j0[k]:j0[k] + p]
            if cfg.augment:
                xs, ys = np.rot90(xs, turns[k]), np.rot90(ys, turns[k])
                if flips[k]:
                    xs, ys = xs[:, ::-1], ys[:, ::-1]
            xb[k], yb[k] = xs, ys
            if c == 3 and cfg.augment:
                # Q/U are spin 2 in the patch frame: a quarter turn flips both signs, a
                # mirror flips U
                sq = -1.0 if turns[k] % 2 else 1.0
                su = sq * (-1.0 if flips[k] else 1.0)
                for a in (xb, yb):
                    a[k, ..., 1] *= sq
                    a[k, ..., 2] *= su
        return xb, yb


# ---------------------------------------------------------------- trainer

class Trainer:
    """Both networks, both optimizers, the random streams and the compiled update steps."""

    def __init__(self, cfg: TrainConfig):
        import keras
        import tensorflow as tf

        from .networks import build_discriminator, build_generator

        self.cfg = cfg.check()
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(cfg.seed)
        dtype = "mixed_bfloat16" if cfg.mixed_precision else "float32"
        c = cfg.channels
        self.G = build_generator(None, cfg.width, c, out_channels=c, dtype=dtype)
        self.D = build_discriminator(cfg.patch_size, cfg.width, 2 * c if cfg.conditional else c,
                                     seed=cfg.seed + 1, dtype=dtype)
        self.g_opt = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1)
        self.d_opt = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1)
        self.g_opt.build(self.G.trainable_variables)
        self.d_opt.build(self.D.trainable_variables)
        self.tf_rng = tf.random.Generator.from_seed(cfg.seed, alg="philox")
        self.np_rng = np.random.default_rng([cfg.seed, 7])
        self.step = 0
        self._d_update = tf.function(self._d_update_py, jit_compile=cfg.jit_compile)
        self._g_update = tf.function(self._g_update_py, jit_compile=cfg.jit_compile)
        self._gen = Generator(self.G)  # the one inference loop (forse.gan.models)

    # -- updates
    def _bce(self, labels, logits):
        import tensorflow as tf

        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=labels, logits=tf.cast(logits, tf.float32)))

    def _labels(self, n):
        import tensorflow as tf

        cfg, rng = self.cfg, self.tf_rng
        real = rng.uniform([n, 1], 0.7, 1.0)
        fake = rng.uniform([n, 1], 0.0, 0.3)
        swap = rng.uniform([n, 1]) < cfg.swap_prob
        if not cfg.label_smoothing:
            real, fake = tf.ones_like(real), tf.zeros_like(fake)
        return tf.where(swap, fake, real), tf.where(swap, real, fake)

    def _judge(self, small, x):
        """Discriminator logits; a conditional one sees the input beside the small scales."""
        import tensorflow as tf

        if self.cfg.conditional:
            small = tf.concat([small, tf.cast(x, small.dtype)], axis=-1)
        return self.D(small, training=True)

    def _d_update_py(self, x, y):
        import tensorflow as tf

        fake = self.G(x, training=True)
        real_lab, fake_lab = self._labels(tf.shape(x)[0])
        with tf.GradientTape() as tape:
            loss = (self._bce(real_lab, self._judge(y, x))
                    + self._bce(fake_lab, self._judge(fake, x)))
        grads = tape.gradient(loss, self.D.trainable_variables)
        self.d_opt.apply(grads, self.D.trainable_variables)
        return loss

    def _g_update_py(self, x, y):
        import tensorflow as tf

        from .losses import minkowski_loss, spectrum_loss, teb_spectrum_loss

        cfg = self.cfg
        with tf.GradientTape() as tape:
            fake = self.G(x, training=True)
            logits = self._judge(fake, x)
            loss = self._bce(tf.ones_like(logits, dtype=tf.float32), logits)
            for c in range(cfg.channels):  # the terms are per channel
                f, r = fake[..., c:c + 1], y[..., c:c + 1]
                if cfg.minkowski_weight:
                    loss += cfg.minkowski_weight * minkowski_loss(f, r)
                if cfg.spectrum_weight and not cfg.joint:
                    loss += cfg.spectrum_weight * spectrum_loss(f, r)
            if cfg.spectrum_weight and cfg.joint:  # T, E and B: the E/B balance is taught too
                loss += cfg.spectrum_weight * teb_spectrum_loss(fake, y)
        grads = tape.gradient(loss, self.G.trainable_variables)
        self.g_opt.apply(grads, self.G.trainable_variables)
        return loss

    def train_step(self, batches: Batches):
        d_loss = 0.0
        for _ in range(self.cfg.d_steps):
            d_loss = self._d_update(*batches(self.np_rng))
        g_loss = 0.0
        for _ in range(self.cfg.g_steps):
            g_loss = self._g_update(*batches(self.np_rng))
        self.step += 1
        return float(d_loss), float(g_loss)

    def predict(self, x, batch_size=8):
        """Generator output for ``(N, n, n)`` (one channel) or ``(N, n, n, 3)`` inputs."""
        if x.ndim == 3:
            return self._gen.predict(x, batch_size)
        return np.moveaxis(self._gen.predict(np.moveaxis(x, -1, 1), batch_size), 1, -1)

    # -- state
    def _groups(self):
        return {"g": self.G.variables, "d": self.D.variables,
                "go": self.g_opt.variables, "do": self.d_opt.variables}

    def state(self):
        arrays = {f"{k}/{i:04d}": np.asarray(v.numpy()) for k, vs in self._groups().items()
                  for i, v in enumerate(vs)}
        arrays["tf_rng"] = self.tf_rng.state.numpy()
        meta = {"step": self.step, "np_rng": self.np_rng.bit_generator.state}
        return arrays, meta

    def restore(self, arrays, meta, generator_only=False):
        groups = self._groups()
        for k, vs in groups.items():
            if generator_only and k != "g":
                continue
            for i, v in enumerate(vs):
                a = arrays[f"{k}/{i:04d}"]
                if tuple(a.shape) != tuple(v.shape):
                    raise ValueError(f"checkpoint variable {k}/{i} has shape {a.shape}, the network "
                                     f"expects {tuple(v.shape)}: different training settings?")
                v.assign(a)
        if generator_only:
            return
        self.tf_rng.state.assign(arrays["tf_rng"])
        self.np_rng.bit_generator.state = meta["np_rng"]
        self.step = int(meta["step"])


# ---------------------------------------------------------------- logging

def _read_log(path: Path, max_step: int):
    rows = []
    if path.is_file():
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                try:
                    if int(r["step"]) <= max_step and len(r) == len(LOG_FIELDS) and None not in r.values():
                        rows.append(r)
                except (TypeError, ValueError, KeyError):
                    continue  # a line cut by a kill
    return rows


def _write_log(path: Path, rows):
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)


def _rate_from_log(rows) -> float:
    """Steps per second over all logged intervals, validation included, resumes excluded (the
    ``seconds`` column restarts at each resume)."""
    steps = secs = 0.0
    for a, b in zip(rows, rows[1:]):
        ds, dt = int(b["step"]) - int(a["step"]), float(b["seconds"]) - float(a["seconds"])
        if ds > 0 and dt > 0:
            steps, secs = steps + ds, secs + dt
    return steps / secs if secs > 0 else float("nan")


def plot_losses(log_path, out_path) -> Path:
    """Discriminator/generator losses and validation overlaps against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _read_log(Path(log_path), 1 << 62)
    step = np.array([float(r["step"]) for r in rows])
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for k in ("d_loss", "g_loss"):
        axes[0].plot(step, [float(r[k]) if r[k] else np.nan for r in rows], label=k)
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for k in ("v0", "v1", "v2"):
        v = np.array([float(r[k]) if r[k] else np.nan for r in rows])
        ok = np.isfinite(v)
        axes[1].plot(step[ok], v[ok], "o-", label=k)
    axes[1].set_ylabel("validation overlap")
    axes[1].set_xlabel("step")
    axes[1].legend()
    fig.tight_layout()
    with replacing(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out_path


# ---------------------------------------------------------------- driver

def _evaluate(trainer, x, y, cfg, seed=12345, variant="nu"):
    """Overlap of the generated against the true small scales (``forse.minkowski.score``; the
    checkpoint choice uses the standardized ``"nu"`` variant)."""
    from ..stats.minkowski import score

    if cfg.stochastic and cfg.noise_amplitude > 0:
        x = add_input_noise(x, cfg.noise_amplitude, np.random.default_rng(seed))
    g = trainer.predict(x)
    if not cfg.joint:
        return score(g, y, variant)
    # joint: each of T, Q, U scored; the headline is their mean
    per = {s: score(g[..., c], y[..., c], variant) for c, s in enumerate(JOINT)}
    out = {k: float(np.mean([per[s][k] for s in JOINT])) for k in ("v0", "v1", "v2", "score")}
    return dict(out, **per)


def _sky_version(attrs):
    """Version of the synthetic sky a set was cut from: recorded since version 2 existed; a set
    from before has version 1, a user map none."""
    if "sky_version" in attrs:
        return int(attrs["sky_version"])
    return 1 if "sky_seed" in attrs or "sky" not in attrs else None


def _sky_provenance(attrs):
    """``(sky_seeds, sky)``: the synthetic-sky seeds the training set was cut from, and what the
    sky was. Sets from ``forse training-set`` record ``sky`` ("synthetic" or the input file) and,
    for the synthetic sky, ``sky_seed``; older sets record neither, and ``forse training-set``
    without ``--input`` seeded the synthetic sky with the set's ``seed``, which is then assumed."""
    if "sky_seed" in attrs:
        return [int(attrs["sky_seed"])], str(attrs.get("sky", "synthetic"))
    if "sky" in attrs:  # a user map: no synthetic sky seed
        return [], str(attrs["sky"])
    if attrs.get("seed") is not None:
        return [int(attrs["seed"])], ("not recorded by the training set; assumed the synthetic sky "
                                      "of its seed")
    return [], "not recorded by the training set"


def _test_patches(data_dir, attrs):
    """Centres of the test split's patches (the held-out region), or None without a test split."""
    from ..data.training_set import TrainingSet

    path = Path(data_dir) / "test.h5"
    if not path.is_file():
        return None
    with TrainingSet(path, require=(), name="data") as ts:
        if ts.lon_deg is None or ts.lat_deg is None:
            return None
        lon, lat = ts.lon_deg, ts.lat_deg
    # QU sets store two entries (Q, U) per position
    pos = np.unique(np.round(np.stack([lon, lat], axis=1), 4), axis=0)
    return {"lon_deg": pos[:, 0].tolist(), "lat_deg": pos[:, 1].tolist(),
            "npix": attrs.get("npix"), "pixel_arcmin": attrs.get("pixel_arcmin")}


def _resumes(cfg_path):
    return json.loads(Path(cfg_path).read_text()).get("resumes", []) if Path(cfg_path).is_file() else []


def _settings(out, cfg, data_dir, resume, overwrite, steps, command):
    """The run's settings: the saved ones on a resume (only ``steps`` may change; the card
    records the original command and every resume), else ``cfg``; refuses to overwrite
    checkpoints or a model without ``overwrite``."""
    ck, cfg_path = out / "checkpoints", out / "config.json"
    if resume and not checkpoints.list_checkpoints(ck):
        raise FileNotFoundError(f"`resume`: {str(out)!r} has no checkpoint to resume from; "
                                "start without resume")
    if resume and cfg_path.is_file():
        saved = json.loads(cfg_path.read_text())
        if cfg is not None:
            changed = sorted(k for k, v in cfg.to_dict().items()
                             if k != "steps" and saved["config"].get(k) != v)
            if changed:
                raise ValueError(f"resume with different settings {changed}: only `steps` may "
                                 f"change (the saved ones are in {cfg_path})")
            steps = cfg.steps if steps is None else steps
        cfg = TrainConfig.from_dict(saved["config"])
        if steps is not None:
            cfg.steps = int(steps)
        data_dir = data_dir or saved["data_dir"]
        if command is not None:
            checkpoints._write_json(cfg_path, dict(saved, resumes=saved.get("resumes", []) + [command]))
        command = saved.get("command") or command
    elif not resume and checkpoints.list_checkpoints(ck) and not overwrite:
        raise FileExistsError(f"{out} already holds checkpoints; pass resume=True (--resume) to "
                              "continue or overwrite=True (--overwrite) to start again")
    elif steps is not None:
        cfg = dataclasses.replace(cfg or TrainConfig(), steps=int(steps))
    name = (cfg or TrainConfig()).name
    if not resume and not overwrite and any((out / f"{name}{e}").exists() for e in (".keras", ".json")):
        raise FileExistsError(f"{str(out)!r} already holds a model {name!r}; pass "
                              "overwrite=True (--overwrite) to replace it or choose another name")
    if data_dir is None:
        raise ValueError("`data_dir` is required: nothing to resume in " + str(out))
    return (cfg or TrainConfig()).check(), data_dir, command


def _loop(trainer, batches, cfg, ck, log_path, best, val, progress):
    """Train up to ``cfg.steps``: a log row every ``log_every`` steps, a checkpoint scored on
    the validation patches ``val`` every ``checkpoint_every`` (the best one recorded); returns
    the best checkpoint's record."""
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=trainer.step, disable=not progress, desc="forse train",
               unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    with open(log_path, "a", newline="") as logf:
        writer = csv.DictWriter(logf, LOG_FIELDS)
        while trainer.step < cfg.steps:
            d_loss, g_loss = trainer.train_step(batches)
            step = trainer.step
            row = None
            if step % cfg.log_every == 0 or step % cfg.checkpoint_every == 0 or step == cfg.steps:
                row = {"step": step, "d_loss": f"{d_loss:.5f}", "g_loss": f"{g_loss:.5f}",
                       "v0": "", "v1": "", "v2": "", "score": "",
                       "seconds": f"{time.perf_counter() - t0:.2f}"}
                bar.set_postfix(d=f"{d_loss:.3f}", g=f"{g_loss:.3f}", refresh=False)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                best = _checkpoint(trainer, cfg, ck, best, val, row)
            if row is not None:
                writer.writerow(row)
                logf.flush()
            bar.update(1)
    bar.close()
    return best


def _checkpoint(trainer, cfg, ck, best, val, row):
    metrics = _evaluate(trainer, *val, cfg) if val is not None else {}
    for k in ("v0", "v1", "v2", "score"):
        if k in metrics:
            row[k] = f"{metrics[k]:.4f}"
    arrays, meta = trainer.state()
    meta["validation"] = metrics
    checkpoints.save(ck, trainer.step, arrays, meta)
    if metrics and (best is None or metrics["score"] > best["score"]):
        checkpoints.write_best(ck, trainer.step, metrics["score"], dict(metrics, variant="nu"))
        best = checkpoints.read_best(ck)
    checkpoints.prune(ck, cfg.keep)
    return best


def _final_metrics(trainer, data_dir, cfg, best, chosen):
    """The card's metrics: the chosen checkpoint's validation score and the test split's (nu,
    min-max, and the ceiling of the truth's halves)."""
    metrics = {"metric": METRIC, "validation": best["metrics"] if best else {},
               "checkpoint_step": chosen}
    if (data_dir / "test.h5").is_file():
        from ..stats.minkowski import ceiling

        xt, yt, _ = prepare(data_dir, "test", cfg)  # every test patch: >= 80 keep bands clear
        metrics["test"] = _evaluate(trainer, xt, yt, cfg, seed=54321)
        metrics["test_minmax"] = _evaluate(trainer, xt, yt, cfg, seed=54321, variant="minmax")
        if len(yt) >= 2:
            metrics["test_ceiling"] = (ceiling(yt) if not cfg.joint else
                                       {s: ceiling(yt[..., c]) for c, s in enumerate(JOINT)})
    return metrics


def train(data_dir, out_dir, cfg: TrainConfig | None = None, *, resume=False, overwrite=False,
          steps=None, progress=True, command=None) -> dict:
    """Train (or resume) a generator; returns a summary dict (also in ``out_dir/summary.json``).

    Writes ``out_dir/config.json``, ``log.csv``, ``loss.png``, ``checkpoints/`` and the final
    generator ``<name>.keras`` + ``<name>.json`` (the best checkpoint on the validation split,
    or the last one without a validation split), with test-split metrics in its card.

    ``resume=True`` continues from the last checkpoint with the settings saved in
    ``config.json`` (``cfg``, if given, must agree with them except for ``steps``); ``steps``
    overrides the total number of steps. A fresh start in a folder that holds checkpoints needs
    ``overwrite=True``.
    """
    out = Path(out_dir)
    ck = out / "checkpoints"
    cfg_path = out / "config.json"
    cfg, data_dir, command = _settings(out, cfg, data_dir, resume, overwrite, steps, command)
    if overwrite and not resume and ck.is_dir():
        import shutil

        shutil.rmtree(ck)
    data_dir = Path(data_dir)
    x, y, attrs = prepare(data_dir, "train", cfg)
    batches = Batches(x, y, cfg)
    val = (prepare(data_dir, "validation", cfg, limit=cfg.val_patches)[:2]
           if (data_dir / "validation.h5").is_file() else None)
    out.mkdir(parents=True, exist_ok=True)
    if not (resume and cfg_path.is_file()):
        checkpoints._write_json(cfg_path, {"config": cfg.to_dict(), "data_dir": str(data_dir),
                                           "command": command, "data_attrs": attrs})

    trainer = Trainer(cfg)
    checkpoints.clean_temporaries(ck)
    last = checkpoints.latest(ck) if resume else None
    if last is not None:
        trainer.restore(*checkpoints.load(last))
    log_path = out / "log.csv"
    _write_log(log_path, _read_log(log_path, trainer.step) if last is not None else [])
    best = checkpoints.read_best(ck) if last is not None else None
    if best is not None and best.get("metrics", {}).get("variant") != "nu":
        best = None  # chosen with the former min-max metric: choose again from the next checkpoint
    start = trainer.step
    best = _loop(trainer, batches, cfg, ck, log_path, best, val, progress)
    rate = _rate_from_log(_read_log(log_path, trainer.step))

    # final model: the best validated checkpoint (else the last)
    chosen = best["step"] if best else trainer.step
    if chosen != trainer.step:
        trainer.restore(*checkpoints.load(checkpoints.checkpoint_path(ck, chosen)),
                        generator_only=True)
    metrics = _final_metrics(trainer, data_dir, cfg, best, chosen)
    sky_seeds, sky = _sky_provenance(attrs)
    card = make_card(
        name=cfg.name, patch_size=cfg.patch_size, pixel_arcmin=attrs.get("pixel_arcmin", float("nan")),
        fwhm_hr_arcmin=attrs.get("fwhm_hr_arcmin", float("nan")),
        fwhm_lr_arcmin=attrs.get("fwhm_lr_arcmin", float("nan")),
        input_stokes=cfg.input_stokes, target_stokes=cfg.target_stokes, width=cfg.width,
        stochastic=cfg.stochastic, noise_amplitude=cfg.noise_amplitude if cfg.stochastic else 0.0,
        robust=cfg.robust, percentiles=cfg.percentiles,
        training={"command": command, "resumes": _resumes(cfg_path), "data_dir": str(data_dir),
                  "data_seed": attrs.get("seed"), "sky_seeds": sky_seeds, "sky": sky,
                  "sky_version": _sky_version(attrs),
                  "test_patches": _test_patches(data_dir, attrs),
                  "nside": attrs.get("nside"), "train_patch_npix": attrs.get("npix"),
                  "steps": cfg.steps, "config": cfg.to_dict(), "steps_per_second": rate},
        metrics=metrics)
    model_path = save_generator(trainer.G, out / f"{cfg.name}.keras", card)
    plot_losses(log_path, out / "loss.png")
    summary = {"model": str(model_path), "steps": trainer.step, "resumed_from": start,
               "steps_per_second": rate, "metrics": metrics}
    checkpoints._write_json(out / "summary.json", summary)
    return summary
