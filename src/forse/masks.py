"""``forse.masks`` is ``forse.data.masks``: the module moved into the data subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .data import masks as _module

sys.modules[__name__] = _module
