"""Argument checks shared by the public API: every error names the argument, what was given
and what was expected."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np


def nside_of(npix_map: int, name: str = "m") -> int:
    nside = int(round(np.sqrt(npix_map / 12.0)))
    if nside < 1 or 12 * nside * nside != npix_map or nside & (nside - 1):
        raise ValueError(f"`{name}` has {npix_map} pixels, which is not 12*nside**2 for any "
                         "power-of-two nside")
    return nside


UNSEEN = -1.6375e30  # healpy's hp.UNSEEN
ARCMIN = np.pi / (180.0 * 60.0)  # one arcminute in radians


# healpy's mask_bad rule, |m - UNSEEN| <= 1e-5 |UNSEEN|: the one UNSEEN rule of forse (the
# numpy reference, the C++/CUDA kernels and every module); it also holds float32's UNSEEN
UNSEEN_LO, UNSEEN_HI = UNSEEN * (1 + 1e-5), UNSEEN * (1 - 1e-5)


def unseen(a) -> np.ndarray:
    """True where ``a`` is UNSEEN by healpy's rule (within 1e-5 of it, relative): float32's
    UNSEEN, which ``a == hp.UNSEEN`` would miss, included."""
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return (a >= UNSEEN_LO) & (a <= UNSEEN_HI)


def clean(a) -> bool:
    """True when ``a`` holds no NaN, inf or UNSEEN: two reductions and no full-size temporary
    (the mask below costs three, ~1 s for a TQU map at Nside 2048). False means "look"."""
    a = np.asarray(a)
    if a.size == 0 or a.dtype.kind != "f":
        return a.size == 0 or a.dtype.kind in "iub"
    lo, hi = a.min(), a.max()  # NaN propagates; UNSEEN, if any, is the minimum
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo > UNSEEN_HI)


def bad_mask(a) -> np.ndarray:
    """True where ``a`` is NaN, inf or UNSEEN (its own precision), same shape as ``a``."""
    a = np.asarray(a)
    if clean(a):
        return np.zeros(a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(a) | unseen(a)


def finite_range(a) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch ``(min, max)`` over the finite pixels of a ``(..., n, m)`` array, each of shape
    ``a.shape[:-2]`` in ``a``'s dtype; NaN for a patch with no finite pixel. The one min-max
    of the package: ``forse.minkowski.minmax`` (statistics) and ``forse.normalize.rescale``
    (``robust=False``, the generator's input) both take their range here."""
    a = np.asarray(a)
    fin = np.isfinite(a)
    lo = np.min(np.where(fin, a, np.inf), axis=(-2, -1))
    hi = np.max(np.where(fin, a, -np.inf), axis=(-2, -1))
    empty = ~np.isfinite(lo)
    if empty.any():
        lo, hi = np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)
    return lo, hi


def positive(value, name: str, hi: float | None = None) -> float:
    """A finite number > 0 (and <= ``hi``: a value that cannot be meant)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v <= 0 or (hi is not None and v > hi):
        bound = f" <= {hi:g}" if hi is not None else ""
        raise ValueError(f"{label(name)} must be a positive number{bound}, got {value!r}")
    return v


def float_array(x, name: str, ndim=None) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if ndim is not None and a.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"`{name}` must have {ndim} dimension(s), got shape {a.shape}")
    return a


def centres(lon_deg, lat_deg):
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
    if lon.ndim != 1 or lat.ndim != 1:
        raise ValueError(f"`lon_deg` and `lat_deg` must be 1-D, got shapes {lon.shape} and {lat.shape}")
    if lon.shape != lat.shape:
        raise ValueError(f"`lon_deg` has {lon.size} entries but `lat_deg` has {lat.size}; "
                         "they must have the same length")
    if np.any(np.abs(lat) > 90) or not np.all(np.isfinite(lat)) or not np.all(np.isfinite(lon)):
        raise ValueError("`lat_deg` must be finite and within [-90, 90] and `lon_deg` finite")
    return lon, lat


# ---------------------------------------------------------------- shared by the API and the CLI
# ``name`` is an argument (API: shown as `name`) or a flag (CLI: "--nside", shown as is), so one
# check gives each caller its own words.

def label(name: str) -> str:
    """How a message names an argument: flags ("--nside") and positionals ("INPUT") as the
    command line shows them, API arguments in backticks."""
    return name if name.startswith("-") or name.isupper() else f"`{name}`"


def integer(value, name: str, lo=None, hi=None) -> int:
    """An int (not a bool, not 1.5) within [lo, hi]."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or (lo is not None and value < lo) or (hi is not None and value > hi):
        bound = (f" in [{lo}, {hi}]" if lo is not None and hi is not None else
                 f" >= {lo}" if lo is not None else f" <= {hi}" if hi is not None else "")
        raise ValueError(f"{label(name)} must be an integer{bound}, got {value!r}")
    return int(value)


