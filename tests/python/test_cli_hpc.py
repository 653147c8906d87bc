"""The HPC executable ``unmix-nmf``: serial and under ``mpirun``.

The executable is looked up as $UNMIX_NMF, then on PATH (``pip install .``
puts it there), then in a CMake build folder build/*/cpp/apps/ (preferring
one built with MPI). Without it
the tests are skipped; without ``mpirun`` (or with a build without MPI) only
the serial cases run.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # seconds; a run that takes longer has hung
RANKS = 4


def _find_executable() -> Optional[str]:
    env = os.environ.get("UNMIX_NMF")
    if env:
        return env
    found = shutil.which("unmix-nmf")
    if found:
        return found
    # Among several build folders, the newest build with MPI tests the most.
    built = sorted(ROOT.glob("build/*/cpp/apps/unmix-nmf"), key=lambda p: -p.stat().st_mtime)
    for exe in built:
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                                 timeout=TIMEOUT)
        if "with MPI" in version.stdout:
            return str(exe)
    return str(built[0]) if built else None


EXE = _find_executable()
pytestmark = pytest.mark.skipif(
    EXE is None,
    reason="unmix-nmf not found: set UNMIX_NMF, pip install ., or build it with "
           "cmake -S . -B build/cli && cmake --build build/cli",
)

ENV = dict(
    os.environ,
    OMPI_ALLOW_RUN_AS_ROOT="1",
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
    OMP_NUM_THREADS="1",
    OPENBLAS_NUM_THREADS="1",
)


def _mpirun_command() -> Optional[list[str]]:
    if EXE is None:
        return None
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        return None
    version = subprocess.run([EXE, "--version"], capture_output=True, text=True, env=ENV,
                             timeout=TIMEOUT)
    if "with MPI" not in version.stdout:
        return None
    flavour = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=TIMEOUT)
    cmd = [mpirun, "-np", str(RANKS)]
    if "Open MPI" in flavour.stdout + flavour.stderr or "OpenRTE" in flavour.stdout:
        cmd.append("--oversubscribe")  # more ranks than cores
    return cmd


MPIRUN = _mpirun_command()
needs_mpi = pytest.mark.skipif(
    MPIRUN is None, reason="mpirun not found, or unmix-nmf was built without MPI")


def start(args: Sequence[str], *, mpi: bool = False, report_ranks: bool = False,
          cwd: Optional[Path] = None) -> subprocess.Popen:
    """Starts unmix-nmf (under mpirun with RANKS ranks when mpi is true). With
    report_ranks every rank prints 'exit-code N' to stderr when it ends, so
    a test can see the status of each rank, not only mpirun's."""
    cmd: list[str] = [EXE, *args]  # type: ignore[list-item]
    if report_ranks:
        cmd = ["sh", "-c", '"$0" "$@"; echo "exit-code $?" >&2', *cmd]
    if mpi:
        assert MPIRUN is not None
        cmd = [*MPIRUN, *cmd]
    # A shell without job control starts its children with SIGINT ignored,
    # and a program keeps it so; the tests that send SIGINT need it back.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=cwd, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # mpirun and every rank
        proc.communicate()
        pytest.fail(f"unmix-nmf did not finish within {timeout} s: {' '.join(proc.args)}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(args: Sequence[str], *, mpi: bool = False, report_ranks: bool = False,
        cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """Runs unmix-nmf to its end; see start()."""
    return finish(start(args, mpi=mpi, report_ranks=report_ranks, cwd=cwd))


def wait_for_progress(proc: subprocess.Popen, timeout: float = TIMEOUT) -> int:
    """Reads the progress lines of a running unmix-nmf until one shows an
    iteration; returns that iteration. The rest stays for communicate()."""
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    seen = b""
    deadline = time.monotonic() + timeout
    while not (m := re.search(rb"^ *(\d+)  \d\.\d+e[-+]\d+ ", seen, re.M)):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 1 << 16) if ready else b""
        if not chunk:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            pytest.fail(f"no progress line from {' '.join(proc.args)}:\n{seen.decode()}{err}")
        seen += chunk
    return int(m.group(1))


