"""A PySM 3 dust component whose templates are forse-extended maps (``pip install "forse[pysm]"``).

``ForseDust`` is PySM's ``ModifiedBlackBody`` with a forse map as its I, Q, U template: the
template is brought to uK_RJ at its reference frequency with PySM's unit equivalencies, and
PySM scales it with frequency (spectral index and dust temperature, constants or maps) and
integrates bandpasses as for its own d0/d1 models::

    import pysm3, pysm3.units as u
    from forse.pysm import forse_dust

    dust = forse_dust(nside=512, seed=1)                 # built-in sky, extended once, cached
    sky = pysm3.Sky(nside=512, component_objects=[dust])
    m = sky.get_emission(np.linspace(130, 170, 9) * u.GHz)   # bandpass-integrated, uK_RJ

``forse_dust`` is the preset: it extends a user's low-resolution map (or the built-in synthetic
sky) once per seed and options, caches the result as a FITS file (``FORSE_CACHE`` or
``~/.cache/forse``) and returns the component. PySM changes a template's Nside with
``healpy.ud_grade``, as for its own templates.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

try:
    import pysm3
    import pysm3.units as u
    from pysm3.models.dust import ModifiedBlackBody
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("forse.pysm needs PySM 3: pip install \"forse[pysm]\" (or pysm3)") from exc

__all__ = ["ForseDust", "forse_dust", "MBB_INDEX", "MBB_TEMPERATURE_K"]

MBB_INDEX, MBB_TEMPERATURE_K = 1.54, 20.0  # PySM d0's constants (Planck 2015 dust)


def _file_units(path):
    """``(unit, reference frequency, number of columns)`` from a FITS map's header alone."""
    from ..data import io

    _, head, ncol = io._healpix_hdu(path)
    unit = str(head.get("TUNIT1", "")).strip() or None
    return unit, head.get("REFFREQ"), ncol


def _read_template(template, nside, unit, freq_ref):
    """(I, Q, U) Quantity at ``nside`` in ``unit`` and the reference frequency: a FITS path
    (unit and REFFREQ from its header unless given) or an array at ``nside``. Masked (UNSEEN)
    pixels become NaN, which PySM's scaling keeps as NaN."""

    from .._checks import unseen

    if isinstance(template, (str, os.PathLike)):
        file_unit, file_freq, ncol = _file_units(template)
        unit = unit or file_unit
        freq_ref = freq_ref if freq_ref is not None else file_freq
        maps = pysm3.read_map(str(template), nside, unit=unit,
                              field=(0, 1, 2) if ncol >= 3 else 0)
        maps = maps.astype(np.float64, copy=False)
    else:
        maps = np.array(getattr(template, "value", template), dtype=np.float64)
        unit = unit or str(getattr(template, "unit", "")) or None
        if maps.shape[-1] != 12 * nside**2:
            raise ValueError(f"`template` has {maps.shape[-1]} pixels, expected Nside {nside} "
                             f"({12 * nside**2}); pass a FITS path to change its Nside")
        maps = maps << u.Unit(unit) if unit else maps
    if not unit:
        raise ValueError("`template` has no unit: pass unit='uK_CMB', 'uK_RJ' or 'MJy/sr'")
    if freq_ref is None:
        raise ValueError("`template` has no reference frequency (REFFREQ): pass freq_ref")
    maps[unseen(maps.value)] = np.nan
    return maps, u.Quantity(freq_ref, u.GHz)


class ForseDust(ModifiedBlackBody):
    """Modified black-body dust with a forse-extended map as its template.

    Parameters
    ----------
    template : FITS path (``forse extend`` output: UNIT and REFFREQ from its header) or an array
        ``(3, npix)`` / ``(npix,)`` (T only: Q = U = 0) at ``nside``, or an astropy Quantity.
    nside : Nside of the emission (a FITS template is ``ud_grade``-d to it, as PySM does).
    freq_ref : reference frequency of the template (GHz or a Quantity); default REFFREQ.
    unit : the template's unit (uK_CMB, uK_RJ, MJy/sr); default the file's or Quantity's.
    mbb_index, mbb_temperature : spectral index and dust temperature in K: numbers, maps at
        ``nside`` or FITS paths (default PySM d0's 1.54 and 20 K).
    """

    def __init__(self, template, nside, *, freq_ref=None, unit=None, mbb_index=MBB_INDEX,
                 mbb_temperature=MBB_TEMPERATURE_K, max_nside=None, map_dist=None):
        maps, freq_ref = _read_template(template, int(nside), unit, freq_ref)
        maps = np.atleast_2d(maps)
        if len(maps) == 1:  # T only: PySM's ModifiedBlackBody always carries Q and U
            maps = np.concatenate([maps, np.zeros((2, maps.shape[1])) << maps.unit])
        rj = maps.to(u.uK_RJ, equivalencies=u.cmb_equivalencies(freq_ref))
        self.template_path = template if isinstance(template, (str, os.PathLike)) else None
        super().__init__(map_I=rj, freq_ref_I=freq_ref, freq_ref_P=freq_ref,
                         map_mbb_index=_param(mbb_index), map_mbb_temperature=_param(mbb_temperature),
                         nside=int(nside), max_nside=max_nside or int(nside),
                         unit_mbb_temperature="K", map_dist=map_dist)


