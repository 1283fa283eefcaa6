"""``forse.parallel`` is ``forse.pipeline.parallel``: the module moved into the pipeline subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .pipeline import parallel as _module

sys.modules[__name__] = _module
