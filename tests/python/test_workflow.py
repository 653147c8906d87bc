"""unmix.unmix and unmix.pca on whole spectral images (unmix.select_rank: test_rank.py)."""

from __future__ import annotations


import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import unmix
from unmix import metrics
from unmix.datasets import tof_sims_like


@pytest.fixture(scope="module")
def tof():
    return tof_sims_like(spatial_shape=(24, 24), n_channels=96, n_components=3, seed=0)


# --------------------------------------------------------------------------
# unmix
# --------------------------------------------------------------------------


def test_unmix_recovers_the_endmembers(tof):
    u = unmix.unmix(tof.image(), 3, n_init=2, random_state=0)
    assert isinstance(u, unmix.Unmixing)
    assert u.endmembers.shape == (3, 96)
    assert u.abundances.shape == (24, 24, 3)
    assert u.residual.shape == (24, 24)
    assert u.n_components == 3
    assert u.channel_unit == "m/z"
    assert_array_equal(u.channels, tof.channels)
    assert metrics.mean_sad(tof.endmembers, u.endmembers) < 2.0
    # The model explains the data down to the Poisson noise.
    assert u.rel_error < 0.15


def test_components_are_ordered_by_total_abundance(tof):
    u = unmix.unmix(tof.image(), 3, random_state=1)
    totals = u.abundances.reshape(-1, 3).sum(axis=0)
    assert np.all(np.diff(totals) <= 0)
    assert sorted(u.order.tolist()) == [0, 1, 2]


@pytest.mark.parametrize("normalize", ["max", "sum", "l2"])
def test_plain_model_normalization_and_unnormalized(tof, normalize):
    """sum_to_one=False (plain NMF of X as given, Gaussian noise): the
    normalized factors give the fitted model, unnormalized() the fit's own."""
    u = unmix.unmix(tof.image(), 3, random_state=0, sum_to_one=False, noise="gaussian",
                    normalize=normalize)
    E = u.endmembers
    if normalize == "max":
        assert_allclose(E.max(axis=1), 1.0)
    elif normalize == "sum":
        assert_allclose(E.sum(axis=1), 1.0)
    else:
        assert_allclose(np.linalg.norm(E, axis=1), 1.0)
    assert_allclose(u.intensity, 1.0)
    fitted = u.result.W @ u.result.H
    assert_allclose(u.abundances.reshape(-1, 3) @ E, fitted, rtol=1e-10, atol=1e-9)
    W, H = u.unnormalized()
    assert_allclose(H, u.result.H[u.order], rtol=1e-12)
    assert_allclose(W, u.result.W[:, u.order], rtol=1e-12)


def test_fraction_models_refuse_normalize(tof):
    with pytest.raises(ValueError, match="normalize applies to the plain model"):
        unmix.unmix(tof.image(), 3, normalize="max")


def test_default_model_gives_fractions_intensity_and_data_units(tof):
    """The default: counts are Poisson, fractions sum to one, and
    intensity * fractions @ endmembers is the model in counts; unnormalized()
    gives factors in the data's units with the same product."""
    u = unmix.unmix(tof.image(), 3, random_state=0)
    assert u.params["model"] == "scaled" and u.params["noise"] == "poisson"
    assert "counts" in u.params["noise_reason"] or "whole numbers" in u.params["noise_reason"]
    F = u.abundances.reshape(-1, 3)
    assert F.min() >= 0
    assert_allclose(F.sum(axis=1), 1.0, atol=1e-10)
    model = u.intensity.reshape(-1, 1) * F @ u.endmembers
    W, H = u.unnormalized()
    assert_allclose(W @ H, model, rtol=1e-10, atol=1e-9)
    # The residual is the misfit of that model in counts.
    assert_allclose(u.residual.ravel(), np.linalg.norm(tof.X - model, axis=1), rtol=1e-8)
    # The simulation's pixel totals follow from composition: material
    # fractions, the strict refinement, an intensity of one.
    assert u.params["fractions"] == "material" and u.params["refined_strict"]
    assert_allclose(u.intensity, 1.0)
    assert metrics.mean_sad(tof.endmembers, u.endmembers) < 2.0


def test_strict_sum_to_one_writes_fractions(tof):
    u = unmix.unmix(tof.image(), 3, random_state=0, sum_to_one=True)
    assert u.params["model"] == "strict" and u.params["sum_to_one"] is True
    assert_allclose(u.abundances.sum(axis=-1), 1.0, atol=1e-10)


def test_same_random_state_same_result(tof):
    a = unmix.unmix(tof.image(), 3, n_init=3, random_state=7)
    b = unmix.unmix(tof.image(), 3, n_init=3, random_state=7)
    assert a.restarts == b.restarts
    assert_array_equal(a.endmembers, b.endmembers)
    assert_array_equal(a.abundances, b.abundances)
    c = unmix.unmix(tof.image(), 3, n_init=3, random_state=8)
    assert {r.seed for r in c.restarts}.isdisjoint({r.seed for r in a.restarts})