def pid_of_rank(rank: int, marker: str) -> int:
    """The process of unmix-nmf's MPI rank `rank` among those whose command
    line holds `marker`."""
    exe = os.path.realpath(EXE)  # type: ignore[arg-type]
    wanted = f"OMPI_COMM_WORLD_RANK={rank}".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.path.realpath(f"/proc/{pid}/exe") != exe:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if wanted in f.read().split(b"\0"):
                    return int(pid)
        except OSError:
            pass
    raise AssertionError(f"no rank {rank} running with {marker!r}")


def check_ok(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, f"{' '.join(res.args)}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


def low_rank(shape=(60, 40), rank=3, noise=1e-3, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.random((shape[0], rank)) @ rng.random((rank, shape[1]))
    return X + noise * rng.random(shape)


def load(prefix: Path):
    W = np.load(f"{prefix}_W.npy")
    H = np.load(f"{prefix}_H.npy")
    summary = json.loads(Path(f"{prefix}.json").read_text())
    return W, H, summary


def rel_error(X, W, H) -> float:
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    return float(np.linalg.norm(X - W.astype(np.float64) @ H.astype(np.float64)) / np.linalg.norm(X))


def assert_same(a: np.ndarray, b: np.ndarray, dtype) -> None:
    tol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())


def version_of_sources() -> str:
    text = (ROOT / "cpp/include/unmix/version.hpp").read_text()
    match = re.search(r'#define UNMIX_VERSION_STRING "([0-9.]+)"', text)
    assert match
    return match.group(1)


# ------------------------------------------------------------------ .npy input


def _npy_case(tmp_path, order, dtype):
    X = low_rank().astype(dtype)
    path = tmp_path / "X.npy"
    np.save(path, np.asarray(X, order=order))
    args = [str(path), "-k", "3", "--seed", "7", "--quiet", "--max-iter", "200"]
    if dtype == np.float32:
        # Near the optimum, a float32 objective's decrease is at the level of
        # rounding, and grids that round differently would stop iterations
        # apart: compare a fixed number of iterations well before that.
        args += ["--tol", "0", "--max-iter", "20"]
    return X, args


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_npy(tmp_path, order, dtype):
    X, args = _npy_case(tmp_path, order, dtype)
    check_ok(run([*args, "-o", str(tmp_path / "serial")]))
    W, H, summary = load(tmp_path / "serial")
    assert W.shape == (60, 3) and H.shape == (3, 40)
    assert W.dtype == dtype and H.dtype == dtype
    assert W.min() >= 0 and H.min() >= 0
    assert rel_error(X, W, H) < (5e-3 if dtype == np.float64 else 0.05)
    assert summary["shape"] == [60, 40]
    assert summary["dtype"] == np.dtype(dtype).name
    assert summary["transposed"] == (order == "C")
    # The core evaluates the error from Gram matrices; in float32 that
    # cancellation leaves ~1e-4 of the data norm.
    expected = pytest.approx(rel_error(X, W, H), **({"abs": 2e-4} if dtype == np.float32 else {"rel": 1e-6}))
    assert summary["rel_error"][-1] == expected


@needs_mpi
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_npy_mpi_equals_serial(tmp_path, order, dtype):
    X, args = _npy_case(tmp_path, order, dtype)
    check_ok(run([*args, "-o", str(tmp_path / "serial")]))
    check_ok(run([*args, "-o", str(tmp_path / "mpi")], mpi=True))
    W, H, summary = load(tmp_path / "serial")
    Wp, Hp, summary_p = load(tmp_path / "mpi")
    assert Wp.shape == (60, 3) and Hp.shape == (3, 40)
    assert Wp.min() >= 0 and Hp.min() >= 0
    assert rel_error(X, Wp, Hp) < (5e-3 if dtype == np.float64 else 0.05)
    assert summary_p["ranks"] == RANKS
    assert summary_p["grid"][0] * summary_p["grid"][1] == RANKS
    assert summary_p["n_iter"] == summary["n_iter"]
    assert_same(Wp, W, dtype)
    assert_same(Hp, H, dtype)


@needs_mpi
@pytest.mark.parametrize("grid", ["4x1", "1x4", "2x2"])
def test_every_grid_gives_the_serial_result(tmp_path, grid):
    X = low_rank(shape=(45, 37), rank=4, seed=3)
    path = tmp_path / "X.npy"
    np.save(path, X)
    common = [str(path), "-k", "4", "--seed", "2", "--solver", "hals", "--max-iter", "60",
              "--tol", "0", "--l1-W", "0.01", "--l2-H", "0.1", "--quiet"]
    check_ok(run([*common, "-o", str(tmp_path / "serial")]))
    check_ok(run([*common, "--grid", grid, "-o", str(tmp_path / "mpi")], mpi=True))
    W, H, _ = load(tmp_path / "serial")
    Wp, Hp, summary = load(tmp_path / "mpi")
    assert summary["grid"] == [int(v) for v in grid.split("x")]
    assert_same(Wp, W, np.float64)
    assert_same(Hp, H, np.float64)


def test_same_result_as_the_python_api(tmp_path):
    unmix = pytest.importorskip("unmix")
    X = low_rank(seed=5)
    np.save(tmp_path / "X.npy", X)
    check_ok(run([str(tmp_path / "X.npy"), "-k", "3", "--seed", "11", "--solver", "mu",
                  "--max-iter", "50", "--l1-H", "0.01", "--quiet", "-o", str(tmp_path / "r")]))
    W, H, summary = load(tmp_path / "r")
    ref = unmix.nmf(X, 3, solver="mu", random_state=11, max_iter=50, l1_H=0.01)
    assert summary["n_iter"] == ref.n_iter
    assert_same(W, ref.W, np.float64)
    assert_same(H, ref.H, np.float64)


def test_dtype_option_converts(tmp_path):
    X = low_rank()
    np.save(tmp_path / "X.npy", X)
    check_ok(run([str(tmp_path / "X.npy"), "-k", "3", "--dtype", "float32", "--quiet",
                  "-o", str(tmp_path / "r")]))
    W, H, summary = load(tmp_path / "r")
    assert W.dtype == np.float32 and H.dtype == np.float32
    assert summary["dtype"] == "float32"
    assert rel_error(X, W, H) < 5e-3


def test_progress_goes_to_stdout_on_rank_0(tmp_path):
    X = low_rank()
    np.save(tmp_path / "X.npy", X)
    res = run([str(tmp_path / "X.npy"), "-k", "3", "--max-iter", "6", "--tol", "0",
               "--print-every", "2", "-o", str(tmp_path / "r")])
    check_ok(res)
    lines = [line.split() for line in res.stdout.splitlines()]
    iterations = [int(fields[0]) for fields in lines if fields and fields[0].isdigit()]
    assert iterations == [1, 2, 4, 6]
    assert "stopped after 6 iterations (max_iter)" in res.stdout
    quiet = run([str(tmp_path / "X.npy"), "-k", "3", "--quiet", "-o", str(tmp_path / "q")])
    check_ok(quiet)
    assert quiet.stdout == "" and quiet.stderr == ""


# ------------------------------------------------------------------ .mtx input


def _mtx_case(tmp_path):
    sp = pytest.importorskip("scipy.sparse")
    sio = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(4)
    dense = low_rank(shape=(50, 30), rank=3, seed=4)
    dense[rng.random(dense.shape) < 0.3] = 0.0
    X = sp.coo_matrix(dense)
    path = tmp_path / "X.mtx"
    sio.mmwrite(str(path), X)
    return X, [str(path), "-k", "3", "--seed", "1", "--max-iter", "100", "--quiet"]


def test_mtx_input(tmp_path):
    X, common = _mtx_case(tmp_path)
    dense = X.toarray()
    check_ok(run([*common, "-o", str(tmp_path / "serial")]))
    W, H, summary = load(tmp_path / "serial")
    assert W.shape == (50, 3) and H.shape == (3, 30)
    assert W.min() >= 0 and H.min() >= 0
    assert summary["sparse"] is True
    assert summary["nnz"] == X.nnz
    assert summary["input"]["format"] == "mtx"
    assert rel_error(X, W, H) < 0.6
    assert summary["rel_error"][-1] == pytest.approx(rel_error(X, W, H), rel=1e-6)

    # The sparse reader gives what the dense one does.
    np.save(tmp_path / "X.npy", np.asfortranarray(dense))
    check_ok(run([str(tmp_path / "X.npy"), *common[1:], "-o", str(tmp_path / "dense")]))
    Wd, Hd, _ = load(tmp_path / "dense")
    assert_same(W, Wd, np.float64)
    assert_same(H, Hd, np.float64)



@needs_mpi
def test_mtx_mpi_equals_serial(tmp_path):
    X, common = _mtx_case(tmp_path)
    check_ok(run([*common, "-o", str(tmp_path / "serial")]))
    check_ok(run([*common, "-o", str(tmp_path / "mpi")], mpi=True))
    W, H, _ = load(tmp_path / "serial")
    Wp, Hp, summary = load(tmp_path / "mpi")
    assert summary["ranks"] == RANKS and summary["nnz"] == X.nnz
    assert_same(Wp, W, np.float64)
    assert_same(Hp, H, np.float64)


# ------------------------------------------------------------------ --generate

SUMMARY_FIELDS = {
    "version", "input", "shape", "k", "solver", "init", "grid", "ranks", "dtype", "n_iter",
    "converged", "stop_reason", "objective", "rel_error", "timings",
    "words_per_rank_per_iteration",
}


def _generate_args(density):
    return ["--generate", "120x80", "--rank", "4", "--noise", "0.01", "--density", str(density),
            "-k", "4", "--seed", "3", "--max-iter", "40", "--quiet"]


@pytest.mark.parametrize("density", [1.0, 0.3])
def test_generate(tmp_path, density):
    common = _generate_args(density)
    check_ok(run([*common, "-o", str(tmp_path / "serial")]))
    W, H, s = load(tmp_path / "serial")
    assert SUMMARY_FIELDS <= set(s)
    assert s["version"] == version_of_sources()
    assert s["shape"] == [120, 80] and s["k"] == 4 and s["ranks"] == 1 and s["grid"] == [1, 1]
    assert s["solver"] == "bpp" and s["init"] == "nndsvda" and s["dtype"] == "float64"
    assert s["sparse"] == (density < 1)
    assert s["input"]["format"] == "generate" and s["input"]["shape"] == [120, 80]
    assert set(s["timings"]) >= {"total", "init", "compute", "communication"}
    assert all(v >= 0 for v in s["timings"].values())
    assert s["stop_reason"] in {"tol", "max_iter"}
    assert s["converged"] == (s["stop_reason"] == "tol")
    objective = np.array(s["objective"])
    assert len(objective) == s["n_iter"] + 1 == len(s["rel_error"])
    assert np.all(np.diff(objective) <= 1e-12 * objective[:-1])
    assert W.shape == (120, 4) and H.shape == (4, 80)
    if density == 1.0:
        assert s["rel_error"][-1] < 0.02
        assert s["nnz"] == 120 * 80
    else:
        assert 0.25 < s["nnz"] / (120 * 80) < 0.35


@needs_mpi
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_generate_mpi_equals_serial(tmp_path, density):
    # Each rank generates only its block, and the matrix is the same.
    common = _generate_args(density)
    check_ok(run([*common, "-o", str(tmp_path / "serial")]))
    check_ok(run([*common, "-o", str(tmp_path / "mpi")], mpi=True))
    W, H, s = load(tmp_path / "serial")
    Wp, Hp, sp = load(tmp_path / "mpi")
    assert sp["ranks"] == RANKS and sp["nnz"] == s["nnz"]
    assert len(sp["words_per_rank_per_iteration"]) == RANKS
    assert min(sp["words_per_rank_per_iteration"]) > 0
    assert_same(Wp, W, np.float64)
    assert_same(Hp, H, np.float64)


@pytest.mark.parametrize("density", [1.0, 0.3])
def test_threads_do_not_change_the_result(tmp_path, density):
    # Large enough (>= 2^16 entries per thread) for the kernels to split.
    common = ["--generate", "1500x300", "--rank", "5", "--noise", "0.01", "--density",
              str(density), "-k", "5", "--seed", "2", "--max-iter", "10", "--tol", "0", "--quiet"]
    for threads in (1, 3):
        check_ok(run([*common, "--threads", str(threads), "-o", str(tmp_path / f"t{threads}")]))
    W1, H1, s1 = load(tmp_path / "t1")
    W3, H3, s3 = load(tmp_path / "t3")
    np.testing.assert_array_equal(W3, W1)
    np.testing.assert_array_equal(H3, H1)
    assert s3["objective"] == s1["objective"]


def test_help_and_version():
    res = run(["--help"])
    check_ok(res)
    for option in ["--input", "--generate", "--density", "--rank", "--noise", "-k", "--solver",
                   "--init", "--max-iter", "--tol", "--time-limit", "--seed", "--l1-W", "--l1-H",
                   "--l2-W", "--l2-H", "--grid", "--dtype", "--output", "--quiet", "--help",
                   "--version", "--threads", "--checkpoint-every", "--resume", "--watchdog",
                   "SIGTERM", "bpp", "hals", "mu", "nndsvda", "random"]:
        assert option in res.stdout, option
    version = run(["--version"])
    check_ok(version)
    assert version.stdout.startswith(f"unmix-nmf {version_of_sources()}")


# ------------------------------------------------------------------ errors


def _error_cases(tmp_path: Path, mpi: bool):
    good = tmp_path / "X.npy"
    np.save(good, low_rank())
    truncated = tmp_path / "cut.npy"
    truncated.write_bytes(good.read_bytes()[:1000])
    grid = "3x3" if mpi else "2x1"
    return {
        "missing file": ([str(tmp_path / "nope.npy"), "-k", "3"], "file not found"),
        "truncated npy": ([str(truncated), "-k", "3"], "truncated"),
        "grid mismatch": ([str(good), "-k", "3", "--grid", grid], f"--grid {grid} needs"),
        "unknown option": ([str(good), "-k", "3", "--frobnicate"], "unknown option '--frobnicate'"),
        "k = 0": ([str(good), "-k", "0"], "-k must be >= 1, got 0"),
        "threads = 0": ([str(good), "-k", "3", "--threads", "0"], "--threads must be >= 1, got 0"),
    }


CASES = ["missing file", "truncated npy", "grid mismatch", "unknown option", "k = 0",
         "threads = 0"]


@pytest.mark.parametrize("case", CASES)
def test_errors_serial(tmp_path, case):
    args, message = _error_cases(tmp_path, mpi=False)[case]
    res = run([*args, "-o", str(tmp_path / "out")])
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("unmix-nmf: error")]
    assert len(errors) == 1, res.stderr
    assert message in errors[0]
    assert not (tmp_path / "out.json").exists()


