"""unmix.nmf uses the caller's X in place: no copy of the data is made.

Two independent measurements: the peak resident set size of a fresh process
(resource.getrusage) around a fit of a ~200 MB matrix, and tracemalloc, which
sees every allocation numpy makes from Python. Each has a positive control
showing that the measurement does detect a copy when one is unavoidable.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import unmix

resource = pytest.importorskip("resource")  # POSIX only

MB = 2**20

_SCRIPT = textwrap.dedent(
    """
    import resource, sys, tracemalloc
    import numpy as np
    import unmix

    def peak_rss_mb():
        # Linux: VmHWM, the peak of this program's own memory. ru_maxrss
        # would start at the peak of the process that forked it (pytest,
        # hundreds of MB after the figure tests), above all this measures.
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 2**10
        except OSError:
            pass
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20

    # Warm up on a small matrix so that the libraries, the BLAS threads and
    # their buffers are in place before the baseline.
    unmix.nmf(np.random.default_rng(0).random((60, 50)), 4, max_iter=3)

    X = np.random.default_rng(0).random((5000, 5000))  # 200 MB, C order
    if sys.argv[1] == "F":
        X = X.T  # Fortran order, no second 200 MB array
    assert X.flags[sys.argv[1] + "_CONTIGUOUS"]
    before = peak_rss_mb()
    tracemalloc.start()
    res = unmix.nmf(X, 4, max_iter=3, tol=0.0)
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    after = peak_rss_mb()
    assert res.n_iter == 3 and res.W.shape == (5000, 4)
    print("nocopy", after - before, traced, flush=True)

    # Positive control: a strided view of X (neither C nor F contiguous)
    # must be copied once, and the measurement must see it.
    view = X[:, :4999] if sys.argv[1] == "C" else X[:4999, :]
    assert not (view.flags.c_contiguous or view.flags.f_contiguous)
    before = peak_rss_mb()
    unmix.nmf(view, 4, init="random", random_state=0, max_iter=1, tol=0.0)
    after = peak_rss_mb()
    print("copy", after - before, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["C", "F"])
def test_no_copy_of_large_dense_X_peak_rss(order):
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, order],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: [float(v) for v in line.split()[1:]]
             for line in proc.stdout.splitlines()}
    growth, traced = lines["nocopy"]
    (copy_growth,) = lines["copy"]
    x_mb = 5000 * 5000 * 8 / MB  # 190.7
    assert growth < 60, f"peak RSS grew by {growth:.1f} MB fitting a {x_mb:.0f} MB X"
    assert traced < 10, f"Python-side allocations peaked at {traced:.1f} MB"
    # The control: a real copy shows up in the same measurement.
    assert copy_growth > 0.8 * x_mb, f"a copy of X grew the peak RSS by only {copy_growth:.1f} MB"


def _traced_peak(fn):
    """Peak bytes allocated through Python/numpy while fn runs."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak, result


@pytest.fixture(scope="module")
def X_medium():
    X = np.random.default_rng(1).random((2000, 1000))  # 16 MB
    X[X < 0.5] = 0.0
    return X


@pytest.mark.parametrize(
    "make",
    [
        lambda X: X,
        np.asfortranarray,
        lambda X: X.astype(np.float32),
        sp.csr_matrix,
        sp.csc_matrix,
    ],
    ids=["C", "F", "float32", "csr", "csc"],
)
def test_no_copy_tracemalloc(X_medium, make):
    X = make(X_medium)
    nbytes = X.data.nbytes if sp.issparse(X) else X.nbytes
    # The modules a fit imports on first use (graphs, checkpoint) are
    # allocations too, once per process: not what this test is about.
    unmix.nmf(make(X_medium[:60, :50]), 5, max_iter=1)
    peak, res = _traced_peak(lambda: unmix.nmf(X, 5, max_iter=3, tol=0.0))
    assert res.n_iter == 3
    # The factors are allocated by the C++ core (not traced); what Python
    # allocates is bookkeeping, far below the size of X.
    assert peak < 0.02 * nbytes, f"{peak / MB:.2f} MB allocated for a {nbytes / MB:.1f} MB X"


@pytest.mark.parametrize(
    "make",
    [
        lambda X: X.astype(np.int32),  # converted to float64
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],  # strided view: to C order
        sp.coo_matrix,  # converted to CSR
    ],
    ids=["int32", "strided", "coo"],
)
def test_tracemalloc_sees_the_unavoidable_copies(X_medium, make):
    """The control for the test above: conversions do show up."""
    X = make(X_medium)
    copy_bytes = X_medium.nbytes if not sp.issparse(X) else X.data.nbytes
    peak, _ = _traced_peak(lambda: unmix.nmf(X, 5, max_iter=1, tol=0.0))
    assert peak > 0.9 * copy_bytes
