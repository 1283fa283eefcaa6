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

    from ._checks import available_cpus

    for var in ("FORSE_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) > 0:
            return int(v)
    return available_cpus()


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


def on_host(fn, *args, backend: str = "auto", **kw):
    """``fn(*args, backend=backend, **kw)`` for a pipeline that holds numpy arrays (extend,
    training sets, validate). The public kernels take CuPy arrays on "cuda" and refuse numpy
    ones; here, on "cuda", numpy arguments are copied to the device and the result comes back
    as numpy. Other backends call ``fn`` as it is."""
    if backend != "cuda":
        return fn(*args, backend=backend, **kw)
    cupy = cuda_for_host()
    import numpy as np

    def dev(a):
        return cupy.asarray(a) if isinstance(a, np.ndarray) else a

    out = fn(*map(dev, args), backend=backend, **{k: dev(v) for k, v in kw.items()})
    return tuple(map(to_host, out)) if isinstance(out, tuple) else to_host(out)


def cuda_for_host(flag: str = "backend"):
    """The ``cupy`` module, after checking that backend "cuda" can run here (a CUDA build, a
    visible device, CuPy importable); else a RuntimeError naming ``flag`` (``--backend`` on the
    command line), so a command refuses before any heavy work."""
    shown = f"{flag} " if flag.startswith("-") else f"{flag}="
    why = ("forse was built without CUDA support (rebuild with a CUDA compiler, "
           "-DFORSE_USE_CUDA=ON)" if not has_cuda_build()
           else "no CUDA device is visible" if not has_cuda_device() else None)
    if why:
        raise RuntimeError(f"{shown}cuda cannot run here: {why}; use auto or cpu")
    try:
        import cupy
    except ImportError:
        raise RuntimeError(f"{shown}cuda needs CuPy for the device arrays (pip install "
                           "cupy-cuda12x, or the build matching your CUDA); use auto or cpu"
                           ) from None
    return cupy


def to_device(backend: str, a):
    """``a`` as the kernels of ``backend`` read it: a CuPy copy on "cuda", else ``a`` itself
    (for a pipeline that hands one full-sky map to many kernel calls)."""
    return cuda_for_host().asarray(a) if backend == "cuda" else a


def to_host(a):
    """A numpy array of ``a`` (a CuPy array is copied back; anything else is returned)."""
    return a.get() if is_cupy(a) else a


def call(table: dict, backend: str, *arrays, **data):
    """Pick the implementation for ``backend`` from ``table`` ({name: callable}); the arrays
    as in :func:`resolve`."""
    name = resolve(backend, *arrays, **data)
    return table[name]
