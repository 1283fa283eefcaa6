"""``forse.units`` is ``forse.data.units``: the module moved into the data subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .data import units as _module

sys.modules[__name__] = _module
