"""MPI helpers: forse runs serially unless it was started under ``mpiexec`` with mpi4py present.

Work is split by whole generator batches (never by single patches), so that every batch a rank
runs is bit-for-bit the batch the serial run would have run: the gathered result is identical to
the serial one.
"""
from __future__ import annotations

import os


def world():
    """The MPI world communicator when running under more than one rank, else ``None``."""
    if not any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK",
                                         "MPI_LOCALRANKID", "PMI_SIZE")):
        return None  # not under mpiexec: do not pay for (or require) MPI initialisation
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def rank(comm) -> int:
    return 0 if comm is None else comm.Get_rank()


def size(comm) -> int:
    return 1 if comm is None else comm.Get_size()


def my_share(n: int, comm) -> list[int]:
    """Indices 0..n-1 that this rank owns (round robin, so ranks get similar loads)."""
    return list(range(rank(comm), n, size(comm)))


def gather_by_index(items: dict, comm) -> dict | None:
    """Gather {index: value} dicts on rank 0 (returns the merged dict there, None elsewhere)."""
    if comm is None:
        return items
    parts = comm.gather(items, root=0)
    if comm.Get_rank() != 0:
        return None
    merged = {}
    for part in parts:
        merged.update(part)
    return merged
