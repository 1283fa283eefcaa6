"""The one dispatch point between the public API and its backends.

Backends: ``"numpy"`` (pure-numpy reference, the definition), ``"cpu"`` (C++/OpenMP in
``forse._core``), ``"cuda"`` (CUDA kernels in ``forse._core`` on CuPy arrays) and ``"auto"``
(CUDA for CuPy inputs when the build and a device allow it, else the C++ core, else numpy).
Every public function resolves its backend here and nowhere else.
"""
from __future__ import annotations

try:  # the compiled core is optional at import time so that a source checkout still works
    from . import _core
except ImportError:  # pragma: no cover - exercised only without a build
    _core = None

BACKENDS = ("auto", "numpy", "cpu", "cuda")


def nthreads() -> int:
    """Threads for the Python-side parallel numerics (harmonic transforms, FFTs):
    ``FORSE_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this process may run on
    (under MPI, set one of them to the cores per rank)."""
    import os

    for var in ("FORSE_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def has_cpu() -> bool:
    return _core is not None


def has_cuda_build() -> bool:
    return _core is not None and bool(getattr(_core, "HAS_CUDA", False))


def has_cuda_device() -> bool:
    if not has_cuda_build():
        return False
    try:
        return int(_core.cuda_device_count()) > 0
    except Exception:  # driver missing or broken: no device
        return False


def is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


def resolve(backend: str, *arrays, **data) -> str:
    """Return the concrete backend ("numpy", "cpu" or "cuda") for ``backend``.

    ``data`` names the arrays the kernel works on (``m=m``): on "cuda" each must be a CuPy
    array, else a TypeError names it. Positional ``arrays`` may live on either side (a window
    the caller copies to the host, say); a CuPy one among them still makes "auto" pick CUDA.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}")
    on_gpu = any(is_cupy(a) for a in (*arrays, *data.values()))
    if backend == "auto":
        if on_gpu:
            if not has_cuda_device():
                raise RuntimeError("CuPy arrays were given but forse was built without CUDA "
                                   "support or no CUDA device is visible")
            _on_device(data, "backend='auto' picked CUDA for the CuPy input")
            return "cuda"
        return "cpu" if has_cpu() else "numpy"
    if backend == "cuda":
        if not has_cuda_build():
            raise RuntimeError("backend='cuda' was asked for, but forse was built without CUDA "
                               "support (rebuild with a CUDA compiler, -DFORSE_USE_CUDA=ON)")
        if not has_cuda_device():
            raise RuntimeError("backend='cuda' was asked for, but no CUDA device is visible")
        _on_device(data, "backend='cuda' works on CuPy arrays")
        return "cuda"
    if on_gpu:
        raise TypeError(f"backend={backend!r} takes numpy arrays, got a CuPy array; "
                        "use backend='cuda' or 'auto', or move the data with cupy.asnumpy")
    if backend == "cpu" and not has_cpu():
        raise RuntimeError("backend='cpu' was asked for, but the compiled core forse._core "
                           "is not importable (install the package with pip install .)")
    return backend


def _on_device(data: dict, why: str) -> None:
    for name, a in data.items():
        if not is_cupy(a):
            t = type(a)
            kind = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
            raise TypeError(f"`{name}` is a {kind}, but {why}: pass cupy.asarray({name}) "
                            "(or use backend='cpu' or 'numpy' for host arrays)")


def call(table: dict, backend: str, *arrays, **data):
    """Pick the implementation for ``backend`` from ``table`` ({name: callable}); the arrays
    as in :func:`resolve`."""
    name = resolve(backend, *arrays, **data)
    return table[name]
