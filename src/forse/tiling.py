"""``forse.tiling`` is ``forse.sphere.tiling``: the module moved into the sphere subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .sphere import tiling as _module

sys.modules[__name__] = _module