@needs_mpi
@pytest.mark.parametrize("case", CASES)
def test_errors_every_rank_exits(tmp_path, case):
    args, message = _error_cases(tmp_path, mpi=True)[case]
    res = run([*args, "-o", str(tmp_path / "out")], mpi=True, report_ranks=True)
    codes = re.findall(r"^exit-code (\d+)$", res.stderr, flags=re.M)
    assert codes == ["2"] * RANKS, res.stderr  # every rank ended, with status 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("unmix-nmf: error")]
    assert len(errors) == 1, res.stderr  # printed once, by rank 0
    assert message in errors[0]
    assert not (tmp_path / "out.json").exists()


def _flags_match_python(unmix, X, tmp_path, mpi, cases):
    """unmix-nmf with each set of flags (X saved as X.npy) gives the factors
    and objective history of unmix.nmf with the matching keywords."""
    for flags, kw in cases:
        check_ok(run([str(tmp_path / "X.npy"), "-k", "3", "--max-iter", "30", "--tol", "0",
                      "--quiet", "-o", str(tmp_path / "c"), *flags], mpi=mpi))
        W, H, summary = load(tmp_path / "c")
        ref = unmix.nmf(X, 3, max_iter=30, tol=0, random_state=0, **kw)
        assert_same(W, ref.W, np.float64)
        assert_same(H, ref.H, np.float64)
        np.testing.assert_allclose(summary["objective"], ref.objective, rtol=1e-9)


