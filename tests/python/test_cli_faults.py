"""unmix-nmf under faults: checkpoints and resuming (serial and MPI), kill -9
in the middle of a run, and one rank failing alone."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from test_cli_hpc import ENV, EXE, MPIRUN, RANKS, check_ok, needs_mpi, run

pytestmark = pytest.mark.skipif(EXE is None, reason="unmix-nmf not found (see test_cli_hpc.py)")

GEN = ["--generate", "400x300", "-k", "6", "--tol", "0", "--quiet", "--solver", "hals"]


@pytest.mark.parametrize("mpi", [False, True])
@pytest.mark.parametrize("extrapolate", [False, True])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, mpi, extrapolate):
    if mpi and MPIRUN is None:
        pytest.skip("needs mpirun and an MPI build")
    # Extrapolated: bpp, and the state's plain iterates and next factors too.
    gen = [*GEN[:-1], "bpp", "--extrapolate"] if extrapolate else GEN
    check_ok(run([*gen, "--max-iter", "30", "-o", str(tmp_path / "whole")], mpi=mpi))
    part = str(tmp_path / "part")
    check_ok(run([*gen, "--max-iter", "13", "--checkpoint-every", "5", "-o", part], mpi=mpi))
    state = (tmp_path / "part.ckpt" / "state").read_text()
    assert "iteration 13" in state  # the last iteration is always saved
    check_ok(run([*gen, "--max-iter", "30", "--resume", "-o", part], mpi=mpi))
    for f in ("W", "H"):
        np.testing.assert_array_equal(np.load(f"{part}_{f}.npy"), np.load(tmp_path / f"whole_{f}.npy"))
    # Only the newest generation stays: W and H, with extrapolation also
    # the plain iterates and the next iteration's factors.
    ranks = RANKS if mpi else 1
    assert len(list((tmp_path / "part.ckpt").glob("g*.npy"))) == (6 if extrapolate else 2) * ranks


def test_resume_refuses_another_problem(tmp_path):
    out = str(tmp_path / "r")
    check_ok(run([*GEN, "--max-iter", "5", "--checkpoint-every", "5", "-o", out]))
    res = run([GEN[0], "400x301", *GEN[2:], "--max-iter", "9", "--resume", "-o", out])
    assert res.returncode == 2 and "the checkpoint is from another problem" in res.stderr
    res = run([*GEN, "--max-iter", "9", "--resume", "-o", str(tmp_path / "none")])
    assert res.returncode == 2 and "--resume: no checkpoint" in res.stderr
    res = run([*GEN, "--max-iter", "4", "--resume", "-o", out])
    assert res.returncode == 2, res.stderr
    assert f"--resume: the checkpoint '{out}.ckpt' holds 5 iterations, more than --max-iter 4" \
        in res.stderr


@pytest.mark.parametrize("stop", ["max_iter", "tol"])
def test_a_run_killed_before_writing_its_outputs_resumes_to_them(tmp_path, stop):
    """The last checkpoint was saved, the outputs were not: --resume with the
    same command writes the uninterrupted run's outputs instead of refusing
    (max_iter) or going on past where the run stopped (tol)."""
    args = [*GEN, "--max-iter", "12"] if stop == "max_iter" else \
        [*GEN[:4], "--tol", "1e-3", *GEN[6:], "--max-iter", "500"]
    out = tmp_path / "run"
    cmd = [*args, "--checkpoint-every", "1", "-o", str(out)]
    check_ok(run(cmd))
    whole = {f: np.load(f"{out}_{f}.npy") for f in ("W", "H")}
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["stop_reason"] == stop
    for f in ("run_W.npy", "run_H.npy", "run.json"):
        (tmp_path / f).unlink()
    if stop == "max_iter":  # killed before the run noted why it stopped
        state = tmp_path / "run.ckpt" / "state"
        state.write_text("".join(line for line in state.read_text().splitlines(keepends=True)
                                 if not line.startswith("stopped")))
    check_ok(run([*cmd, "--resume"]))
    for f in ("W", "H"):
        np.testing.assert_array_equal(np.load(f"{out}_{f}.npy"), whole[f])
    resumed = json.loads((tmp_path / "run.json").read_text())
    for key in ("n_iter", "converged", "stop_reason", "objective", "rel_error"):
        assert resumed[key] == summary[key], key


def test_errors_name_the_file_they_come_from(tmp_path):
    E = np.ones((1, 300))
    E[0, 7] = -2
    np.save(tmp_path / "E.npy", E)
    res = run([*GEN, "--max-iter", "5", "--fixed-H", str(tmp_path / "E.npy"), "-o", str(tmp_path / "f")])
    assert res.returncode == 2
    assert f"Negative values in data passed to --fixed-H '{tmp_path / 'E.npy'}': it must be " \
           "non-negative, got 1 negative entries (minimum -2.000000)" in res.stderr
    # The file changed between the run and its resumption: same problem,
    # other data, found once the data is read.
    X = tmp_path / "X.npy"
    np.save(X, np.random.default_rng(0).random((40, 30)))
    args = [str(X), "-k", "3", "--quiet", "-o", str(tmp_path / "r")]
    check_ok(run([*args, "--max-iter", "5", "--checkpoint-every", "5"]))
    np.save(X, 2 * np.load(X))
    res = run([*args, "--max-iter", "9", "--resume"])
    assert res.returncode == 2
    assert f"the checkpoint '{tmp_path / 'r.ckpt'}' comes from other data" in res.stderr


def _kill_every_process_naming(marker: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        alive.append(int(pid))
                        os.kill(int(pid), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes {alive} survive SIGKILL"
        time.sleep(0.05)


@needs_mpi
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_under_mpirun_then_resume(tmp_path, seed):
    """Every rank killed at a random moment while checkpoints are written
    every iteration: the checkpoint left is whole and resumes to the
    uninterrupted run."""
    args = ["--generate", "2000x1500", "-k", "8", "--tol", "0", "--quiet", "--solver", "hals"]
    out = str(tmp_path / "run")
    proc = subprocess.Popen([*MPIRUN, EXE, *args, "--max-iter", "100000", "--checkpoint-every", "1",
                             "-o", out], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / "run.ckpt" / "state"
    try:
        deadline = time.monotonic() + 60
        while not state.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(random.Random(seed).uniform(0.1, 1.0))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # The ranks are not all in mpirun's process group; left alone they
        # would go on writing checkpoints for a moment.
        _kill_every_process_naming(out)
    done = int(re.search(r"^iteration (\d+)$", state.read_text(), re.M).group(1))
    more = ["--max-iter", str(done + 3)]
    check_ok(run([*args, *more, "--resume", "-o", out], mpi=True))
    check_ok(run([*args, *more, "-o", str(tmp_path / "whole")], mpi=True))
    for f in ("W", "H"):
        np.testing.assert_allclose(np.load(f"{out}_{f}.npy"), np.load(tmp_path / f"whole_{f}.npy"),
                                   rtol=1e-12, atol=0)


@needs_mpi
def test_one_rank_failing_inside_the_run_ends_every_rank_within_seconds(tmp_path):
    """Rank 2 alone cannot write its checkpoint (a folder is in the way)
    while the others wait for it in a collective: the job ends with its
    message and a non-zero status, without hanging."""
    (tmp_path / "f.ckpt" / "g5.r2.W.npy").mkdir(parents=True)
    start = time.monotonic()
    res = run([*GEN, "--max-iter", "30", "--checkpoint-every", "5", "-o", str(tmp_path / "f")], mpi=True)
    took = time.monotonic() - start
    assert res.returncode != 0
    assert "error on rank 2: cannot write" in res.stderr
    assert "aborting the job" in res.stderr
    assert took < 30, f"took {took:.0f} s"
    assert not (tmp_path / "f.json").exists()


@needs_mpi
def test_one_rank_out_of_memory_ends_every_rank(tmp_path):
    """The last rank runs with its address space capped below what its block
    needs (mpirun's multiple-program form): every rank exits with status 1
    and one message naming that rank."""
    # Each rank's block is 128 MB; the cap (300 MB of address space, with
    # one BLAS thread) leaves room for MPI but not for the block.
    args = ["--generate", "8000x8000", "-k", "5", "--max-iter", "3", "--quiet",
            "-o", str(tmp_path / "oom")]
    capped = ["sh", "-c", 'ulimit -v 300000; exec "$0" "$@"', EXE, *args]
    cmd = [*MPIRUN[:-3], *MPIRUN[-1:], "-np", str(RANKS - 1), EXE, *args, ":", "-np", "1", *capped] \
        if MPIRUN[-1] == "--oversubscribe" else None
    if cmd is None:
        pytest.skip("needs Open MPI's mpirun")
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
    assert res.returncode == 1, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("unmix-nmf: error")]
    assert errors == [f"unmix-nmf: error: out of memory (on rank {RANKS - 1})"], res.stderr
    assert time.monotonic() - start < 60
