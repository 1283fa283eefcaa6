"""HEALPix map input/output (FITS, via healpy).

``read_map`` returns float64 maps in RING order whatever the file's ordering, with missing
pixels as ``healpy.UNSEEN`` (healpy's convention on disk; forse turns them into NaN only inside
computations). ``write_map`` writes atomically (a temporary file in the destination folder,
then ``os.replace``), turns NaN into UNSEEN and records forse metadata in the header.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import re
import warnings
from io import StringIO
from pathlib import Path

import healpy as hp
import numpy as np
from astropy.io import fits

from .._atomic import replacing
from .._checks import bad_mask, input_file, nside_of, output_file

__all__ = ["read_map", "write_map"]


def _healpix_hdu(path):
    """(index, header, number of columns) of the HEALPix table of a FITS file, after checking
    that the file holds all of it and that its pixel count is a HEALPix one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's truncation warning: reported below
            with fits.open(path, memmap=False) as hdul:
                for index, hdu in enumerate(hdul):
                    if isinstance(hdu, fits.BinTableHDU) and "NSIDE" in hdu.header:
                        _check_table(path, hdu)
                        return index, hdu.header.copy(), len(hdu.columns)
    except (OSError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"`path` {str(path)!r} is not a readable FITS file ({exc})") from None
    raise ValueError(f"`path` {str(path)!r} is not a HEALPix FITS map: no binary table HDU "
                     "with an NSIDE keyword")


def _check_table(path, hdu):
    head = hdu.header
    info = hdu.fileinfo()
    need = info["datLoc"] + head["NAXIS1"] * head["NAXIS2"]
    with open(path, "rb") as f:
        packed = f.read(2) == b"\x1f\x8b"  # gzip: the size on disk says nothing
    have = os.path.getsize(path)
    if not packed and have < need:
        raise ValueError(f"`path` {str(path)!r} is truncated: its HEALPix table needs {need} "
                         f"bytes, the file has {have}")
    if str(head.get("INDXSCHM", "IMPLICIT")).strip().upper() == "EXPLICIT":
        return  # read_map refuses these with its own message
    npix = head["NAXIS2"] * hdu.columns[0].format.repeat
    nside = head["NSIDE"]
    if npix != 12 * int(nside) ** 2:
        raise ValueError(f"`path` {str(path)!r} holds {npix} pixels per field but its NSIDE "
                         f"keyword says {nside} ({12 * int(nside) ** 2} pixels)")
    nside_of(npix, "path")


def read_map(path, field=None):
    """Read a HEALPix FITS map.

    Parameters
    ----------
    path : str or Path
    field : int, sequence of int or None
        Columns to read (0 = first). ``None`` reads every column (T, or T, Q, U).

    Returns
    -------
    maps : ndarray, float64, RING
        ``(npix,)`` for one field, ``(k, npix)`` for several.
    header : dict
        The HDU's header cards, plus ``UNIT`` (the unit of the first field read, from TUNITn)
        and ``COORDSYS`` when the file gives them.
    """
    path = input_file(path, "path")
    hdu, header, ncol = _healpix_hdu(path)
    fields = tuple(range(ncol)) if field is None else field
    wanted = np.atleast_1d(np.asarray(fields))
    if wanted.dtype.kind not in "iu" or wanted.ndim != 1 or wanted.size == 0:
        raise ValueError(f"`field` must be an int or a sequence of ints, got {field!r}")
    if wanted.min() < 0 or wanted.max() >= ncol:
        raise ValueError(f"`field`={field!r} asks for column(s) the file does not have: "
                         f"{str(path)!r} has {ncol} column(s) (0..{ncol - 1})")
    if str(header.get("INDXSCHM", "IMPLICIT")).strip().upper() == "EXPLICIT":
        raise ValueError(f"`path` {str(path)!r} is a partial-sky (explicit index) map; "
                         "write it as a full-sky map with UNSEEN pixels instead")
    single = np.ndim(fields) == 0
    with warnings.catch_warnings(), contextlib.redirect_stdout(StringIO()):
        warnings.simplefilter("ignore")  # healpy chatters about ordering conversion
        try:
            maps = hp.read_map(str(path), field=int(wanted[0]) if single else
                               tuple(int(f) for f in wanted), dtype=np.float64, nest=False, hdu=hdu)
        except (OSError, EOFError, ValueError) as exc:  # e.g. a truncated gzip file
            raise ValueError(f"`path` {str(path)!r} could not be read as a HEALPix map "
                             f"({' '.join(str(exc).split())})") from None
    maps = np.asarray(maps, dtype=np.float64)
    nside_of(maps.shape[-1], "path")
    bad = bad_mask(maps)
    for k, row in enumerate(np.atleast_2d(bad)):
        if row.all():
            raise ValueError(f"`path` {str(path)!r}: field {int(wanted[k])} has no valid pixel "
                             "(all NaN or UNSEEN)")
    maps[~np.isfinite(maps)] = hp.UNSEEN
    out = {key: header[key] for key in header if key}
    unit = header.get(f"TUNIT{int(wanted[0]) + 1}")
    if unit is not None and str(unit).strip():
        out["UNIT"] = str(unit).strip()
    if "COORDSYS" in header:
        out["COORDSYS"] = str(header["COORDSYS"]).strip()
    return maps, out


