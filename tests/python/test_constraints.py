"""Physical constraints through unmix.nmf and unmix.NMF: every solver x
constraint combination offered keeps the penalized objective monotone and
its constraint exact; the others are refused naming the solvers that can."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import unmix
import unmix.graphs as graphs


def mixture(n_side: int = 12, k: int = 3, channels: int = 40, noise: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.random((n_side * n_side, k)) ** 3
    A /= A.sum(axis=1, keepdims=True)
    E = rng.random((k, channels))
    return A @ E + noise * rng.random((n_side * n_side, channels)), A, E


def penalized(X, r, **c):
    """The objective computed directly from W and H."""
    R = X - r.W @ r.H
    f = 0.5 * np.sum(R * R)
    for side, F in (("W", r.W), ("H", r.H.T)):
        S = c.get(f"graph_{side}")
        if S is not None:
            d = np.asarray(S.sum(axis=1)).ravel()
            f += 0.5 * c[f"smooth_{side}"] * (np.sum(d[:, None] * F * F) - np.sum(F * (S @ F)))
    return f


def monotone(objective: np.ndarray) -> bool:
    return bool(np.all(np.diff(objective) <= 1e-10 * objective[0]))


@pytest.mark.parametrize("solver", ["bpp", "mu", "admm"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_sum_to_one_is_exact(solver: str, order: str) -> None:
    X, _, _ = mixture()
    X = np.asarray(X, order=order)
    r = unmix.nmf(X, 3, solver=solver, sum_to_one=True, max_iter=80, tol=0, random_state=0)
    assert np.abs(r.W.sum(axis=1) - 1).max() <= 1e-9
    assert r.W.min() >= 0
    assert monotone(r.objective)


@pytest.mark.parametrize("solver", ["hals", "mu", "admm"])
def test_bounds_hold(solver: str) -> None:
    X, _, _ = mixture()
    hi = np.array([0.5, 0.7, 0.9])
    r = unmix.nmf(X, 3, solver=solver, bounds_W=(0.0, hi), bounds_H=(0.01, 2.0), max_iter=60,
                  tol=0, random_state=0)
    assert np.all(r.W <= hi) and r.W.min() >= 0
    assert r.H.min() >= 0.01 and r.H.max() <= 2.0
    assert monotone(r.objective)


@pytest.mark.parametrize("solver", ["bpp", "hals", "mu", "admm"])
def test_known_endmembers_stay_fixed(solver: str) -> None:
    X, _, E = mixture(noise=0.0)
    r = unmix.nmf(X, 3, solver=solver, fixed_H=E[:2], max_iter=2000, tol=1e-12, random_state=0)
    np.testing.assert_array_equal(r.H[:2], E[:2])
    assert monotone(r.objective)
    # The one spectrum left to learn completes an exact fit: BPP's exact
    # half-steps get there first, ADMM's inexact ones close behind.
    if solver in ("bpp", "admm"):
        assert np.linalg.norm(X - r.W @ r.H) <= (1e-5 if solver == "bpp" else 1e-4) * np.linalg.norm(X)


@pytest.mark.parametrize("solver", ["bpp", "hals", "mu", "admm"])
def test_smoothness_is_monotone_and_smooths(solver: str) -> None:
    X, _, _ = mixture(noise=0.3)
    S = graphs.grid((12, 12), connectivity=4)
    kw = dict(solver=solver, max_iter=60, tol=0, init="random", random_state=1)
    plain = unmix.nmf(X, 3, **kw)
    smooth = unmix.nmf(X, 3, graph_W=S, smooth_W=2.0, **kw)
    assert monotone(smooth.objective)
    assert abs(penalized(X, smooth, graph_W=S, smooth_W=2.0) - smooth.objective[-1]) <= \
        1e-8 * smooth.objective[0]

    def rough(W):
        d = np.asarray(S.sum(axis=1)).ravel()
        return (np.sum(d[:, None] * W * W) - np.sum(W * (S @ W))) / np.sum(W * W)

    assert rough(smooth.W) < 0.8 * rough(plain.W)


def test_all_constraints_together_with_bpp() -> None:
    X, _, E = mixture()
    S = graphs.grid((12, 12))
    r = unmix.nmf(X, 3, sum_to_one=True, graph_W=S, smooth_W=0.1, fixed_H=E[:1], l1_H=0.01,
                  max_iter=50, tol=0, random_state=0)
    assert np.abs(r.W.sum(axis=1) - 1).max() <= 1e-9
    np.testing.assert_array_equal(r.H[0], E[0])
    assert monotone(r.objective)


def test_admm_takes_sum_to_one_and_bounds_together() -> None:
    X, _, _ = mixture()
    hi = np.array([0.6, 0.8, 0.9])
    S = graphs.grid((12, 12))
    r = unmix.nmf(X, 3, solver="admm", sum_to_one=True, bounds_W=(0.02, hi), graph_W=S,
                  smooth_W=0.05, l1_H=0.01, max_iter=80, tol=0, random_state=0)
    assert np.abs(r.W.sum(axis=1) - 1).max() <= 1e-9
    assert r.W.min() >= 0.02 and np.all(r.W <= hi)
    assert monotone(r.objective)


def test_admm_reaches_the_exact_abundances_of_bpp() -> None:
    """Against a reference: with the endmembers held, sum-to-one abundances
    are a strictly convex problem that BPP solves exactly in one step."""
    X, _, E = mixture()
    exact = unmix._nmf.nnls_abundances(X, E, sum_to_one=True)
    W0 = np.full((X.shape[0], 3), 1 / 3)
    r = unmix._nmf._fit(X, 3, solver="admm", init="custom", W=W0, H=E.copy(), sum_to_one=True,
                        update_H=False, max_iter=300, tol=1e-13)
    np.testing.assert_allclose(r.W, exact, atol=1e-6)


def test_estimator_takes_the_constraints() -> None:
    X, _, _ = mixture()
    model = unmix.NMF(3, sum_to_one=True, random_state=0, max_iter=1000).fit(X)
    assert np.abs(model.transform(X).sum(axis=1) - 1).max() <= 1e-9


@pytest.mark.parametrize("kw, match", [
    (dict(solver="hals", sum_to_one=True), "sum-to-one constraint on W is not supported by solver 'hals'; use 'bpp', 'mu' or 'admm'"),
    (dict(solver="bpp", bounds_W=(0, 1)), "bounds on W are not supported by solver 'bpp'; use 'hals', 'mu' or 'admm'"),
    (dict(smooth_W=1.0), "smooth_W > 0 needs graph_W"),
    (dict(graph_W=sp.eye(5), smooth_W=1.0), r"graph_W must have shape \(144, 144\)"),
    (dict(graph_W=sp.csr_matrix(np.triu(np.ones((144, 144)))), smooth_W=1.0), "graph_W must be symmetric"),
    (dict(smooth_H=-1.0), "smooth_H must be a finite number >= 0"),
    (dict(bounds_H=(0, [1, 2])), "bounds_H entries must be scalars or arrays of length n_components = 3"),
    (dict(fixed_H=np.ones((4, 40))), r"fixed_H must have shape \(n_known, 40\) with 1 <= n_known <= n_components = 3, got \(4, 40\)"),
    (dict(solver="mu", sum_to_one=True, bounds_W=(0, 0.9)), r"are solved by solver 'admm' \(or 'mu' with the KL loss\), not 'mu'"),
    (dict(solver="admm", sum_to_one=True, bounds_W=(0, 0.3)), r"sum\(lower\) <= 1 <= sum\(upper\)"),
    (dict(solver="admm", loss="kl"), "the KL loss is solved by solver 'mu'"),
])
def test_unsupported_combinations_are_refused(kw, match) -> None:
    X, _, _ = mixture()
    with pytest.raises((ValueError, TypeError), match=match):
        unmix.nmf(X, 3, **kw)


def test_grid_graph() -> None:
    S4 = graphs.grid((3, 4), connectivity=4)
    assert S4.shape == (12, 12) and (S4 != S4.T).nnz == 0
    # Pixel (1, 1) in C order is index 5: 4 edge neighbours, 8 with corners.
    assert S4[5].nnz == 4 and set(S4[5].indices) == {1, 4, 6, 9}
    assert graphs.grid((3, 4), connectivity=8)[5].nnz == 8
    assert graphs.grid((3, 4), connectivity=8)[0].nnz == 3
    S3 = graphs.grid((3, 3, 3), connectivity=6)
    assert S3[13].nnz == 6 and graphs.grid((3, 3, 3), connectivity=26)[13].nnz == 26
    with pytest.raises(ValueError, match="connectivity must be one of"):
        graphs.grid((3, 4), connectivity=6)


def test_knn_graph() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.01, (10, 3)), rng.normal(5, 0.01, (10, 3))])
    S = graphs.knn(X, n_neighbors=3)
    assert (abs(S - S.T) > 1e-15).nnz == 0 and S.data.min() > 0
    # Neighbours stay within their cluster.
    rows, cols = S.nonzero()
    assert np.all((rows < 10) == (cols < 10))
    B = graphs.knn(X, n_neighbors=3, weights="binary")
    assert set(np.unique(B.data)) == {1.0}


@pytest.mark.parametrize("solver", ["bpp", "hals", "admm"])
def test_minimum_volume_is_monotone(solver: str) -> None:
    X, _, _ = mixture()
    r = unmix.nmf(X, 3, solver=solver, sum_to_one=solver != "hals", minvol_H=0.05, max_iter=60,
                  tol=0, random_state=0)
    assert np.all(np.diff(r.objective) <= 1e-10 * abs(r.objective[0]))


def test_minimum_volume_is_refused_by_mu() -> None:
    X, _, _ = mixture()
    with pytest.raises(ValueError, match="minimum-volume on H is not supported by solver 'mu'"):
        unmix.nmf(X, 3, solver="mu", minvol_H=0.1)
    with pytest.raises(ValueError, match="minvol_H must be a finite number >= 0"):
        unmix.nmf(X, 3, minvol_H=-1.0)
