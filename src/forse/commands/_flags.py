"""Flags every command spells the same way: ``-o/--output``, ``--quiet`` (``--no-progress`` is
its old spelling in train and validate), ``--backend``."""
from __future__ import annotations


def quiet(p, help="no progress bar or timing table"):
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help=help)


def backend(p):
    from .._dispatch import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="native kernels of the projections and Minkowski functionals: auto (CUDA "
                        "when built and a device is there, else the C++ CPU core), cpu, cuda or "
                        "numpy (the slow reference)")


def check_backend(args):
    """``--backend cuda`` where it cannot run (no CUDA build, no device, no CuPy) is refused
    here, in the command's checks, before any heavy work."""
    from .._dispatch import cuda_for_host

    if getattr(args, "backend", None) == "cuda":
        try:
            cuda_for_host("--backend")
        except RuntimeError as exc:
            raise ValueError(str(exc)) from None
