"""unmix-nmf stopped by SIGINT (Ctrl-C) or SIGTERM (a batch scheduler's
warning before it kills a job): the fit ends its iteration, saves a
checkpoint, says how to go on, and exits with 128 + the signal's number."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest

from test_cli_hpc import EXE, RANKS, check_ok, finish, needs_mpi, pid_of_rank, run, start, \
    wait_for_progress

pytestmark = pytest.mark.skipif(EXE is None, reason="unmix-nmf not found (see test_cli_hpc.py)")

# Without --checkpoint-every: a signal saves the state all the same.
GEN = ["--generate", "400x300", "-k", "6", "--tol", "0", "--solver", "hals"]
ENDLESS = [*GEN, "--max-iter", "1000000", "--print-every", "5"]


def _interrupted_at(stderr: str, name: str, prefix: str) -> int:
    m = re.search(rf"^unmix-nmf: interrupted by {name} after iteration (\d+); its state is saved "
                  rf"in '{re.escape(prefix)}\.ckpt': run the same command with --resume to go "
                  r"on$", stderr, re.M)
    assert m, stderr
    return int(m.group(1))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_state_and_resumes_to_the_uninterrupted_run(tmp_path, sig):
    out = str(tmp_path / "run")
    proc = start([*ENDLESS, "-o", out])
    wait_for_progress(proc)
    proc.send_signal(sig)
    res = finish(proc)
    assert res.returncode == 128 + sig, res.stderr
    done = _interrupted_at(res.stderr, sig.name, out)
    assert f"iteration {done}\n" in (tmp_path / "run.ckpt" / "state").read_text()
    assert not (tmp_path / "run_W.npy").exists()
    more = ["--max-iter", str(done + 2), "--quiet"]
    check_ok(run([*GEN, *more, "--resume", "-o", out]))
    check_ok(run([*GEN, *more, "-o", str(tmp_path / "whole")]))
    for f in ("W", "H"):
        np.testing.assert_array_equal(np.load(f"{out}_{f}.npy"), np.load(tmp_path / f"whole_{f}.npy"))


@needs_mpi
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_iteration(tmp_path):
    """The scheduler's SIGTERM reaches the ranks at different moments (here
    only rank 2): they agree at the end of an iteration, all save that one
    and exit with 143."""
    out = str(tmp_path / "run")
    # With the watchdog too, whose threads must let both runs end.
    proc = start([*ENDLESS, "--watchdog", "30", "-o", out], mpi=True, report_ranks=True)
    wait_for_progress(proc)
    os.kill(pid_of_rank(2, out), signal.SIGTERM)
    res = finish(proc)
    assert re.findall(r"^exit-code (\d+)$", res.stderr, re.M) == ["143"] * RANKS, res.stderr
    done = _interrupted_at(res.stderr, "SIGTERM", out)
    check_ok(run([*GEN, "--max-iter", str(done + 2), "--quiet", "--watchdog", "30", "--resume",
                  "-o", out], mpi=True))
