"""Fits from several Python threads at once, and the BLAS thread count."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info

import unmix
from unmix import _core


def problems():
    rng = np.random.default_rng(0)
    out = []
    for i, (solver, extra) in enumerate([("bpp", {}), ("hals", dict(l1_W=0.1)), ("mu", {}),
                                         ("bpp", dict(sum_to_one=True)), ("mu", dict(loss="kl"))]):
        X = rng.random((150 + 10 * i, 5)) @ rng.random((5, 120)) + 0.01 * rng.random((150 + 10 * i, 120))
        if i == 2:
            X = sp.csr_matrix(np.where(X > 1.0, X, 0))
        out.append((X, dict(solver=solver, max_iter=60, tol=0, random_state=i, **extra)))
    return out


def test_concurrent_fits_equal_sequential_ones():
    work = problems() * 3  # more fits than threads, the same problems several times
    sequential = [unmix.nmf(X, 5, **kw) for X, kw in work]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda p: unmix.nmf(p[0], 5, **p[1]), work))
    for s, c in zip(sequential, concurrent):
        np.testing.assert_allclose(c.W, s.W, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c.H, s.H, rtol=1e-10, atol=1e-12)
        assert c.n_iter == s.n_iter


def test_blas_runs_on_one_thread_during_a_fit_and_n_threads_does_not_change_the_result():
    """The core's kernels run on n_threads of its own; the BLAS it calls runs
    on one thread during the fit (its threads would compete with the
    kernels'), and is put back afterwards. The factors are the same, bit for
    bit, for any number of threads."""
    ours = os.path.realpath(_core.blas_path())
    assert ours, "the core's BLAS was not found"
    seen = {os.path.realpath(i["filepath"]): i["num_threads"] for i in threadpool_info()}
    assert ours in seen
    before = seen[ours]
    during = []
    rng = np.random.default_rng(1)
    # Large enough for the kernels to use several threads, in both layouts
    # (C order: the fused pass; F order and sparse: the separate products).
    X = rng.random((3000, 6)) @ rng.random((6, 400)) + 0.01 * rng.random((3000, 400))
    for data in (X, np.asfortranarray(X), sp.csr_matrix(np.where(X > 1.0, X, 0))):
        for solver in ("bpp", "hals", "mu"):
            fits = []
            for n in (1, 2, 3):
                fits.append(unmix.nmf(data, 6, solver=solver, n_threads=n, max_iter=15, tol=0,
                                      random_state=0, callback=lambda info: during.append(
                                          {os.path.realpath(i["filepath"]): i["num_threads"]
                                           for i in threadpool_info()}[ours])))
            for other in fits[1:]:
                np.testing.assert_array_equal(other.W, fits[0].W)
                np.testing.assert_array_equal(other.H, fits[0].H)
                np.testing.assert_array_equal(other.objective, fits[0].objective)
    assert set(during) == {1}
    after = {os.path.realpath(i["filepath"]): i["num_threads"] for i in threadpool_info()}
    assert after[ours] == before  # restored


def test_n_threads_is_checked():
    X, kw = problems()[0]
    with pytest.raises(ValueError, match="n_threads must be"):
        unmix.nmf(X, 5, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        unmix.nmf(X, 5, n_threads=1.5)
