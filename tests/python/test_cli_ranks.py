"""unmix-nmf's ranks when they do not form one run: started with different
options or data (they must exit with a message, not crash in a collective),
or one of them stopped (the others must not wait for it forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from test_cli_faults import _kill_every_process_naming
from test_cli_hpc import ENV, EXE, MPIRUN, TIMEOUT, finish, needs_mpi, pid_of_rank, start, \
    wait_for_progress

pytestmark = [needs_mpi,
              pytest.mark.skipif(MPIRUN is None or MPIRUN[-1] != "--oversubscribe",
                                 reason="needs Open MPI's mpirun")]

GEN = ["--generate", "60x40", "--tol", "0", "--max-iter", "5", "--quiet"]


def _mpmd(*apps: tuple[list[str], dict]) -> subprocess.CompletedProcess:
    """mpirun's multiple-program form: one rank per (arguments, options)."""
    cmd = [MPIRUN[0], "--oversubscribe"]
    for i, (args, opts) in enumerate(apps):
        cmd += [":"] * (i > 0) + ["-np", "1", *opts.get("mpirun", []), os.path.abspath(EXE), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=TIMEOUT)


def _errors(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("unmix-nmf: error")]


def test_ranks_started_with_different_options_exit_with_a_message(tmp_path):
    out = str(tmp_path / "run")
    res = _mpmd(([*GEN, "-k", "2", "-o", out], {}), ([*GEN, "-k", "3", "-o", out], {}))
    assert res.returncode == 2, res.stderr
    assert _errors(res) == ["unmix-nmf: error: the ranks disagree on -k: 2 on rank 0, 3 on rank 1 "
                            "(start every rank with the same options and data)"], res.stderr
    assert not (tmp_path / "run.json").exists()


def test_ranks_reading_different_data_exit_with_a_message(tmp_path):
    """The same command in two folders whose X.npy differ in shape."""
    for name, shape in (("a", (60, 40)), ("b", (40, 60))):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "X.npy", np.ones(shape))
    args = ["X.npy", "-k", "2", "--quiet", "--max-iter", "5", "-o", "run"]
    res = _mpmd((args, {"mpirun": ["-wdir", str(tmp_path / "a")]}),
                (args, {"mpirun": ["-wdir", str(tmp_path / "b")]}))
    assert res.returncode == 2, res.stderr
    assert _errors(res) == ["unmix-nmf: error: the ranks disagree on the shape of the data: "
                            "60 x 40 on rank 0, 40 x 60 on rank 1 (start every rank with the same "
                            "options and data)"], res.stderr


def test_the_watchdog_ends_the_job_when_a_rank_stops_responding(tmp_path):
    out = str(tmp_path / "run")
    proc = start(["--generate", "400x300", "-k", "6", "--tol", "0", "--max-iter", "1000000",
                  "--print-every", "5", "--watchdog", "2", "-o", out], mpi=True)
    try:
        wait_for_progress(proc)
        os.kill(pid_of_rank(1, out), signal.SIGSTOP)
        stopped = time.monotonic()
        res = finish(proc)
        took = time.monotonic() - stopped
    finally:
        _kill_every_process_naming(out)  # SIGKILL ends a stopped process too
    assert res.returncode != 0
    assert _errors(res) == ["unmix-nmf: error: rank 1 has not responded for 2 s (stopped, or its "
                            "node is down); ending the job (--watchdog 2)"], res.stderr
    assert 1.5 <= took < 20, took  # the last heartbeat may precede the SIGSTOP by 1/8 of it
