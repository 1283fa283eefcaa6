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


class _FakeDeviceArray:
    """A host array wrapped as if it lived on the device (the module name is what counts)."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def get(self):
        return self.a.copy()


_FakeDeviceArray.__module__ = "cupy._core.core"


@pytest.fixture
def fake_cupy(cuda_visible, monkeypatch):
    import sys
    import types

    mod = types.ModuleType("cupy")
    mod.asarray = _FakeDeviceArray
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


def test_on_host_moves_numpy_arguments_to_the_device_and_back(fake_cupy):
    """The pipelines hold numpy maps: on "cuda", on_host hands the kernel device arrays (and
    leaves other arguments alone) and returns numpy; on other backends it calls the kernel as it
    is."""
    rng = np.random.default_rng()
    m, lon = rng.normal(size=48), [10.0]
    seen = {}

    def kernel(x, lon_deg, *, scale, backend):
        seen.update(x=x, lon=lon_deg, backend=backend)
        return _FakeDeviceArray(x.a * scale), _FakeDeviceArray(x.a)

    a, b = _dispatch.on_host(kernel, m, lon, scale=2.0, backend="cuda")
    assert _dispatch.is_cupy(seen["x"]) and seen["lon"] is lon and seen["backend"] == "cuda"
    assert isinstance(a, np.ndarray) and np.array_equal(a, 2 * m) and np.array_equal(b, m)
    on_dev = _dispatch.to_device("cuda", m)
    assert _dispatch.is_cupy(on_dev)
    _dispatch.on_host(kernel, on_dev, lon, scale=1.0, backend="cuda")
    assert seen["x"] is on_dev  # a device array is not copied again
    assert _dispatch.on_host(lambda x, backend: (x, backend), m, backend="cpu") == (m, "cpu")
    assert _dispatch.to_device("cpu", m) is m and _dispatch.to_host(m) is m


def test_cuda_for_host_names_the_flag(cuda_visible, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy fails
    with pytest.raises(RuntimeError, match=r"--backend cuda needs CuPy"):
        _dispatch.cuda_for_host("--backend")
    monkeypatch.setattr(_dispatch, "has_cuda_device", lambda: False)
    with pytest.raises(RuntimeError, match=r"^backend=cuda cannot run here: .*no CUDA device"):
        _dispatch.cuda_for_host()


@pytest.mark.parametrize("command", [["training-set", "-o", "OUT"], ["demo", "-o", "OUT"]])
def test_cli_backend_cuda_refused_before_work(command, tmp_path, capsys, monkeypatch):
    """`--backend cuda` where it cannot run: one line naming the flag, before any sky is drawn
    (the output folder is not even created)."""
    from forse.cli import main

    monkeypatch.setattr(_dispatch, "has_cuda_device", lambda: False)
    out = tmp_path / "o"
    argv = [a if a != "OUT" else str(out) for a in command] + ["--backend", "cuda", "--quiet"]
    assert main(argv) != 0
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and "--backend cuda cannot run here" in err[0], err
    assert not out.exists()


def test_parents_native_and_healpy_agree():
    from forse._pixels import parents

    ref = parents(256, 16, backend="numpy")
    assert ref.dtype.kind == "i" and ref.size == 12 * 256**2
    if HAS_CPU:
        np.testing.assert_array_equal(parents(256, 16, backend="cpu"), ref)
    np.testing.assert_array_equal(parents(256, 16, 1000, 5000, backend="auto"), ref[1000:5000])