def test_none_random_state_records_the_entropy(tof):
    a = unmix.unmix(tof.image(), 3, n_init=2)
    b = unmix.unmix(tof.image(), 3, n_init=2,
                    random_state=np.random.SeedSequence(a.params["entropy"]))
    assert a.restarts == b.restarts


def test_n_init_keeps_the_best_restart(tof):
    u = unmix.unmix(tof.image(), 3, n_init=4, random_state=3, sum_to_one=False)
    assert len(u.restarts) == 4
    assert len({r.seed for r in u.restarts}) == 4
    objectives = [r.objective for r in u.restarts]
    assert u.result.objective[-1] == min(objectives)
    assert u.params["n_init"] == 4


def test_restarts_are_nmf_runs_with_the_recorded_seeds(tof):
    """Plain model, Gaussian noise: restart 0 uses init='spa' on X itself,
    the others init='vca' with their own seeds."""
    X = tof.X.astype(np.float64)
    kw = dict(sum_to_one=False, noise="gaussian", max_iter=50)
    u = unmix.unmix(tof.image(), 3, n_init=2, random_state=5, **kw)
    first = unmix.nmf(X, 3, random_state=u.restarts[0].seed, init="spa", max_iter=50)
    second = unmix.nmf(X, 3, random_state=u.restarts[1].seed, init="vca", max_iter=50)
    assert u.restarts[0].objective == first.objective[-1]
    assert u.restarts[1].objective == second.objective[-1]
    assert u.params["init_restarts"] == "vca"
    # A user-given init is used by every restart.
    v = unmix.unmix(tof.image(), 3, n_init=2, random_state=5, init="nndsvd", **kw)
    again = unmix.nmf(X, 3, random_state=v.restarts[1].seed, init="nndsvd", max_iter=50)
    assert v.restarts[1].objective == again.objective[-1]
    assert v.params["init_restarts"] == "nndsvd"


def test_nmf_options_are_passed_through_and_recorded(tof):
    calls = []
    u = unmix.unmix(tof.image(), 3, random_state=0, solver="hals", max_iter=7, tol=0.0,
                    l1_H=0.5, callback=calls.append, sum_to_one=False)
    assert u.result.n_iter == 7
    assert len(calls) == 7
    assert u.params["solver"] == "hals"
    assert u.params["max_iter"] == 7
    assert u.params["l1_H"] == 0.5
    # Options left at their default are recorded too.
    assert u.params["l2_W"] == 0.0
    assert u.params["n_components"] == 3
    assert u.params["normalize"] == "max"


def test_residual_is_the_per_pixel_misfit(tof, monkeypatch):
    # Blocks of a few rows, so the blocked loop runs many times.
    monkeypatch.setattr(unmix._validation, "BLOCK_BYTES", 96 * 8 * 7)
    u = unmix.unmix(tof.image(), 3, random_state=0, sum_to_one=False, noise="gaussian")
    W, H = u.result.W, u.result.H
    direct = np.linalg.norm(tof.X - W @ H, axis=1)
    assert_allclose(u.residual.ravel(), direct, rtol=1e-10)
    assert u.rel_error == pytest.approx(metrics.reconstruction_error(tof.X, W, H), rel=1e-10)


def test_array_inputs_of_any_spatial_rank(tof):
    line = unmix.unmix(tof.X, 3, random_state=0)  # 2-D array: a line scan
    assert line.abundances.shape == (576, 3)
    assert line.residual.shape == (576,)
    volume = unmix.unmix(tof.X.reshape(4, 12, 12, 96), 3, random_state=0)
    assert volume.abundances.shape == (4, 12, 12, 3)
    assert volume.residual.shape == (4, 12, 12)


def test_integer_and_float32_data(tof):
    counts = tof.X.astype(np.uint16).reshape(24, 24, 96)
    u = unmix.unmix(counts, 3, random_state=0)
    assert u.endmembers.dtype == np.float64
    v = unmix.unmix(tof.X.astype(np.float32).reshape(24, 24, 96), 3, random_state=0)
    assert v.endmembers.dtype == np.float32
    assert v.abundances.dtype == np.float32
    assert metrics.mean_sad(u.endmembers, v.endmembers) < 1.0


@pytest.mark.parametrize("kwargs, error, words", [
    ({"n_components": 0}, ValueError, "n_components"),
    ({"n_components": 2.5}, TypeError, "n_components"),
    ({"n_components": 2, "n_init": 0}, ValueError, "n_init"),
    ({"n_components": 2, "normalize": "peak"}, ValueError, "normalize"),
    ({"n_components": 2, "random_state": -1}, ValueError, "random_state"),
    ({"n_components": 2, "random_state": "seed"}, TypeError, "random_state"),
    ({"n_components": 2, "n_iter": 5}, TypeError, "n_iter"),
    ({"n_components": 2, "solver": "magic"}, ValueError, "solver"),
])
def test_errors_name_the_parameter(tof, kwargs, error, words):
    with pytest.raises(error, match=words):
        unmix.unmix(tof.image(), **kwargs)


