"""forse._dispatch: which backend a call resolves to, and the errors on the way."""
import numpy as np
import pytest

from _shared import HAS_CPU, without_cuda_build
from forse import _dispatch
from forse import minkowski as mk
from forse import projection as P


class FakeCupyArray:
    """Looks like a CuPy array to the dispatch (which goes by the type's module)."""


FakeCupyArray.__module__ = "cupy._core.core"


@pytest.fixture
def cuda_visible(monkeypatch):
    """A CUDA build and a device, as far as the dispatch can tell: resolution is all these tests
    reach, so they run on any machine."""
    monkeypatch.setattr(_dispatch, "has_cuda_build", lambda: True)
    monkeypatch.setattr(_dispatch, "has_cuda_device", lambda: True)


def test_host_backends():
    m = np.zeros(12)
    assert _dispatch.resolve("numpy", m=m) == "numpy"
    assert _dispatch.resolve("auto", m=m) == ("cpu" if HAS_CPU else "numpy")
    assert _dispatch.resolve("auto") == ("cpu" if HAS_CPU else "numpy")
    with pytest.raises(ValueError, match="backend='gpu' is not one of"):
        _dispatch.resolve("gpu", m=m)
    with pytest.raises(TypeError, match="backend='numpy' takes numpy arrays, got a CuPy array"):
        _dispatch.resolve("numpy", m=FakeCupyArray())


def test_cuda_with_a_cupy_array(cuda_visible):
    assert _dispatch.resolve("cuda", m=FakeCupyArray()) == "cuda"
    assert _dispatch.resolve("auto", m=FakeCupyArray()) == "cuda"
    # a host-side extra (the back-projection window is copied to the host) is fine on CUDA
    assert _dispatch.resolve("cuda", np.ones((4, 4)), patches=FakeCupyArray()) == "cuda"


def test_cuda_with_a_numpy_array_names_the_argument(cuda_visible):
    """backend="cuda" with host data used to resolve to "cuda" and fail later on `.data.ptr`
    (reachable from `forse training-set --backend cuda`); now a TypeError says what is wrong."""
    with pytest.raises(TypeError, match=r"`m` is a numpy\.ndarray, but backend='cuda' works on "
                                        r"CuPy arrays: pass cupy\.asarray\(m\) \(or use "
                                        r"backend='cpu' or 'numpy' for host arrays\)"):
        P.healpix_to_patches(np.zeros(12 * 8**2), [0.0], [0.0], 8, 60.0, backend="cuda")
    with pytest.raises(TypeError, match=r"`patches` is a numpy\.ndarray, but backend='cuda'"):
        P.patches_to_healpix(np.zeros((1, 8, 8)), [0.0], [0.0], 8, 60.0, backend="cuda")
    with pytest.raises(TypeError, match=r"`images` is a numpy\.ndarray, but backend='cuda'"):
        mk.functionals(np.zeros((4, 5)), [0.0], backend="cuda")
    with pytest.raises(TypeError, match=r"`m` is a list, but backend='cuda'"):
        _dispatch.resolve("cuda", m=[0.0] * 12)


def test_auto_with_cupy_extras_but_host_data_names_the_data(cuda_visible):
    with pytest.raises(TypeError, match=r"`patches` is a numpy\.ndarray, but backend='auto' "
                                        r"picked CUDA for the CuPy input"):
        _dispatch.resolve("auto", FakeCupyArray(), patches=np.zeros((1, 8, 8)))


@without_cuda_build
def test_cuda_checks_the_build_first():
    with pytest.raises(RuntimeError, match="built without CUDA support"):
        _dispatch.resolve("cuda", m=np.zeros(12))


def test_former_module_names_are_the_moved_modules():
    """The flat names (forse.extend, forse.validate ...) are the subpackage modules themselves."""
    import importlib

    moves = {"sphere": ["projection", "sht", "tiling", "smoothing"],
             "stats": ["minkowski", "spectra", "validate", "report", "skystats"],
             "data": ["sky", "masks", "training_set", "io", "units"],
             "pipeline": ["extend", "normalize", "calibrate", "options", "parallel", "pysm"]}
    for pkg, mods in moves.items():
        for m in mods:
            old = importlib.import_module(f"forse.{m}")
            assert old is importlib.import_module(f"forse.{pkg}.{m}"), m
            assert old.__spec__.name == f"forse.{pkg}.{m}", m  # its own spec, not the alias's
