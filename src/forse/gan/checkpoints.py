"""Training checkpoints that lose nothing.

A checkpoint is a folder ``ckpt-<step:08d>`` holding ``state.npz`` (every variable of both
networks and both optimizers, and the TensorFlow random stream) and ``meta.json`` (step, numpy
random stream, metrics). It is written into a hidden temporary folder beside it and renamed into
place (``forse._atomic.replacing_folder``), so a folder with that name is always complete: a run killed at any
moment leaves the previous checkpoints intact. ``best.json`` names the best checkpoint by the
validation score; it and the last ``keep`` checkpoints are kept, older ones are deleted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from .._atomic import replacing_folder, write_json

_NAME = re.compile(r"^ckpt-(\d{8})$")


def checkpoint_path(folder, step: int) -> Path:
    return Path(folder) / f"ckpt-{int(step):08d}"


def list_checkpoints(folder) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``folder``, sorted by step."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_dir() and (p / "meta.json").is_file() and (p / "state.npz").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest(folder) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def clean_temporaries(folder) -> None:
    """Remove half-written temporary folders left by a killed run."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(".tmp-ckpt-*"):
            shutil.rmtree(p, ignore_errors=True)


def _write_json(path: Path, obj) -> None:
    write_json(path, obj, fsync=True, indent=2, sort_keys=True)


def save(folder, step: int, arrays: dict, meta: dict) -> Path:
    """Write checkpoint ``step`` atomically; returns its folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(folder, step)
    with replacing_folder(final, prefix=f".tmp-ckpt-{int(step):08d}-") as tmp:
        with open(tmp / "state.npz", "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / "meta.json", "w") as f:
            json.dump(dict(meta, step=int(step)), f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
    return final


def load(path) -> tuple[dict, dict]:
    """``(arrays, meta)`` of a checkpoint folder."""
    path = Path(path)
    meta = json.loads((path / "meta.json").read_text())
    with np.load(path / "state.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, meta


def read_best(folder) -> dict | None:
    p = Path(folder) / "best.json"
    return json.loads(p.read_text()) if p.is_file() else None


def write_best(folder, step: int, score: float, metrics: dict) -> None:
    _write_json(Path(folder) / "best.json",
                {"step": int(step), "score": float(score), "metrics": metrics})


def prune(folder, keep: int) -> None:
    """Delete all but the last ``keep`` checkpoints and the best one."""
    best = read_best(folder)
    best_step = None if best is None else best["step"]
    found = list_checkpoints(folder)
    for step, path in found[:max(0, len(found) - keep)]:
        if step != best_step:
            shutil.rmtree(path, ignore_errors=True)
