"""Launch detection of ``forse.parallel`` under simulated launchers: plain runs never touch MPI,
mpiexec ranks and Slurm ``srun`` steps (without any mpiexec variable) get the world
communicator."""
import os
import shutil
import subprocess
import sys

import pytest

from forse import parallel

PROBE = ("import sys; from forse import parallel; c = parallel.world(); "
         "print(parallel.rank(c), parallel.size(c), 'mpi4py.MPI' in sys.modules)")
SLURM_BATCH = {"SLURM_JOB_ID": "123", "SLURM_NTASKS": "64", "SLURM_PROCID": "0",
               "SLURM_CPUS_PER_TASK": "16"}


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in parallel.LAUNCHER_VARS and not k.startswith(("SLURM_", "PMI", "OMPI_"))}
    return env | {"OMP_NUM_THREADS": "1"} | extra


def test_launched_by_environment():
    assert not parallel.launched({})
    assert not parallel.launched(SLURM_BATCH)  # a batch script itself: serial
    assert not parallel.launched(SLURM_BATCH | {"SLURM_STEP_NUM_TASKS": "1"})  # srun -n 1
    assert parallel.launched(SLURM_BATCH | {"SLURM_STEP_NUM_TASKS": "64", "SLURM_PROCID": "7"})
    assert parallel.launched({"SLURM_STEP_NUM_TASKS": "garbage", "PMI_RANK": "0"})
    assert not parallel.launched({"SLURM_STEP_NUM_TASKS": "garbage"})
    for var in parallel.LAUNCHER_VARS:
        assert parallel.launched({var: "0"})


def test_serial_run_in_a_slurm_batch_script_does_not_load_mpi():
    out = subprocess.run([sys.executable, "-c", PROBE], env=clean_env(**SLURM_BATCH),
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.split() == ["0", "1", "False"]


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec on PATH")
def test_srun_step_is_detected_without_mpiexec_variables():
    """Two ranks whose only launcher sign forse looks at is Slurm's step size (mpiexec's rank
    variables are ignored; its PMI connection stays, as srun's would) see a world of two."""
    pytest.importorskip("mpi4py")
    probe = ("from forse import parallel; parallel.LAUNCHER_VARS = (); c = parallel.world(); "
             "got = c.gather((c.Get_rank(), c.Get_size())) if c else [(0, 1)]; "
             "print(sorted(got)) if parallel.rank(c) == 0 else None")
    cmd = ["mpiexec", "-n", "2", "env", "SLURM_STEP_NUM_TASKS=2", sys.executable, "-c", probe]
    out = subprocess.run(cmd, env=clean_env(**SLURM_BATCH), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[(0, 2), (1, 2)]"
