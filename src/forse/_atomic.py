"""Atomic file output, the one mechanism every writer in forse uses: write to a temporary file
in the destination folder, then ``os.replace`` it onto the final name, so a reader (or a run
killed half-way, or a full disk) never leaves a partial file under the final name."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask  # what a plain open() gives; mkstemp makes 0600 files


@contextlib.contextmanager
def replacing(path, suffix: str = ".tmp", fsync: bool = False):
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``
    (ordinary permissions, atomic rename), when it fails it is removed. ``suffix`` ends the
    temporary name (some writers choose the format by extension: ``.fits``, ``.keras``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str, *, fsync: bool = False) -> Path:
    with replacing(path, fsync=fsync) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return Path(path)


def write_json(path, obj, *, fsync: bool = False, **dump_kwargs) -> Path:
    """``json.dump(obj, **dump_kwargs)`` to ``path``, atomically, newline-terminated."""
    return write_text(path, json.dumps(obj, **dump_kwargs) + "\n", fsync=fsync)
