"""Atomic file output, the one mechanism every writer in forse uses: write to a temporary file
in the destination folder, then move it onto the final name, so a reader (or a run killed
half-way, or a full disk) never leaves a partial file under the final name.

Without ``overwrite`` the move is exclusive (a hard link, which fails if the name exists): of two
writers started together only one succeeds. Temporary files that a killed write left behind are
removed by the next write to the same name (a live write holds a lock on its own)."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

_STARTED = time.time()  # temporaries older than this process belong to no running write of ours


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask  # what a plain open() gives; mkstemp makes 0600 files


def _lock(fd) -> bool:
    """Try to take the exclusive lock of an open temporary: False when a live writer holds it.
    The lock goes with the process, so a killed write leaves its temporary unlocked."""
    if fcntl is None:  # pragma: no cover - not POSIX: the age rule alone
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: the age rule alone
        return True


def clean_stale(path, suffix: str = ".tmp") -> list[Path]:
    """Remove forse's temporaries for ``path`` (``.NAME.XXXXXXXX<suffix>``, as ``replacing``
    makes them) that no running write holds and that are older than this process: what a
    killed write left behind."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}" + re.escape(suffix))
    gone = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if not (pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime >= _STARTED:
                    continue
                fd = os.open(entry.path, os.O_RDONLY)
                try:
                    if _lock(fd):
                        os.unlink(entry.path)
                        gone.append(Path(entry.path))
                finally:
                    os.close(fd)
    return gone


def publish(tmp, path, *, overwrite: bool = True) -> None:
    """Give a finished temporary file the usual permissions and move it to ``path``; without
    ``overwrite``, only if ``path`` does not exist by then (FileExistsError otherwise)."""
    os.chmod(tmp, _file_mode())
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and exclusive: fails if another writer got there first
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "another writer created it while this one ran",
                              str(path)) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "another writer created it while this one ran",
                                  str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def temporary(path, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file beside ``path``, named as ``clean_stale`` finds
    it, after removing the ones a killed write left. For writers that hold the file longer than
    one block (the training-set splits); others use ``replacing``."""
    path = Path(path)
    clean_stale(path, suffix)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)


@contextlib.contextmanager
def replacing_folder(path, prefix: str):
    """Yield a temporary folder beside the folder ``path`` (named ``prefix``...); when the block
    succeeds it replaces ``path`` whole, when it fails it is removed. A folder under the final
    name is always complete (the training checkpoints)."""
    import shutil

    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    try:
        yield tmp
        if path.exists():  # the same name written again (a step re-saved after a resume)
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def replacing(path, suffix: str = ".tmp", fsync: bool = False, overwrite: bool = True):
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``
    (ordinary permissions, atomic rename; exclusive without ``overwrite``), when it fails it is
    removed. ``suffix`` ends the temporary name (some writers choose the format by extension:
    ``.fits``, ``.keras``)."""
    fd, tmp = temporary(path, suffix)
    _lock(fd)  # held until the end: another process's clean_stale leaves this one alone
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        publish(tmp, path, overwrite=overwrite)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def write_text(path, text: str, *, fsync: bool = False) -> Path:
    with replacing(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return Path(path)


def json_default(o):
    """The JSON encoder's fallback for what forse writes: numpy scalars and arrays, paths."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def jsonable(d):
    """``d`` with numpy values as Python ones and non-finite floats as None (strict JSON)."""
    if isinstance(d, dict):
        return {k: jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [jsonable(v) for v in d]
    if isinstance(d, np.ndarray):
        return jsonable(d.tolist())
    if isinstance(d, (np.floating, float)):
        return None if not np.isfinite(d) else float(d)
    if isinstance(d, np.integer):
        return int(d)
    return d


def write_json(path, obj, *, fsync: bool = False, **dump_kwargs) -> Path:
    """``json.dump(obj, **dump_kwargs)`` to ``path``, atomically, newline-terminated (numpy
    values and paths encoded by ``json_default`` unless ``default`` is given)."""
    dump_kwargs.setdefault("default", json_default)
    return write_text(path, json.dumps(obj, **dump_kwargs) + "\n", fsync=fsync)
