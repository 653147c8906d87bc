"""Long runs lose nothing: checkpoints, resuming, and kill -9 in the middle."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp

import unmix
from unmix import checkpoint
from unmix.datasets import tof_sims_like
from unmix.graphs import grid


def data(shape=(120, 90), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.random((shape[0], 5)) @ rng.random((5, shape[1])) + 0.05 * rng.random(shape)
    return X.astype(dtype)


CASES = {
    "bpp": dict(solver="bpp"),
    "hals l1": dict(solver="hals", l1_W=0.1),
    "mu l2": dict(solver="mu", l2_H=0.2),
    "bpp sum_to_one": dict(sum_to_one=True),
    "bpp minvol": dict(minvol_H=0.5),
    "kl": dict(loss="kl"),
    "spa init": dict(init="spa"),
    "bpp extrapolated": dict(solver="bpp", extrapolate=True, l1_W=0.05),
    "admm extrapolated sum_to_one": dict(solver="admm", extrapolate=True, sum_to_one=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("layout", ["C", "F", "csr", "float32"])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, case, layout):
    X = data()
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "csr":
        X = sp.csr_matrix(np.where(X > 0.9, X, 0))
    elif layout == "float32":
        X = X.astype(np.float32)
    settings = dict(CASES[case], random_state=3, tol=0)
    whole = unmix.nmf(X, 5, max_iter=25, **settings)
    path = tmp_path / "run.npz"
    first = unmix.nmf(X, 5, max_iter=11, checkpoint=path, checkpoint_every=4, **settings)
    assert first.n_iter == 11
    assert checkpoint.load(path)["iteration"] == 11  # the last state is always saved
    resumed = unmix.nmf(X, 5, max_iter=25, checkpoint=path, resume=True, **settings)
    assert resumed.n_iter == 25
    np.testing.assert_array_equal(resumed.W, whole.W)
    np.testing.assert_array_equal(resumed.H, whole.H)
    np.testing.assert_array_equal(resumed.objective, whole.objective)


def test_resume_true_starts_afresh_without_a_file(tmp_path):
    X = data()
    path = tmp_path / "new.npz"
    r = unmix.nmf(X, 4, max_iter=5, tol=0, random_state=0, checkpoint=path, resume=True)
    assert r.n_iter == 5 and path.exists()


def test_resuming_another_problem_is_refused(tmp_path):
    X = data()
    path = tmp_path / "run.npz"
    unmix.nmf(X, 4, max_iter=5, tol=0, random_state=0, checkpoint=path)
    with pytest.raises(ValueError, match=r"from another problem: penalties or constraints"):
        unmix.nmf(X, 4, max_iter=10, l1_W=0.5, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match=r"from another problem: k 4 -> 3"):
        unmix.nmf(X, 3, max_iter=10, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match=r"solver 'bpp' -> 'hals'"):
        unmix.nmf(X, 4, max_iter=10, solver="hals", checkpoint=path, resume=True)
    with pytest.raises(ValueError, match=r"comes from other data"):
        unmix.nmf(2 * X, 4, max_iter=10, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match=r"max_iter must be >= the 5 iterations"):
        unmix.nmf(X, 4, max_iter=4, checkpoint=path, resume=True)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file"):
        unmix.nmf(X, 4, resume=tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"not a readable unmix checkpoint"):
        unmix.nmf(X, 4, resume=tmp_path / "junk.npz")
    with pytest.raises(ValueError, match=r"checkpoint_every and checkpoint_interval need checkpoint"):
        unmix.nmf(X, 4, checkpoint_every=3)
    with pytest.raises(ValueError, match=r"checkpoint_every must be"):
        unmix.nmf(X, 4, checkpoint=path, checkpoint_every=0)
    with pytest.raises(ValueError, match=r"resume=True resumes from checkpoint=<path>"):
        unmix.nmf(X, 4, resume=True)


ENDINGS = {
    "max_iter": dict(max_iter=9, tol=0),
    "tol": dict(max_iter=1000, tol=1e-4),
    "time_limit": dict(solver="mu", max_iter=10**6, tol=0, time_limit=0.05),
    "extrapolated": dict(solver="bpp", extrapolate=True, max_iter=9, tol=0),
    # Returned with the columns of H at a fixed norm, which the last
    # checkpoint has not yet got.
    "graph term": dict(solver="hals", graph_W=grid((12, 10)), smooth_W=0.5, max_iter=9, tol=0),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("layout", ["C", "csr"])
def test_resuming_a_run_that_had_ended_returns_its_result(tmp_path, ending, layout):
    """Killed after its last checkpoint, before it returned: resumed with the
    same settings it is the run that ended, not an error or one more
    iteration."""
    X = data()
    if layout == "csr":
        X = sp.csr_matrix(np.where(X > 0.9, X, 0))
    settings = dict(ENDINGS[ending], random_state=3, checkpoint=tmp_path / "run.npz")
    whole = unmix.nmf(X, 5, **settings)
    assert whole.stop_reason == (ending if ending in ("tol", "time_limit") else "max_iter")
    resumed = unmix.nmf(X, 5, resume=True, **settings)
    assert (resumed.n_iter, resumed.stop_reason, resumed.converged) == (
        whole.n_iter, whole.stop_reason, whole.converged)
    np.testing.assert_array_equal(resumed.objective, whole.objective)
    np.testing.assert_allclose(resumed.W, whole.W, rtol=1e-12, atol=0)
    np.testing.assert_allclose(resumed.H, whole.H, rtol=1e-12, atol=0)
    assert resumed.W.dtype == whole.W.dtype
    assert resumed.W.flags.f_contiguous == whole.W.flags.f_contiguous


def test_a_run_that_had_converged_goes_on_with_a_smaller_tol(tmp_path):
    X = data()
    settings = dict(random_state=3, checkpoint=tmp_path / "run.npz", max_iter=1000)
    first = unmix.nmf(X, 5, tol=1e-4, **settings)
    more = unmix.nmf(X, 5, tol=1e-7, resume=True, **settings)
    assert more.n_iter > first.n_iter
    np.testing.assert_array_equal(more.objective[:first.n_iter + 1], first.objective)


def test_a_run_that_had_ended_checks_the_data_it_resumes_on(tmp_path):
    X = data()
    settings = dict(random_state=3, checkpoint=tmp_path / "run.npz", max_iter=5, tol=0)
    unmix.nmf(X, 5, **settings)
    with pytest.raises(ValueError, match=r"comes from other data"):
        unmix.nmf(2 * X, 5, resume=True, **settings)
    X[0, 0] = -1.0
    with pytest.raises(ValueError, match=r"Negative values in data passed to X"):
        unmix.nmf(X, 5, resume=True, **settings)


def test_unmix_resumed_after_it_had_ended_gives_the_same_result(tmp_path):
    """unmix (and ``unmix run --option checkpoint=... --option resume=True``)
    killed after its last checkpoint: every fit — two restarts, then the
    strict refinement — has its own checkpoint and returns the result it had."""
    counts = tof_sims_like(spatial_shape=(12, 10), n_channels=40, n_components=3,
                           counts_per_pixel=500.0, seed=3).image()
    settings = dict(n_init=2, random_state=0, checkpoint=tmp_path / "run.npz")
    whole = unmix.unmix(counts, 3, **settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run.npz", "run.start2.npz", "run.strict.npz"]
    resumed = unmix.unmix(counts, 3, resume=True, **settings)
    assert resumed.result.n_iter == whole.result.n_iter
    np.testing.assert_array_equal(resumed.abundances, whole.abundances)
    np.testing.assert_array_equal(resumed.endmembers, whole.endmembers)


def test_a_failing_save_ends_the_run_with_its_error(tmp_path):
    X = data()
    target = tmp_path / "no_such_dir" / "run.npz"
    with pytest.raises(FileNotFoundError):
        unmix.nmf(X, 4, max_iter=10, checkpoint=target, checkpoint_every=2)


CHILD = textwrap.dedent("""
    import sys, numpy as np, unmix
    rng = np.random.default_rng(1)
    X = rng.random((600, 8)) @ rng.random((8, 500)) + 0.01 * rng.random((600, 500))
    unmix.nmf(X, 8, solver="hals", max_iter=100000, tol=0, random_state=2,
              checkpoint=sys.argv[1], checkpoint_every=1)
