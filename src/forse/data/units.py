"""Map units at a reference frequency: CMB thermodynamic temperature (``uK_CMB``),
Rayleigh-Jeans brightness temperature (``uK_RJ``) and intensity (``MJy/sr``).

forse maps are in the unit of their input (the built-in sky: uK_CMB at 353 GHz, Planck's dust
convention); PySM templates are in uK_RJ. A fluctuation converts between the three with the
derivative of the CMB black body (astropy's ``thermodynamic_temperature``, T_CMB = 2.7255 K)
and the Rayleigh-Jeans law (``brightness_temperature``) at the map's reference frequency.
"""
from __future__ import annotations

import re

import numpy as np

from .._checks import bad_mask

__all__ = ["UNITS", "BUILTIN_UNIT", "BUILTIN_FREQ_GHZ", "canonical", "factor", "convert"]

UNITS = ("uK_CMB", "uK_RJ", "MJy/sr")
BUILTIN_UNIT, BUILTIN_FREQ_GHZ = "uK_CMB", 353.0  # the built-in sky (forse sky, forse demo)
T_CMB_K = 2.7255
_PREFIX = {"": 1e6, "m": 1e3, "u": 1.0}  # in uK


def canonical(unit, name="unit"):
    """``(base, scale)``: ``base`` one of ``UNITS``, ``scale`` what one ``unit`` is in it
    (``"K_CMB"`` -> ``("uK_CMB", 1e6)``); spelling and case as in FITS headers are accepted."""
    text = str(unit).strip().replace(" ", "")
    if text.lower() in ("mjy/sr", "mjysr-1", "mjy/steradian"):
        return "MJy/sr", 1.0
    match = re.fullmatch(r"(|m|u|µ)K_?(CMB|RJ)", text, flags=re.IGNORECASE)
    if match is None or match.group(1) == "M":  # mega-kelvin is no map unit
        raise ValueError(f"`{name}` must be one of {', '.join(UNITS)} (or K_CMB, mK_RJ ...), "
                         f"got {unit!r}")
    prefix = match.group(1).lower().replace("µ", "u")
    return f"uK_{match.group(2).upper()}", _PREFIX[prefix]


def _in_mjysr(base, freq_ghz):
    """One ``base`` unit (a fluctuation) in MJy/sr at ``freq_ghz``."""
    import astropy.units as u

    if base == "MJy/sr":
        return 1.0
    nu = freq_ghz * u.GHz
    eq = (u.thermodynamic_temperature(nu, T_cmb=T_CMB_K * u.K) if base == "uK_CMB"
          else u.brightness_temperature(nu))
    return (1.0 * u.uK).to_value(u.MJy / u.sr, equivalencies=eq)


def factor(from_unit, to_unit, freq_ghz=None):
    """What a map in ``from_unit`` is multiplied by to be in ``to_unit`` at ``freq_ghz`` (GHz;
    needed unless the two units differ by a prefix only)."""
    (a, sa), (b, sb) = canonical(from_unit, "from_unit"), canonical(to_unit, "to_unit")
    if a == b:
        return sa / sb
    if freq_ghz is None or not float(freq_ghz) > 0:
        raise ValueError(f"converting {from_unit} to {to_unit} needs the map's reference "
                         f"frequency in GHz (`freq_ghz` > 0), got {freq_ghz!r}")
    return sa * _in_mjysr(a, float(freq_ghz)) / (_in_mjysr(b, float(freq_ghz)) * sb)


def convert(maps, from_unit, to_unit, freq_ghz=None):
    """``maps`` (float array) in ``to_unit``, in place; UNSEEN and NaN pixels stay as they are."""
    f = factor(from_unit, to_unit, freq_ghz)
    if f != 1.0:
        m = np.asarray(maps)
        m[~bad_mask(m)] *= f
    return maps