def test_image_errors():
    with pytest.raises(ValueError, match="image"):
        unmix.unmix(np.ones(5), 1)
    with pytest.raises(TypeError, match="image"):
        unmix.unmix("data.h5", 1)


# --------------------------------------------------------------------------
# pca
# --------------------------------------------------------------------------


def test_pca_matches_numpy_svd():
    rng = np.random.default_rng(0)
    X = rng.random((60, 12)) @ rng.random((12, 20)) + rng.random((60, 20))
    p = unmix.pca(X.reshape(6, 10, 20))
    Xc = X - X.mean(axis=0)
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    assert p.n_components == 20
    assert_allclose(p.explained_variance, S**2 / 59, rtol=1e-10)
    assert_allclose(p.explained_variance_ratio, S**2 / np.sum(S**2), rtol=1e-10)
    assert p.explained_variance_ratio.sum() <= 1 + 1e-12
    assert_allclose(p.explained_variance_ratio.sum(), 1.0)
    assert_allclose(np.abs(p.components), np.abs(Vt), atol=1e-8)
    assert_allclose(p.scores.reshape(60, 20), Xc @ p.components.T, atol=1e-10)
    assert_allclose(p.mean, X.mean(axis=0))
    # Some loadings are negative: that is the point of PCA.
    assert (p.components < 0).any()


@pytest.mark.parametrize("method", ["full", "covariance", "randomized"])
def test_pca_methods_agree(tof, method, monkeypatch):
    monkeypatch.setattr(unmix._validation, "BLOCK_BYTES", 96 * 8 * 50)
    ref = unmix.pca(tof.image(), 4, method="full")
    p = unmix.pca(tof.image(), 4, method=method)
    assert p.method == method
    assert p.explained_variance_ratio.sum() <= 1 + 1e-12
    assert_allclose(p.total_variance, ref.total_variance, rtol=1e-10)
    # The data has rank 3 plus noise: the randomized method is exact on the
    # 3 signal axes and approximate on the 4th (a noise axis whose variance
    # is close to the next ones').
    exact = 3 if method == "randomized" else 4
    assert_allclose(p.explained_variance, ref.explained_variance, rtol=1e-2)
    assert_allclose(p.explained_variance[:exact], ref.explained_variance[:exact], rtol=1e-8)
    # Deterministic signs: the same axes, not just up to sign.
    assert_allclose(p.components[:exact], ref.components[:exact], atol=1e-6)
    scale = np.abs(ref.scores).max()
    assert_allclose(p.scores[..., :exact], ref.scores[..., :exact], atol=1e-6 * scale)


def test_pca_errors(tof):
    with pytest.raises(ValueError, match="n_components"):
        unmix.pca(tof.image(), 97)
    with pytest.raises(ValueError, match="method"):
        unmix.pca(tof.image(), 2, method="svd")


def test_pca_randomized_by_default_for_few_components_matches_exact_svd():
    # Rank 5 with singular values 60-300 x the noise's, plus white noise:
    # "auto" takes the randomized method for k = 8 of 3000 x 400.
    rng = np.random.default_rng(3)
    n, p, rank = 3000, 400, 5
    U = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    V = np.linalg.qr(rng.standard_normal((p, rank)))[0]
    X = 10.0 + (U * [3000.0, 2000.0, 1500.0, 1000.0, 600.0]) @ V.T \
        + 0.1 * rng.standard_normal((n, p))
    calls = []
    result = unmix.pca(X.reshape(60, 50, p), 8, progress=lambda done, total: calls.append(
        (done, total)))
    assert result.method == "randomized"
    Xc = X - X.mean(axis=0)
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    exact = S**2 / (n - 1)
    assert_allclose(result.total_variance, exact.sum(), rtol=1e-12)
    # The signal axes to rounding; the noise axes (variances within 10 % of
    # each other) to a few per cent.
    assert_allclose(result.explained_variance[:rank], exact[:rank], rtol=1e-10)
    assert_allclose(result.explained_variance[rank:], exact[rank:8], rtol=5e-2)
    signs = np.sign(np.sum(result.components[:rank] * Vt[:rank], axis=1))
    assert_allclose(result.components[:rank], signs[:, None] * Vt[:rank], atol=1e-9)
    # The progress: one call per pass over the data, ending on the total.
    assert calls[-1][0] == calls[-1][1] == len(calls)
    assert [done for done, _ in calls] == list(range(1, len(calls) + 1))


def test_pca_progress_must_be_callable():
    with pytest.raises(TypeError, match="progress must be callable or None, got 3"):
        unmix.pca(np.ones((4, 4, 3)), 1, progress=3)
