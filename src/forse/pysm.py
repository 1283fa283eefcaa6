"""``forse.pysm`` is ``forse.pipeline.pysm``: the module moved into the pipeline subpackage; this
name stays (the same module object, not a copy)."""
import sys

from .pipeline import pysm as _module

sys.modules[__name__] = _module
