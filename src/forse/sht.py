"""``forse.sht`` is ``forse.sphere.sht``: the module moved into the sphere subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .sphere import sht as _module

sys.modules[__name__] = _module