# written from the data itself: a value given in ``header`` for one of these is not used
_RESERVED = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "XTENSION", "PCOUNT",
             "GCOUNT", "TFIELDS", "NSIDE", "ORDERING", "INDXSCHM", "FIRSTPIX", "LASTPIX",
             "PIXTYPE", "OBJECT", "UNIT", "COORDSYS", "BAD_DATA", "EXTNAME"}


def _card_key(key):
    """A header key as written: upper case, a standard 8-character keyword or, longer, an
    ESO ``HIERARCH`` one (read back under its own name); never cut short."""
    k = str(key).strip().upper()
    if re.fullmatch(r"[A-Z0-9_-]{1,8}", k):
        return k
    if re.fullmatch(r"[ -~]+", k) and "=" not in k and len(k) <= 60:
        return "HIERARCH " + k
    raise ValueError(f"header key {str(key)!r} cannot be written to FITS: expected printable "
                     "ASCII without '=', at most 60 characters")


def _cards(extra, ncol):
    """Cards for ``write_map``'s ``header``: forse's own, the caller's, and for a T, Q, U map
    the polarization convention (healpy's, COSMO, unless the caller states another)."""
    from .. import __version__

    cards = {"CREATOR": "forse", "FORSEVER": __version__}
    if ncol == 3:
        cards.update(POLAR=(True, "T, Q, U maps"),
                     POLCCONV=("COSMO", "Q/U convention: COSMO (healpy) or IAU"))
    for k, v in extra.items():
        if str(k).strip().upper() not in _RESERVED:
            cards[_card_key(k)] = v
    return list(cards.items())


def _table_header(npix, names, dtype, unit, coord, nest, cards):
    """The binary-table header healpy's ``write_map`` writes (rows of 1024 pixels)."""
    width = 1024 if npix % 1024 == 0 else 1
    code = ("D" if dtype == np.float64 else "E") if width == 1 else \
        f"{width}{'D' if dtype == np.float64 else 'E'}"
    cols = [fits.Column(name=n, format=code, unit=unit) for n in names]
    head = fits.BinTableHDU.from_columns(cols, nrows=0).header
    head["NAXIS2"] = npix // width
    head["PIXTYPE"] = ("HEALPIX", "HEALPIX pixelisation")
    head["ORDERING"] = ("NESTED" if nest else "RING",
                        "Pixel ordering scheme, either RING or NESTED")
    if coord is not None:
        head["COORDSYS"] = (coord, "Ecliptic, Galactic or Celestial (equatorial)")
    head["EXTNAME"] = ("xtension", "name of this binary table extension")
    head["NSIDE"] = (hp.npix2nside(npix), "Resolution parameter of HEALPIX")
    head["FIRSTPIX"] = (0, "First pixel # (0 based)")
    head["LASTPIX"] = (npix - 1, "Last pixel # (0 based)")
    head["INDXSCHM"] = ("IMPLICIT", "Indexing: IMPLICIT or EXPLICIT")
    head["OBJECT"] = ("FULLSKY", "Sky coverage, either FULLSKY or PARTIAL")
    for key, value in cards:
        head[key] = value
    return head


