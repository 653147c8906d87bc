"""The pieces of the recommended constrained unmixing: every row of H held
(``fixed_H`` with n_components rows), the noise estimator
:func:`unmix.preprocess.noise_variance`, the scale-free ``"auto"`` weights,
and the two-step fit of :func:`unmix.unmix`."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import unmix
import unmix.graphs as graphs
import unmix.preprocess as preprocess
from unmix._nmf import nnls_abundances
from unmix.endmembers import abundances_from_endmembers
from unmix import fractions
from unmix.fractions import minvol_weight
from unmix.noise import regression_variance
from unmix.preprocess import AUTO_SMOOTH_W, noise_variance

from test_constraints import mixture, monotone, penalized

GRID = graphs.grid((12, 12), 8)


def roughness(W):
    d = np.asarray(GRID.sum(axis=1)).ravel()
    return np.sum(d[:, None] * W * W) - np.sum(W * (GRID @ W))


# ---------------------------------------------------------------------------
# fixed_H with every row: only W is fitted
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver, atol", [("bpp", 1e-12), ("hals", 1e-6), ("admm", 1e-6)])
def test_every_row_fixed_gives_the_nnls_abundances(solver, atol):
    X, _, E = mixture()
    r = unmix.nmf(X, 3, solver=solver, fixed_H=E, max_iter=2000, tol=1e-12)
    np.testing.assert_array_equal(r.H, E)
    np.testing.assert_allclose(r.W, abundances_from_endmembers(X, E), rtol=0, atol=atol)
    assert monotone(r.objective)
    if solver == "bpp":  # exact half-steps: one solves it, the second sees no change
        assert r.n_iter == 2


def test_every_row_fixed_with_sum_to_one_is_the_exact_simplex_fit():
    X, _, E = mixture()
    r = unmix.nmf(X, 3, fixed_H=E, sum_to_one=True)
    np.testing.assert_allclose(r.W, nnls_abundances(X, E, sum_to_one=True), rtol=0, atol=1e-12)
    assert np.abs(r.W.sum(axis=1) - 1).max() <= 1e-9


@pytest.mark.parametrize("solver", ["bpp", "mu", "admm"])
def test_every_row_fixed_with_sum_to_one_and_smoothness(solver):
    X, _, E = mixture(noise=0.3)
    kw = dict(solver=solver, fixed_H=E, sum_to_one=True, max_iter=200, tol=0)
    free = unmix.nmf(X, 3, **kw)
    r = unmix.nmf(X, 3, graph_W=GRID, smooth_W=2.0, **kw)
    np.testing.assert_array_equal(r.H, E)
    assert np.abs(r.W.sum(axis=1) - 1).max() <= 1e-9 and r.W.min() >= 0
    assert monotone(r.objective)
    assert abs(penalized(X, r, graph_W=GRID, smooth_W=2.0) - r.objective[-1]) <= \
        1e-8 * r.objective[0]
    assert roughness(r.W) < 0.5 * roughness(free.W)


def test_every_row_fixed_takes_the_other_W_options():
    X, _, E = mixture()
    hi = np.array([0.5, 0.7, 0.9])
    r = unmix.nmf(X, 3, solver="hals", fixed_H=E, bounds_W=(0.0, hi), l1_W=0.01, l2_W=0.1,
                  max_iter=300, tol=0)
    np.testing.assert_array_equal(r.H, E)
    assert np.all(r.W <= hi) and r.W.min() >= 0 and monotone(r.objective)
    kl = unmix.nmf(X, 3, loss="kl", fixed_H=E, l1_W=0.01, max_iter=100, tol=0)
    np.testing.assert_array_equal(kl.H, E)
    assert kl.solver == "mu" and monotone(kl.objective)


def test_every_row_fixed_starts_from_W_or_from_the_floored_nnls_fit():
    X, _, E = mixture()

    def start_objective(r):  # objective[0] is that of the start
        return r.objective[0] / (0.5 * np.linalg.norm(X) ** 2)

    W0 = np.full((X.shape[0], 3), 0.2)
    for given in (dict(W=W0), dict(init="custom", W=W0)):
        r = unmix.nmf(X, 3, fixed_H=E, max_iter=1, **given)
        assert start_objective(r) == pytest.approx(np.linalg.norm(X - W0 @ E) ** 2
                                                   / np.linalg.norm(X) ** 2, rel=1e-9)
    nnls = abundances_from_endmembers(X, E)
    floored = np.maximum(nnls, 1e-3 * nnls.max())
    assert nnls.min() == 0 and floored.min() > 0  # the floor matters here
    r = unmix.nmf(X, 3, fixed_H=E, solver="mu", max_iter=1)
    assert start_objective(r) == pytest.approx(np.linalg.norm(X - floored @ E) ** 2
                                               / np.linalg.norm(X) ** 2, rel=1e-9)
    r32 = unmix.nmf(X.astype(np.float32), 3, fixed_H=E, sum_to_one=True)
    assert r32.W.dtype == r32.H.dtype == np.float32
    np.testing.assert_allclose(r32.W, nnls_abundances(X, E, sum_to_one=True), atol=1e-4)


def test_the_estimator_holds_every_row_too():
    X, _, E = mixture()
    model = unmix.NMF(3, fixed_H=E, sum_to_one=True, graph_W=GRID, smooth_W="auto").fit(X)
    np.testing.assert_array_equal(model.components_, E)
    assert set(model.weights_) == {"noise_variance", "smooth_W"}


@pytest.mark.parametrize("kw, match", [
    (dict(minvol_H=0.1), r"minvol_H must be left unset when fixed_H holds all n_components = 3 "
                         r"rows \(H is held, not fitted\), got minvol_H=0.1"),
    (dict(minvol_H="auto"), "minvol_H must be left unset .* got minvol_H='auto'"),
    (dict(l1_H=0.1), "l1_H must be left unset"),
    (dict(l2_H=0.1), "l2_H must be left unset"),
    (dict(bounds_H=(0, 1)), "bounds_H must be left unset .* got bounds_H=tuple"),
    (dict(graph_H=sp.eye(40, format="csr"), smooth_H=1.0), "graph_H must be left unset"),
    (dict(H=np.ones((3, 40))), "H must be None when fixed_H holds all"),
    (dict(init="random"), "init must be None or 'custom' when fixed_H holds all .* got 'random'"),
    (dict(init="custom"), "init='custom' needs W when fixed_H holds all"),
])
def test_every_row_fixed_refuses_what_would_fit_H(kw, match):
    X, _, E = mixture()
    with pytest.raises(ValueError, match=match):
        unmix.nmf(X, 3, fixed_H=E, **kw)


def test_the_checkpoint_knows_a_held_H(tmp_path):
    X, _, E = mixture()
    path = tmp_path / "run.npz"
    kw = dict(solver="mu", sum_to_one=True, tol=0)  # "mu" is still moving after 5 iterations
    unmix.nmf(X, 3, fixed_H=E, max_iter=3, checkpoint=path, **kw)
    with pytest.raises(ValueError, match="from another problem: penalties or constraints"):
        unmix.nmf(X, 3, max_iter=5, init="random", resume=path, **kw)  # H free
    with pytest.raises(ValueError, match="from another problem: penalties or constraints"):
        unmix.nmf(X, 3, fixed_H=1.1 * E, max_iter=5, resume=path, **kw)  # other values
    r = unmix.nmf(X, 3, fixed_H=E, max_iter=5, resume=path, **kw)
    assert r.n_iter == 5
    np.testing.assert_array_equal(r.H, E)


# ---------------------------------------------------------------------------
# noise_variance
# ---------------------------------------------------------------------------


def low_rank_plus_noise(n=1500, p=120, k=4, sigma=0.05, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, k)) @ rng.random((k, p)) + rng.normal(0, sigma, (n, p)), sigma**2


def test_noise_variance_recovers_the_variance_of_white_noise():
    X, var = low_rank_plus_noise()
    assert noise_variance(X, 4) == pytest.approx(var, rel=0.02)
    # More components than the signal has fit a little noise: still close.
    assert noise_variance(X, 6) == pytest.approx(var, rel=0.02)
    # A signal component left out counts as noise.
    assert noise_variance(X, 3) > 2 * var


def test_noise_variance_takes_every_layout_and_both_methods(monkeypatch):
    X, _ = low_rank_plus_noise(n=300, p=80)
    X = np.abs(X)
    ref = noise_variance(X, 4)
    for same in (np.asfortranarray(X), X.T, sp.csr_matrix(X), sp.csc_matrix(X),
                 unmix.SpectralImage(X.reshape(15, 20, 80))):
        assert noise_variance(same, 4) == pytest.approx(ref, rel=1e-10)
    assert noise_variance(X.astype(np.float32), 4) == pytest.approx(ref, rel=1e-5)
    monkeypatch.setattr(preprocess, "_GRAM_MAX", 10)  # Lanczos instead of the Gram matrix
    for same in (X, sp.csr_matrix(X)):
        assert noise_variance(same, 4) == pytest.approx(ref, rel=1e-8)


def test_noise_variance_of_exact_low_rank_data_is_zero_not_negative():
    rng = np.random.default_rng(1)
    X = rng.random((200, 3)) @ rng.random((3, 50))
    value = noise_variance(X, 3)
    assert 0 <= value <= 1e-14 * np.mean(X**2)


@pytest.mark.parametrize("X, k, error, match", [
    (np.ones((10, 5)), 5, ValueError, r"n_components must be an integer in \[1, 4\], got 5"),
    (np.ones((10, 5)), 0, ValueError, r"n_components must be an integer in \[1, 4\], got 0"),
    (np.full((10, 5), np.nan), 2, ValueError, "X must be finite"),
    ("cube", 2, TypeError, "X must be a 2-D array"),
])
def test_noise_variance_refuses_bad_input(X, k, error, match):
    with pytest.raises(error, match=match):
        noise_variance(X, k)


# ---------------------------------------------------------------------------
# "auto" weights
# ---------------------------------------------------------------------------


def test_auto_weights_are_the_documented_numbers():
    X, _, _ = mixture(noise=0.05)
    kw = dict(init="spa", sum_to_one=True, graph_W=GRID, max_iter=20, tol=0)
    r = unmix.nmf(X, 3, smooth_W="auto", minvol_H="auto", **kw)
    var = noise_variance(X, 3)
    # minvol_H: the data's own weight (unmix.fractions.minvol_weight), from
    # the regression noise estimate when X has enough rows, else var.
    white = regression_variance(X)
    white = var if white is None else white
    weight, info = minvol_weight(X, 3, np.full(X.shape[0], white * X.shape[1]))
    assert {k: r.weights[k] for k in ("noise_variance", "smooth_W", "minvol_H")} == pytest.approx(
        {"noise_variance": var, "smooth_W": AUTO_SMOOTH_W * var, "minvol_H": weight}, rel=1e-12)
    assert r.weights["excess_share"] == pytest.approx(info["excess_share"], rel=1e-12)
    same = unmix.nmf(X, 3, smooth_W=r.weights["smooth_W"], minvol_H=r.weights["minvol_H"], **kw)
    np.testing.assert_array_equal(r.W, same.W)
    assert same.weights == {} and unmix.nmf(X, 3, max_iter=2).weights == {}


def test_auto_weights_are_scale_free():
    """1000 X: the same abundances and 1000 x the endmembers, iteration by
    iteration (a fixed count: with minvol_H the stopping test is not unit-free)."""
    X, _, _ = mixture(noise=0.05)
    fits = [unmix.nmf(s * X, 3, init="spa", sum_to_one=True, graph_W=GRID, smooth_W="auto",
                      minvol_H="auto", max_iter=40, tol=0) for s in (1.0, 1e3)]
    np.testing.assert_allclose(fits[1].W, fits[0].W, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fits[1].H, 1e3 * fits[0].H, rtol=1e-9)
    held = [unmix.nmf(s * X, 3, fixed_H=s * fits[0].H, sum_to_one=True, graph_W=GRID,
                      smooth_W="auto", tol=1e-9) for s in (1.0, 1e3)]
    np.testing.assert_allclose(held[1].W, held[0].W, rtol=0, atol=1e-9)
    assert held[1].n_iter == held[0].n_iter


@pytest.mark.parametrize("kw, error, match", [
    (dict(smooth_W="auto", graph_W=GRID),
     ValueError, "smooth_W='auto' needs sum_to_one=True: .* got sum_to_one=False"),
    (dict(smooth_H="auto", graph_H=sp.eye(40, format="csr"), sum_to_one=True),
     TypeError, r"smooth_H must be a real number >= 0, got 'auto'"),
    (dict(smooth_W="Auto", graph_W=GRID, sum_to_one=True),
     TypeError, r"smooth_W must be a real number >= 0 or 'auto', got 'Auto'"),
    (dict(minvol_H="max"), TypeError, r"minvol_H must be a real number >= 0 or 'auto'"),
    (dict(smooth_W="auto", sum_to_one=True), ValueError, "smooth_W > 0 needs graph_W"),
])
def test_auto_weights_refusals(kw, error, match):
    X, _, _ = mixture()
    with pytest.raises(error, match=match):
        unmix.nmf(X, 3, max_iter=2, **kw)


def test_auto_needs_fewer_components_than_channels():
    X, _, _ = mixture(channels=3)
    with pytest.raises(ValueError, match=r"n_components must be an integer in \[1, 2\]"):
        unmix.nmf(X, 3, minvol_H="auto", max_iter=2)


# ---------------------------------------------------------------------------
# unmix.unmix: the default graph and the two-step fit
# ---------------------------------------------------------------------------


def test_unmix_smooths_on_the_edge_aware_pixel_grid_by_default():
    X, _, _ = mixture(noise=0.3)
    image = unmix.SpectralImage(X.reshape(12, 12, -1))
    u = unmix.unmix(image, 3, smooth_W=2.0, sum_to_one=False, noise="gaussian", init="nndsvda",
                    random_state=0, max_iter=50)
    assert u.params["graph_W"].startswith("unmix.graphs.edge_aware((12, 12), ..., "
                                          "connectivity=8)") and not u.params["two_step"]
    prep = fractions.prepare(X, "gaussian", 3, False)  # the plain model: M is X
    S = graphs.edge_aware((12, 12), prep.M, prep.noise, 3, 8)
    same = unmix.nmf(X, 3, graph_W=S, smooth_W=2.0, random_state=u.restarts[0].seed,
                     max_iter=50)
    np.testing.assert_array_equal(u.result.W, same.W)


def test_unmix_with_sum_to_one_and_smoothness_fits_in_two_steps():
    X, _, _ = mixture(noise=0.05)
    image = unmix.SpectralImage(X.reshape(12, 12, -1))
    kw = dict(init="spa", sum_to_one=True, minvol_H="auto", normalize=None)
    u = unmix.unmix(image, 3, smooth_W="auto", n_init=2, random_state=0, **kw)
    step1 = unmix.unmix(image, 3, tol=1e-7, max_iter=3000, n_init=2, random_state=0, **kw)
    assert u.params["two_step"] and not step1.params["two_step"]
    assert (u.params["tol"], u.params["max_iter"]) == (1e-7, 3000)
    assert u.restarts == step1.restarts
    # Step 2 holds the endmembers of step 1 and smooths the abundances.
    np.testing.assert_array_equal(u.result.H, step1.result.H)
    assert np.abs(u.result.W.sum(axis=1) - 1).max() <= 1e-9
    assert roughness(u.result.W) < roughness(step1.result.W)
    assert {"noise_variance", "minvol_H", "smooth_W"} <= set(u.params["weights"])


def test_unmix_refusals_and_held_H():
    X, _, E = mixture()
    image = unmix.SpectralImage(X.reshape(12, 12, -1))
    with pytest.raises(ValueError, match="checkpoint and resume are not available with the "
                                         "two-step fit"):
        unmix.unmix(image, 3, sum_to_one=True, smooth_W=1.0, checkpoint="run.npz")
    line = unmix.SpectralImage(X)
    with pytest.raises(ValueError, match="smooth_W without graph_W needs an image with 2 or 3 "
                                         "spatial axes"):
        unmix.unmix(line, 3, smooth_W=1.0)
    # Every row held: one fit (no two steps), restarts keep the NNLS start.
    u = unmix.unmix(image, 3, fixed_H=E, sum_to_one=True, smooth_W="auto", n_init=2,
                    normalize=None)
    assert not u.params["two_step"] and len(u.restarts) == 2
    np.testing.assert_array_equal(u.result.H, E)
