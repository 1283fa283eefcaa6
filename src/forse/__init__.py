"""forse: realistic non-Gaussian small scales for CMB Galactic foreground maps.

Conventions (used everywhere in the package):

* Galactic longitude/latitude in degrees; HEALPix maps in RING order unless ``nest=True``;
  missing pixels are ``healpy.UNSEEN`` on disk and NaN inside computations.
* A patch is a square gnomonic (FITS TAN) image of ``npix x npix`` pixels of ``pixel_arcmin``
  (measured at the tangent point), centred on ``(lon, lat)`` at pixel ``((npix-1)/2, (npix-1)/2)``;
  ``patch[i, j]`` has row 0 at the top (north of the centre) and longitude increasing with ``j``.
"""
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("forse")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0+src"

# The layout (README "Layout"): sphere (geometry and transforms), stats (statistics and
# validation), data (sky and training data), gan, pipeline (the extension), cli/commands. The
# modules keep their former names too (forse.extend is forse.pipeline.extend). Submodules load
# on first use (``forse.gan`` pulls in TensorFlow, so nothing is imported eagerly).
from ._moved import MOVED as _MOVED
from ._moved import install as _install_moved

_install_moved()
_SUBMODULES = ("sphere", "stats", "data", "gan", "pipeline", *_MOVED)
__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'forse' has no attribute {name!r}")
