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
