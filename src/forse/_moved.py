"""The former flat module names (``forse.extend`` ...) as the moved modules themselves: one
import hook instead of an alias file per module. ``import forse.extend`` returns the module
object of ``forse.pipeline.extend`` (not a copy: patching one patches the other)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: subpackage of every module that moved out of the flat layout
MOVED = {m: pkg for pkg, mods in {
    "sphere": ("projection", "sht", "tiling", "smoothing"),
    "stats": ("minkowski", "spectra", "validate", "report", "skystats"),
    "data": ("sky", "masks", "training_set", "io", "units"),
    "pipeline": ("extend", "normalize", "calibrate", "options", "parallel", "pysm"),
}.items() for m in mods}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        pkg, _, mod = name.partition(".")
        if pkg == "forse" and mod in MOVED:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        mod = spec.name.partition(".")[2]
        module = importlib.import_module(f"forse.{MOVED[mod]}.{mod}")
        spec.loader_state = module.__spec__  # the import system puts the alias's spec on it
        return module

    def exec_module(self, module):
        # already executed under its new name: only its own spec back (relative imports
        # inside it resolve by it)
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
