"""Model cards (the JSON beside a ``.keras`` generator): find, read and check them without
importing TensorFlow, so that a command can refuse a broken model before the slow start."""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from ._checks import integer, positive

BUNDLED = ("dust-T", "dust-Q", "dust-U", "dust-TQU", "dust3-T", "dust3-TQU")
#: the card layout this version writes and reads; another major version is refused
CARD_FORMAT = "forse-generator-card/1"
#: the bundled models' amplitude range, for 3.75' pixels; other pixels scale it (a model trained
#: on 15' pixels cannot see l = 1000: its Nyquist multipole is 720)
ELL_RANGE, ELL_RANGE_PIXEL = (300.0, 1000.0), 3.75


def default_ell_range(pixel_arcmin: float) -> tuple:
    f = ELL_RANGE_PIXEL / float(pixel_arcmin)
    return (ELL_RANGE[0] * f, ELL_RANGE[1] * f)


def resolve_model_path(path_or_name) -> Path:
    """The ``.keras`` file for a bundled name (``BUNDLED``) or a path."""
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise TypeError(f"`path_or_name` must be a bundled model name or a path, got "
                        f"{type(path_or_name).__name__}")
    s = os.fspath(path_or_name)
    if s in BUNDLED:
        p = Path(str(resources.files("forse").joinpath("gan", "models", f"{s}.keras")))
        if not p.is_file():
            raise FileNotFoundError(f"bundled model {s!r} is missing from the installed package "
                                    f"(looked for {p})")
        return p
    p = Path(s)
    if p.suffix != ".keras" and not p.exists():
        p = p.with_name(p.name + ".keras")
    if not p.is_file():
        raise FileNotFoundError(f"no generator at {s!r}: expected a .keras file or one of the "
                                f"bundled names {BUNDLED}")
    return p


def load_card(path_or_name) -> dict:
    """The model card (JSON beside the ``.keras`` file) of a bundled name or path; {} if none."""
    card_path = resolve_model_path(path_or_name).with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    if isinstance(card, dict) and _format_error(card):
        raise ValueError(f"model card {str(card_path)!r}: {_format_error(card)}")
    return card


def checked_card(path_or_name) -> dict:
    """The card of a model, checked to hold what the extension needs: a ValueError naming the
    card file and the field otherwise (a missing card, a zero pixel size, a NaN beam, an
    ``ell_range`` above the patches' Nyquist multipole...)."""
    card_path = resolve_model_path(path_or_name).with_suffix(".json")
    if not card_path.is_file():
        raise ValueError(f"model {str(path_or_name)!r} has no card {str(card_path)!r}: forse "
                         "needs the JSON written beside the .keras by `forse train`")
    try:
        card = json.loads(card_path.read_text())
        _check(card)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        what = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"model card {str(card_path)!r}: {what}") from None
    return card


def _major(fmt) -> tuple:
    """("forse-generator-card", "1") of "forse-generator-card/1.2"; None when not such a name."""
    if not isinstance(fmt, str) or fmt.count("/") != 1:
        return None
    name, version = fmt.split("/")
    return name, version.split(".")[0]


def _format_error(card: dict):
    """Why this forse cannot read the card's layout, or None (a card without ``format`` is
    read as the current one)."""
    fmt = card.get("format", CARD_FORMAT)
    if _major(fmt) == _major(CARD_FORMAT):
        return None
    return (f"`format` is {fmt!r}, which this forse (card format {CARD_FORMAT!r}) cannot read "
            f"(written by forse {card.get('forse_version', '?')}): retrain the model with this "
            "version or use the forse that wrote it")


def _check(card: dict) -> None:
    if not isinstance(card, dict):
        raise ValueError("expected a JSON object")
    if _format_error(card):
        raise ValueError(_format_error(card))
    px = positive(card["pixel_arcmin"], "pixel_arcmin", hi=600.0)
    positive(card["fwhm_hr_arcmin"], "fwhm_hr_arcmin", hi=6000.0)
    positive(card.get("fwhm_lr_arcmin", 1.0), "fwhm_lr_arcmin", hi=6000.0)
    if integer(card.get("patch_size", 64), "patch_size", 4, 4096) % 4:
        raise ValueError(f"`patch_size` must be a multiple of 4, got {card['patch_size']!r}")
    if card.get("stokes", "T") not in ("T", "Q", "U", "TQU"):
        raise ValueError(f"`stokes` must be 'T', 'Q', 'U' or 'TQU', got {card['stokes']!r}")
    amp = float(card.get("noise_amplitude", 0.0))
    if not (np.isfinite(amp) and amp >= 0):
        raise ValueError(f"`noise_amplitude` must be a finite number >= 0, got {amp!r}")
    lo, hi = (float(v) for v in card.get("normalization", {}).get("ell_range", ELL_RANGE))
    nyquist = 180.0 * 60.0 / px
    if not (0 <= lo < hi <= nyquist):
        raise ValueError(f"`normalization.ell_range` must be two increasing multipoles below the "
                         f"Nyquist multipole {nyquist:.0f} of {px:g}' pixels, got [{lo:g}, {hi:g}]")
