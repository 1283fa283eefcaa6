"""``forse.smoothing`` is ``forse.sphere.smoothing``: the module moved into the sphere subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .sphere import smoothing as _module

sys.modules[__name__] = _module