def seed(value, name: str = "seed") -> int:
    return integer(value, name, 0)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def nthreads(value, name: str = "nthreads") -> int:
    """0 (all cores) or a thread count, capped at the CPUs this process may use: asking for more
    threads than cores only costs memory (and can abort the process in the OpenMP runtime)."""
    n = integer(value, name, 0)
    return min(n, available_cpus())


def choice(value, name: str, choices):
    """One of ``choices`` (names, and None where None is one)."""
    if not (value is None or isinstance(value, str)) or value not in choices:
        raise ValueError(f"{label(name)} must be one of {tuple(choices)}, got {value!r}")
    return value


def nside(value, name: str = "nside", lo: int = 1, hi: int = 2**13) -> int:
    """A power of two in [lo, hi] (2**13: forse's largest tested Nside is 2048; a map at 8192
    is already 6.4 GB per field in float64)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not lo <= value <= hi or value & (value - 1):
        raise ValueError(f"{label(name)} must be a power of two in [{lo}, {hi}], got {value!r}")
    return int(value)


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


def memory(nbytes: float, name: str, value, what: str) -> None:
    """Refuse, before allocating, an array that cannot fit in this machine's memory."""
    have = physical_memory()
    if nbytes > have:
        raise ValueError(f"{label(name)}={value!r} needs {nbytes / 2**30:.1f} GiB for {what}, "
                         f"more than this machine's {have / 2**30:.1f} GiB of memory")


def map_memory(nside: int, fields: int, name: str) -> None:
    """A lower bound for a full-sky job (input, output and harmonic coefficients: 24 bytes per
    pixel and field), refused before the work when this machine cannot hold even that."""
    memory(24.0 * 12 * nside * nside * fields, name, nside,
           f"{fields} field(s) at Nside {nside} (at least)")


def ascii_text(text) -> str:
    """``text`` in printable ASCII, other characters escaped (``'map ☃.fits'`` -> ``'map
    \\u2603.fits'``): FITS header values allow nothing else."""
    s = str(text)
    return s.encode("unicode_escape").decode("ascii") if not (s.isascii() and s.isprintable()) else s


def file_name(value, name: str) -> str:
    """A plain file name (no folder part): it must not lead out of the output folder."""
    s = str(value)
    if not s or s in (".", "..") or os.path.basename(s) != s or "/" in s or "\\" in s:
        raise ValueError(f"{label(name)} must be a plain file name without a folder, got {value!r}")
    return s


def input_file(path, name: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{label(name)} {str(path)!r} is a folder, expected a file")
    if not p.is_file():
        raise FileNotFoundError(f"{label(name)} {str(path)!r} does not exist")
    if not os.access(p, os.R_OK):
        raise PermissionError(f"{label(name)} {str(path)!r} is not readable")
    return p


def _nearest_folder(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _room(folder: Path, nbytes: float, name: str, path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{label(name)} {str(path)!r}: folder {str(folder)!r} is not "
                              "writable")
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise OSError(errno.ENOSPC, f"{label(name)} {str(path)!r} needs about "
                      f"{nbytes / 2**20:.0f} MB, the disk has {free / 2**20:.0f} MB free")


def output_file(path, name: str, *, overwrite: bool, nbytes: float = 0, inputs=()) -> Path:
    """Check an output file before the work: its folder exists and is writable with room for
    ``nbytes``, it is not a folder, and it does not exist (in particular it is none of
    ``inputs``) unless ``overwrite``."""
    p = Path(path)
    flag = "overwrite=True" if label(name).startswith("`") else "--overwrite"
    if p.is_dir():
        raise IsADirectoryError(f"{label(name)} {str(path)!r} is a folder, expected a file name")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{label(name)} {str(path)!r}: folder {str(p.parent)!r} does not "
                                "exist")
    for other in inputs:
        if not overwrite and other is not None and p.exists() and os.path.samefile(p, other):
            raise ValueError(f"{label(name)} {str(path)!r} is also an input; pass {flag} to "
                             "replace it")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{label(name)} {str(path)!r} exists; pass {flag} to replace it")
    _room(p.parent, nbytes, name, path)
    return p


def output_folder(path, name: str, *, overwrite: bool, nbytes: float = 0) -> Path:
    """Check an output folder before the work (nothing is created): not a file, empty unless
    ``overwrite``, inside a writable folder with room for ``nbytes``."""
    p = Path(path)
    flag = "overwrite=True" if label(name).startswith("`") else "--overwrite"
    if p.exists() and not p.is_dir():
        raise NotADirectoryError(f"{label(name)} {str(path)!r} is a file, expected a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise FileExistsError(f"{label(name)} {str(path)!r} is not empty; pass {flag} to reuse it")
    _room(_nearest_folder(p), nbytes, name, path)
    return p
