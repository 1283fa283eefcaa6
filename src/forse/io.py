"""HEALPix map input/output (FITS, via healpy).

``read_map`` returns float64 maps in RING order whatever the file's ordering, with missing
pixels as ``healpy.UNSEEN`` (healpy's convention on disk; forse turns them into NaN only inside
computations). ``write_map`` writes atomically (a temporary file in the destination folder,
then ``os.replace``), turns NaN into UNSEEN and records forse metadata in the header.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import healpy as hp
from ._atomic import _file_mode, replacing
import numpy as np
from astropy.io import fits

from ._checks import nside_of

__all__ = ["read_map", "write_map"]


def _healpix_hdu(path):
    try:
        with fits.open(path, memmap=False) as hdul:
            for index, hdu in enumerate(hdul):
                if isinstance(hdu, fits.BinTableHDU) and "NSIDE" in hdu.header:
                    return index, hdu.header.copy(), len(hdu.columns)
    except OSError as exc:
        raise ValueError(f"`path` {str(path)!r} is not a readable FITS file ({exc})") from None
    raise ValueError(f"`path` {str(path)!r} is not a HEALPix FITS map: no binary table HDU "
                     "with an NSIDE keyword")


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`path` {str(path)!r} does not exist")
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # healpy chatters about ordering conversion
        maps = hp.read_map(str(path), field=int(wanted[0]) if single else tuple(int(f) for f in wanted),
                           dtype=np.float64, nest=False, hdu=hdu)
    maps = np.asarray(maps, dtype=np.float64)
    nside_of(maps.shape[-1], "path")
    bad = ~np.isfinite(maps) | (maps == hp.UNSEEN)
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


def publish(tmp, path):
    """Give a finished temporary file the usual permissions and move it to ``path``."""
    os.chmod(tmp, _file_mode())
    os.replace(tmp, path)


_RESERVED = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "XTENSION", "PCOUNT",
             "GCOUNT", "TFIELDS", "NSIDE", "ORDERING", "INDXSCHM", "FIRSTPIX", "LASTPIX",
             "PIXTYPE", "OBJECT", "UNIT", "COORDSYS", "POLCCONV", "POLAR", "BAD_DATA", "EXTNAME"}


def write_map(path, maps, *, overwrite=False, header=None, nest=False):
    """Write one map ``(npix,)`` or a stack ``(k, npix)`` to a HEALPix FITS file, atomically.

    ``header`` (dict or sequence of (key, value)) is added to the header; the keys ``UNIT`` and
    ``COORDSYS`` set the column units and the coordinate system. NaN pixels are written as
    UNSEEN. ``nest=True`` declares the input to be in NEST order.
    """
    path = Path(path)
    m = np.asarray(maps)
    if m.dtype.kind not in "fiu":
        raise TypeError(f"`maps` must be a real numeric array, got dtype {m.dtype}")
    if m.ndim not in (1, 2):
        raise ValueError(f"`maps` must have shape (npix,) or (k, npix), got {m.shape}")
    nside_of(m.shape[-1], "maps")
    if path.exists() and not overwrite:
        raise FileExistsError(f"`path` {str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} of `path` does not exist")
    m = np.where(np.isfinite(m), m, hp.UNSEEN).astype(np.float64 if m.dtype == np.float64 else np.float32)
    extra = dict(header.items() if isinstance(header, dict) else (header or ()))
    unit = extra.pop("UNIT", None)
    coord = extra.pop("COORDSYS", None)
    if coord is not None:
        coord = {"GALACTIC": "G", "ECLIPTIC": "E", "CELESTIAL": "C", "EQUATORIAL": "C"}.get(
            str(coord).strip().upper(), str(coord).strip().upper()[:1])
    from . import __version__

    cards = [("CREATOR", "forse"), ("FORSEVER", __version__)]
    cards += [(str(k)[:8].upper(), v) for k, v in extra.items() if str(k).upper() not in _RESERVED]
    k = 1 if m.ndim == 1 else m.shape[0]
    names = (["I_STOKES", "Q_STOKES", "U_STOKES"] if k == 3 else
             ["I_STOKES"] if k == 1 else [f"FIELD{i}" for i in range(k)])
    with replacing(path, suffix=".tmp.fits") as tmp:
        hp.write_map(tmp, m, nest=nest, coord=coord, column_names=names, dtype=[m.dtype] * k,
                     column_units=unit, extra_header=cards, overwrite=True)
    return path
