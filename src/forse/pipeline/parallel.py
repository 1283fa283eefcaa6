"""MPI helpers: forse runs serially unless it was started under ``mpiexec`` with mpi4py present.

Work is split by whole generator batches (never by single patches), so that every batch a rank
runs is bit-for-bit the batch the serial run would have run: the gathered result is identical to
the serial one.
"""
from __future__ import annotations

import os

#: rank variables that mpiexec/mpirun (MPICH/Hydra, PMIx, Open MPI, Intel MPI) give each rank
LAUNCHER_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MPI_LOCALRANKID", "PMI_SIZE")


def launched(env=None) -> bool:
    """Whether this process was started by an MPI launcher: mpiexec/mpirun (their rank
    variables) or a Slurm ``srun`` step of more than one task (``SLURM_STEP_NUM_TASKS``, which
    srun sets for its tasks and a batch script itself does not have)."""
    env = os.environ if env is None else env
    if any(k in env for k in LAUNCHER_VARS):
        return True
    try:
        return int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1
    except ValueError:
        return False


def world():
    """The MPI world communicator when running under more than one rank, else ``None``."""
    if not launched():
        return None  # not under a launcher: do not pay for (or require) MPI initialisation
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


def broadcast(x, comm):
    """Rank 0's ``x`` on every rank (``x`` itself without MPI); numpy arrays go as buffers."""
    if comm is None:
        return x
    import numpy as np

    meta = comm.bcast((x.shape, x.dtype.str) if isinstance(x, np.ndarray) else None, root=0)
    if meta is None:
        return comm.bcast(x, root=0)
    buf = x if comm.Get_rank() == 0 else np.empty(meta[0], dtype=np.dtype(meta[1]))
    comm.Bcast(np.ascontiguousarray(buf), root=0)
    return buf