def _param(x):
    """PySM reads a path itself; numbers and arrays it takes as they are."""
    return str(x) if isinstance(x, os.PathLike) else x


def cache_dir():
    return Path(os.environ.get("FORSE_CACHE") or Path.home() / ".cache" / "forse")


def _input_key(input_map):
    if input_map is None:
        return "builtin"
    if isinstance(input_map, (str, os.PathLike)):
        st = os.stat(input_map)
        return f"{os.path.abspath(input_map)}:{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(np.ascontiguousarray(input_map).view(np.uint8)).hexdigest()


def template_path(nside, *, input_map=None, seed=1, model=None, input_fwhm_arcmin=80.0,
                  folder=None, **extend_kwargs):
    """The cache file ``forse_dust`` reads or writes for these settings."""
    from .. import __version__

    key = json.dumps([__version__, _input_key(input_map), int(nside), int(seed), str(model),
                      float(input_fwhm_arcmin), sorted(extend_kwargs.items())], default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(folder or cache_dir()) / f"forse_dust_nside{int(nside)}_seed{int(seed)}_{digest}.fits"


def _input_units(input_map, unit, freq_ref):
    """Unit and reference frequency (GHz) of the map to extend, known before extending it."""
    from ..data import units

    if input_map is None:
        return units.BUILTIN_UNIT, units.BUILTIN_FREQ_GHZ
    if isinstance(input_map, (str, os.PathLike)):
        file_unit, file_freq, _ = _file_units(input_map)
        unit = unit or file_unit
        freq_ref = freq_ref if freq_ref is not None else file_freq
    if not unit or freq_ref is None:
        raise ValueError("`input_map` needs a unit and a reference frequency: pass `unit` "
                         "('uK_CMB', 'uK_RJ' or 'MJy/sr') and `freq_ref` (GHz), or a FITS file "
                         "whose header has TUNIT1 and REFFREQ")
    units.canonical(unit)
    return str(unit), float(u.Quantity(freq_ref, u.GHz).value)


def _make_template(path, nside, input_map, seed, model, input_fwhm_arcmin, unit, freq_ghz,
                   extend_kwargs):
    from ..data import io
    from .extend import extend, output_header

    if input_map is None:  # the built-in sky at the model's resolution, brought to the input beam
        from ..data.sky import synthetic_dust
        from ..gan.models import load_card
        from ..sphere.smoothing import resmooth

        t_model = model["T"] if isinstance(model, dict) else model or "dust-T"
        fwhm_hr = float(load_card(t_model)["fwhm_hr_arcmin"])
        lr = resmooth(synthetic_dust(nside, seed=seed, stokes="TQU", fwhm_arcmin=fwhm_hr),
                      fwhm_hr, input_fwhm_arcmin)
    elif isinstance(input_map, (str, os.PathLike)):
        lr = io.read_map(input_map)[0]
    else:
        lr = np.asarray(input_map, dtype=np.float64)
    from .options import FIELDS, resolve

    opts = resolve(None, {"input_fwhm_arcmin": input_fwhm_arcmin, "nside_out": nside,
                          "model": model, "seed": seed,
                          **{k: v for k, v in extend_kwargs.items() if k in FIELDS}},
                   "forse_dust()")
    run = {k: v for k, v in extend_kwargs.items() if k not in FIELDS}  # fit_mask, timings
    out = extend(lr, opts, progress=False, comm=None, **run)
    head = output_header(opts, stokes="TQU" if np.ndim(out) == 2 else "T", unit=unit,
                         freq_ghz=freq_ghz)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_map(path, out, header=head, overwrite=True)


def forse_dust(nside, *, input_map=None, seed=1, model=None, input_fwhm_arcmin=80.0,
               nside_template=2048, unit=None, freq_ref=None, mbb_index=MBB_INDEX,
               mbb_temperature=MBB_TEMPERATURE_K, cache=None, map_dist=None, **extend_kwargs):
    """A ``ForseDust`` component from a forse-extended map, extended once and cached.

    ``input_map``: the low-resolution T or TQU map to extend (a FITS path: unit and REFFREQ from
    its header; or an array, then give ``unit`` and ``freq_ref``), or None for the built-in
    synthetic sky (uK_CMB at 353 GHz, a stand-in for Planck's dust) drawn with ``seed`` at the
    model's resolution and brought to ``input_fwhm_arcmin``. The extension runs at
    ``nside_template`` with ``seed`` (and ``model`` and ``extend_kwargs``, see
    ``forse.extend.extend``); the map is kept in ``cache`` (default ``FORSE_CACHE`` or
    ``~/.cache/forse``) and read from there next time. ``nside`` is the emission's Nside.
    """
    unit, freq_ghz = _input_units(input_map, unit, freq_ref)
    path = template_path(nside_template, input_map=input_map, seed=seed, model=model,
                         input_fwhm_arcmin=input_fwhm_arcmin, folder=cache, unit=unit,
                         freq_ghz=freq_ghz, **extend_kwargs)
    if not path.is_file():
        _make_template(path, nside_template, input_map, seed, model, input_fwhm_arcmin, unit,
                       freq_ghz, extend_kwargs)
    return ForseDust(path, nside, mbb_index=mbb_index,
                     mbb_temperature=mbb_temperature, max_nside=nside_template, map_dist=map_dist)
