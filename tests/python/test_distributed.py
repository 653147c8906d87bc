"""unmix.distributed under mpirun with 1 to 4 ranks: the factors equal the
serial ones for every solver, layout and dtype, on several grids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")
pytest.importorskip("unmix._mpi", reason="unmix was built without MPI")
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
WORKER = Path(__file__).with_name("mpi_worker.py")


@pytest.mark.skipif(MPIRUN is None, reason="needs mpirun")
@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_distributed_equals_serial(ranks: int) -> None:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([MPIRUN, "-np", str(ranks), sys.executable, str(WORKER)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{ranks} ranks: 0 failures" in out.stdout
