"""The Kullback-Leibler loss for counting data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import unmix
import unmix.graphs as graphs
import unmix.metrics as metrics


def poisson_mixture(counts: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.random((500, 3)) ** 3
    A /= A.sum(axis=1, keepdims=True)
    E = rng.random((3, 60))
    E /= E.sum(axis=1, keepdims=True)
    return rng.poisson(counts * A @ E).astype(np.float64), A, E


def kl(X, W, H):
    P = W @ H
    mask = X > 0
    return np.sum(X[mask] * np.log(X[mask] / P[mask])) - X.sum() + P.sum()


def test_kl_is_monotone_and_reports_the_divergence() -> None:
    X, _, _ = poisson_mixture(50)
    r = unmix.nmf(X, 3, loss="kl", l1_W=0.1, max_iter=80, tol=0, random_state=0)
    assert np.all(np.diff(r.objective) <= 1e-10 * r.objective[0])
    assert r.objective[-1] == pytest.approx(kl(X, r.W, r.H) + 0.1 * r.W.sum(), rel=1e-9)


def test_kl_sparse_equals_dense() -> None:
    X, _, _ = poisson_mixture(20)
    assert (X == 0).mean() > 0.3
    kw = dict(loss="kl", max_iter=40, tol=0, init="random", random_state=1)
    d = unmix.nmf(X, 3, **kw)
    for S in (sp.csr_matrix(X), sp.csc_matrix(X)):
        s = unmix.nmf(S, 3, **kw)
        np.testing.assert_allclose(s.W, d.W, rtol=0, atol=1e-9 * np.abs(d.W).max())


def test_kl_with_the_graph_term_is_monotone() -> None:
    X, _, _ = poisson_mixture(50)
    r = unmix.nmf(X, 3, loss="kl", graph_W=graphs.knn(X, 5), smooth_W=0.5, max_iter=60,
                  tol=0, random_state=0)
    assert np.all(np.diff(r.objective) <= 1e-10 * r.objective[0])


def test_kl_beats_frobenius_on_poisson_counts() -> None:
    X, A, E = poisson_mixture(2000)
    scores = {}
    for loss in ("frobenius", "kl"):
        r = unmix.nmf(X, 3, loss=loss, solver="mu", init="spa", max_iter=5000, tol=1e-9)
        sad = metrics.spectral_angles(E, r.H)
        scores[loss] = (sad.mean, metrics.abundance_rmse(A, r.W, sad))
    assert scores["kl"][0] < scores["frobenius"][0]
    assert scores["kl"][1] < scores["frobenius"][1]


def test_kl_errors() -> None:
    X, _, _ = poisson_mixture(20)
    with pytest.raises(ValueError, match="loss must be one of 'frobenius', 'kl', got 'l1'"):
        unmix.nmf(X, 3, loss="l1")
    with pytest.raises(ValueError, match="KL loss is solved by solver 'mu', got 'hals'"):
        unmix.nmf(X, 3, loss="kl", solver="hals")
    with pytest.raises(ValueError, match="minimum-volume is not available with the KL loss"):
        unmix.nmf(X, 3, loss="kl", minvol_H=1.0)


def test_kl_with_sum_to_one_bounds_and_known_spectra() -> None:
    """Every hard constraint with the KL loss: met exactly, objective monotone."""
    X, _, H_true = poisson_mixture(30)
    for kw in (dict(sum_to_one=True), dict(sum_to_one=True, bounds_W=(0.0, [0.9, 0.8, 0.9])),
               dict(bounds_W=(0.01, 50.0), bounds_H=(0.0, 2 * H_true.max())),
               dict(fixed_H=H_true[:1], sum_to_one=True)):
        r = unmix.nmf(X, 3, loss="kl", max_iter=60, tol=0, random_state=0, **kw)
        assert np.all(np.diff(r.objective) <= 1e-10 * r.objective[0]), kw
        assert r.W.min() >= 0, kw
        if kw.get("sum_to_one"):
            np.testing.assert_allclose(r.W.sum(axis=1), 1.0, atol=1e-9)
        if "bounds_W" in kw:
            lo, hi = kw["bounds_W"]
            assert (r.W >= np.asarray(lo) - 1e-15).all() and (r.W <= np.asarray(hi) + 1e-15).all(), kw
        if "fixed_H" in kw:
            np.testing.assert_array_equal(r.H[:1], H_true[:1])
