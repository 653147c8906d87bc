"""Ctrl-C stops a running fit, and the fit does not hold the GIL."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

import unmix

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")

_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    # A child started from a shell without job control may inherit SIGINT
    # ignored; Python then never installs its handler. Install it explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    import scipy.sparse as sp
    import unmix

    mode = sys.argv[1]
    X = np.random.default_rng(0).random((1500, 1000))
    kw = {}
    if mode == "sparse":
        X[X < 0.5] = 0.0
        X = sp.csr_matrix(X)
    elif mode == "callback":
        kw["callback"] = lambda info: None
    elif mode == "verbose":
        kw["verbose"] = True
    # Far more than 30 s of work: MU, tol=0 and no iteration limit to speak of.
    print("started", flush=True)
    t0 = time.monotonic()
    try:
        res = unmix.nmf(X, 20, solver="mu", init="random", random_state=0, tol=0.0,
                        max_iter=10**9, **kw)
    except KeyboardInterrupt:
        print("interrupted after %.2f s" % (time.monotonic() - t0), flush=True)
        raise
    print("finished", res.stop_reason, res.n_iter, flush=True)
    """
)


def _wait_for_line(proc, timeout):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            return None
        return proc.stdout.readline()
    finally:
        sel.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["dense", "sparse", "callback", "verbose"])
def test_sigint_stops_a_long_fit(mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = _wait_for_line(proc, timeout=60)
        assert line is not None and line.strip() == "started", (line, proc.poll())
        time.sleep(1.0)  # well inside the fit
        assert proc.poll() is None, "the fit ended by itself before the signal"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail("the fit ignored SIGINT for 5 s")
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert waited < 5
    assert "finished" not in out, out
    assert "interrupted after" in out, (out, err)
    assert "KeyboardInterrupt" in err
    # An uncaught KeyboardInterrupt makes Python exit through SIGINT itself.
    assert proc.returncode == -signal.SIGINT, proc.returncode


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_fit_releases_the_gil(sparse):
    """A pure-Python thread keeps running while nmf computes in another thread."""
    X = np.random.default_rng(0).random((600, 400))
    if sparse:
        X[X < 0.5] = 0.0
        X = sp.csr_matrix(X)
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    # Baseline: the counter's rate with nothing else to do.
    t = threading.Thread(target=count, daemon=True)
    t.start()
    time.sleep(0.05)
    c0, t0 = counter[0], time.perf_counter()
    time.sleep(0.2)
    rate_alone = (counter[0] - c0) / (time.perf_counter() - t0)

    result = {}

    def fit():
        start = time.perf_counter()
        c_start = counter[0]
        result["res"] = unmix.nmf(X, 10, solver="mu", init="random", random_state=0,
                                  tol=0.0, max_iter=10**9, time_limit=1.0)
        result["count"] = counter[0] - c_start
        result["elapsed"] = time.perf_counter() - start

    worker = threading.Thread(target=fit, daemon=True)
    worker.start()
    worker.join(timeout=30)
    stop.set()
    t.join(timeout=5)
    assert not worker.is_alive(), "nmf did not return"
    assert result["res"].stop_reason == "time_limit"
    assert result["res"].n_iter > 1
    # Holding the GIL for the whole fit would leave the counter almost still;
    # released, the counter thread keeps a sizable part of its speed (the
    # fit competes with it for the two cores).
    expected = rate_alone * result["elapsed"]
    assert result["count"] > 0.1 * expected, (
        f"counter advanced {result['count']} times in {result['elapsed']:.2f} s, "
        f"{expected:.0f} expected without the fit"
    )
