"""``forse.spectra`` is ``forse.stats.spectra``: the module moved into the stats subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .stats import spectra as _module

sys.modules[__name__] = _module