@pytest.mark.parametrize("mpi", [False, True])
def test_constraint_flags_match_python(tmp_path, mpi):
    if mpi and MPIRUN is None:
        pytest.skip("needs mpirun and an MPI build")
    unmix = pytest.importorskip("unmix")
    X = low_rank(seed=6)
    np.save(tmp_path / "X.npy", X)
    _flags_match_python(unmix, X, tmp_path, mpi, (
        (["--sum-to-one", "--solver", "bpp"], dict(sum_to_one=True, solver="bpp")),
        (["--bounds-W", "0,0.5", "--bounds-H", "0.01,inf", "--solver", "hals"],
         dict(bounds_W=(0, 0.5), bounds_H=(0.01, np.inf), solver="hals"))))
    res = run([str(tmp_path / "X.npy"), "-k", "3", "--bounds-W", "0,1", "--solver", "bpp",
               "-o", str(tmp_path / "e")])
    assert res.returncode == 2 and "use 'hals', 'mu' or 'admm'" in res.stderr


@pytest.mark.parametrize("mpi", [False, True])
def test_graph_minvol_fixed_and_admm_flags_match_python(tmp_path, mpi):
    """Also on 4 ranks: the graph term fetches neighbour pixels from other
    ranks, and each rank holds the known spectra of its own channels."""
    if mpi and MPIRUN is None:
        pytest.skip("needs mpirun and an MPI build")
    unmix = pytest.importorskip("unmix")
    import unmix.graphs as graphs

    X = low_rank(seed=7)  # 60 samples = a 6 x 10 image
    E = np.random.default_rng(8).random((1, X.shape[1]))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "E.npy", E)
    _flags_match_python(unmix, X, tmp_path, mpi, (
        (["--graph-W", "grid:6x10:8", "--smooth-W", "0.5"], dict(graph_W=graphs.grid((6, 10), 8), smooth_W=0.5)),
        (["--minvol-H", "0.1", "--sum-to-one"], dict(minvol_H=0.1, sum_to_one=True)),
        (["--fixed-H", str(tmp_path / "E.npy"), "--solver", "hals"], dict(fixed_H=E, solver="hals")),
        (["--sum-to-one", "--bounds-W", "0.01,0.8", "--solver", "admm"],
         dict(sum_to_one=True, bounds_W=(0.01, 0.8), solver="admm")),
        (["--graph-W", "grid:6x10", "--smooth-W", "2", "--fixed-H", str(tmp_path / "E.npy"),
          "--loss", "kl", "--sum-to-one"],
         dict(graph_W=graphs.grid((6, 10), 4), smooth_W=2.0, fixed_H=E, loss="kl", sum_to_one=True)),
    ))
    res = run([str(tmp_path / "X.npy"), "-k", "3", "--graph-W", "grid:6x9", "--smooth-W", "1",
               "-o", str(tmp_path / "e")])
    assert res.returncode == 2 and "has 54 pixels, but the data has 60 samples" in res.stderr


@pytest.mark.parametrize("mpi", [False, pytest.param(True, marks=needs_mpi)], ids=["serial", "mpi"])
def test_more_components_than_channels_warns_once(tmp_path, mpi):
    # k above min(n_samples, n_features) ran without a word (and BPP diverged).
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((40, 6)))
    res = run([str(tmp_path / "X.npy"), "-k", "10", "--init", "random", "--max-iter", "5",
               "--quiet", "-o", str(tmp_path / "r")], mpi=mpi)
    check_ok(res)
    assert res.stderr.count("warning: k 10 is above min(n_samples, n_features) = 6") == 1
    W, H, summary = load(tmp_path / "r")
    assert summary["rel_error"][-1] == pytest.approx(rel_error(np.load(tmp_path / "X.npy"), W, H),
                                                     rel=1e-6)
