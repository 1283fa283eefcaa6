"""``forse.projection`` is ``forse.sphere.projection``: the module moved into the sphere subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .sphere import projection as _module

sys.modules[__name__] = _module
