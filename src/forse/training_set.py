"""``forse.training_set`` is ``forse.data.training_set``: the module moved into the data subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .data import training_set as _module

sys.modules[__name__] = _module
