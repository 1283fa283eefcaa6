"""The options of one full-sky extension, in one object shared by ``forse.extend``, its output
header, the ``forse extend`` and ``forse demo`` commands and the PySM component: each option is
named, defaulted and checked here once instead of being copied through every layer."""
from __future__ import annotations

import dataclasses

from .. import _checks
from ..sphere import tiling

POL_MODES = ("qu", "p-angle", "ratio", "joint")
#: chosen on the tuning sky (seed 2): T as "ratio", Q/U of the joint generator (docs/extend.md)
DEFAULT_POL_MODE = "joint"
BLENDS = ("quadrature", "mean")
CALIBRATIONS = ("auto", "split", "spectra", "intensity", None)
LAYOUTS = ("regular", "adaptive")
BLEND_POWER = 4.0  # see forse.extend.blend_window


@dataclasses.dataclass(frozen=True)
class ExtendOptions:
    """What an extension run does (``forse.extend`` documents each option). Frozen: a
    realization is ``dataclasses.replace(options, seed=...)``."""

    input_fwhm_arcmin: float = 80.0
    nside_out: int | None = None
    model: str | dict | None = None  # bundled name, .keras path or {role: model}
    layout: str = "regular"
    size_deg: float = 20.0
    overlap_deg: float = 5.0
    seed: int = 0
    stochastic: bool | None = None
    pol_mode: str = DEFAULT_POL_MODE
    batch_size: int = 16
    ell_transition: tuple | None = None
    blend: str = "quadrature"
    blend_power: float = BLEND_POWER
    calibrate: str | None = "auto"
    backend: str = "auto"

    def check(self) -> ExtendOptions:
        """Every option's type and range, before any map is touched; returns self."""
        _checks.positive(self.input_fwhm_arcmin, "input_fwhm_arcmin")
        _checks.choice(self.pol_mode, "pol_mode", POL_MODES)
        _checks.choice(self.layout, "layout", LAYOUTS)
        _checks.choice(self.calibrate, "calibrate", CALIBRATIONS)
        _checks.choice(self.blend, "blend", BLENDS)
        if not float(self.blend_power) >= 1.0:
            raise ValueError(f"`blend_power` must be >= 1, got {self.blend_power!r}")
        _checks.integer(self.batch_size, "batch_size", 1, 4096)
        _checks.seed(self.seed)
        if self.nside_out is not None:
            _checks.nside(self.nside_out, "nside_out")
        tiling._check(self.size_deg, self.overlap_deg)
        return self


FIELDS = tuple(f.name for f in dataclasses.fields(ExtendOptions))


def resolve(options=None, overrides=None, where="extend()") -> ExtendOptions:
    """``options`` (an ExtendOptions or None: the defaults) with the keyword ``overrides``
    applied; an unknown keyword is a TypeError that lists the known ones."""
    if options is not None and not isinstance(options, ExtendOptions):
        raise TypeError(f"{where}: `options` must be a forse.options.ExtendOptions, got "
                        f"{type(options).__name__}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise TypeError(f"{where} got unexpected keyword argument(s) {unknown}; the options are "
                        f"{list(FIELDS)}")
    base = options if options is not None else ExtendOptions()
    return dataclasses.replace(base, **overrides) if overrides else base