def _write_rows(f, maps, dtype, nrows):
    """Table rows, big-endian, a few MB at a time: no full-size copy of the maps (at Nside 2048
    a TQU map is 1.2 GB, and healpy/astropy make two such copies while writing)."""
    k, npix = maps.shape
    width = npix // nrows
    step = max(1, (1 << 22) // (k * width))  # rows per chunk: 16 MB of float32
    buf = np.empty((step, k, width), dtype=dtype.newbyteorder(">"))
    for r0 in range(0, nrows, step):
        n = min(step, nrows - r0)
        for j in range(k):
            part = maps[j, r0 * width:(r0 + n) * width].reshape(n, width)
            buf[:n, j] = np.where(np.isfinite(part), part, hp.UNSEEN)
        f.write(buf[:n].tobytes())
    tail = -(nrows * k * width * dtype.itemsize) % 2880  # FITS blocks are 2880 bytes
    f.write(b"\0" * tail)


def write_map(path, maps, *, overwrite=False, header=None, nest=False, dtype=None):
    """Write one map ``(npix,)`` or a stack ``(k, npix)`` to a HEALPix FITS file, atomically.

    ``header`` (dict or sequence of (key, value) or (key, (value, comment))) is added to the
    header; the keys ``UNIT`` and ``COORDSYS`` set the column units and the coordinate system;
    keys longer than 8 characters are written as HIERARCH cards; a T, Q, U map gets
    ``POLCCONV = 'COSMO'`` unless ``header`` gives it. NaN pixels are written as
    UNSEEN. ``nest=True`` declares the input to be in NEST order. The layout and header are
    healpy's (``hp.write_map``); the rows are streamed, so no copy of the maps is made. A path
    ending in ``.gz`` is gzip-compressed. ``dtype`` (float32 or float64) is the type on disk;
    default: float64 for float64 maps, else float32.
    """
    path = Path(path)
    m = np.asarray(maps)
    if m.dtype.kind not in "fiu":
        raise TypeError(f"`maps` must be a real numeric array, got dtype {m.dtype}")
    if m.ndim not in (1, 2):
        raise ValueError(f"`maps` must have shape (npix,) or (k, npix), got {m.shape}")
    nside_of(m.shape[-1], "maps")
    output_file(path, "path", overwrite=overwrite)
    if dtype is None:
        dtype = np.float64 if m.dtype == np.float64 else np.float32
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"`dtype` must be float32 or float64, got {dtype}")
    extra = dict(header.items() if isinstance(header, dict) else (header or ()))
    unit = extra.pop("UNIT", None)
    coord = extra.pop("COORDSYS", None)
    if coord is not None:
        coord = {"GALACTIC": "G", "ECLIPTIC": "E", "CELESTIAL": "C", "EQUATORIAL": "C"}.get(
            str(coord).strip().upper(), str(coord).strip().upper()[:1])
    rows = np.atleast_2d(m)
    cards = _cards(extra, len(rows))
    k = len(rows)
    names = (["I_STOKES", "Q_STOKES", "U_STOKES"] if k == 3 else
             ["I_STOKES"] if k == 1 else [f"FIELD{i}" for i in range(k)])
    head = _table_header(rows.shape[1], names, dtype, unit, coord, nest, cards)
    opener = gzip.open if path.name.endswith(".gz") else open  # healpy reads either
    # exclusive without overwrite: of two writers started together, one fails
    try:
        with replacing(path, suffix=".tmp.fits", overwrite=overwrite) as tmp, \
                opener(tmp, "wb") as f:
            f.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
            f.write(head.tostring().encode("ascii"))
            _write_rows(f, rows, dtype, head["NAXIS2"])
    except OSError as exc:  # a full disk, a read-only folder...: say which file
        if exc.filename or not exc.errno:
            raise
        raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from exc
    return path