""")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_at_a_random_moment_then_resume(tmp_path, seed):
    """SIGKILL while checkpoints are being written, at a random moment:
    the file left is whole, and resuming gives the uninterrupted run."""
    path = tmp_path / "run.npz"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)])
    try:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert child.poll() is None, "the fit ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(random.Random(seed).uniform(0.0, 0.5))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    state = checkpoint.load(path)
    done = state["iteration"]
    assert done >= 1

    rng = np.random.default_rng(1)
    X = rng.random((600, 8)) @ rng.random((8, 500)) + 0.01 * rng.random((600, 500))
    settings = dict(solver="hals", tol=0, random_state=2, max_iter=done + 5)
    resumed = unmix.nmf(X, 8, checkpoint=path, resume=True, **settings)
    whole = unmix.nmf(X, 8, **settings)
    assert resumed.n_iter == whole.n_iter == done + 5
    np.testing.assert_allclose(resumed.W, whole.W, rtol=1e-12, atol=0)
    np.testing.assert_allclose(resumed.H, whole.H, rtol=1e-12, atol=0)


def test_the_temporary_file_of_a_write_killed_midway_is_removed_by_the_next_run(tmp_path):
    """kill -9 while the third checkpoint is being written: the temporary
    file stays beside the checkpoint, until the next run on it starts."""
    path = tmp_path / "run.npz"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, numpy as np
        real, calls = np.savez, []
        def savez(f, **arrays):
            calls.append(1)
            real(f, **arrays)
            if len(calls) == 3:
                print("writing", flush=True)
                time.sleep(60)
        np.savez = savez
    """) + CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
    finally:
        child.kill()
        child.communicate()
    assert checkpoint.load(path)["iteration"] == 2
    assert len(list(tmp_path.glob(".run.npz.*.tmp"))) == 1

    rng = np.random.default_rng(1)
    X = rng.random((600, 8)) @ rng.random((8, 500)) + 0.01 * rng.random((600, 500))
    settings = dict(solver="hals", tol=0, random_state=2, max_iter=4)
    resumed = unmix.nmf(X, 8, checkpoint=path, resume=True, **settings)
    assert list(tmp_path.glob(".run.npz.*.tmp")) == []
    np.testing.assert_allclose(resumed.W, unmix.nmf(X, 8, **settings).W, rtol=1e-12, atol=0)
