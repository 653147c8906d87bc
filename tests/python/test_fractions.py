"""The default model of unmix.unmix: the noise model chosen from the data
(unmix.noise), fractions with a per-pixel intensity (unmix.fractions), the
scaled sum-to-one of the core (sum_to_one=array), the minimum-volume weight
set from the data, and what the result says about itself."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import unmix
import unmix.metrics as metrics
from unmix import fractions, noise

from eds_sim import simulate


def _mixture(n=400, p=40, k=3, seed=0, intensity=None, noise_sd=0.002):
    rng = np.random.default_rng(seed)
    E = rng.random((k, p)) + 0.1
    A = rng.dirichlet(np.full(k, 0.5), size=n)
    scale = np.ones(n) if intensity is None else intensity
    X = np.maximum(scale[:, None] * (A @ E) + rng.normal(0, noise_sd, (n, p)), 0.0)
    return X, A, E


# ---------------------------------------------------------------------------
# The noise model
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("data, metadata, model, words", [
    (np.ones((4, 3), np.uint16), None, "poisson", "integer counts (dtype uint16)"),
    (np.full((4, 3), 2.0), None, "poisson", "whole numbers"),
    (np.full((4, 3), 2.5), None, "gaussian", "not whole numbers"),
    (np.full((4, 3), 2.5), {"attrs": {"signal_type": "EDS_TEM"}}, "poisson", "EDS_TEM"),
    (np.full((4, 3), 2.5), {"signal_type": "EDS_SEM"}, "poisson", "EDS_SEM"),
    (-np.ones((4, 3)), None, "gaussian", "negative"),
    (np.zeros((4, 3)), None, "gaussian", "all zero"),
])
def test_noise_model_from_the_data(data, metadata, model, words):
    chosen = noise.choose(data, metadata)
    assert chosen.model == model and words in chosen.reason


def test_noise_model_override_and_errors():
    assert noise.choose(np.ones((3, 3), np.uint8), noise="gaussian").model == "gaussian"
    assert noise.choose(np.full((3, 3), 0.5), noise="poisson").model == "poisson"
    with pytest.raises(ValueError, match="noise='poisson' needs non-negative data"):
        noise.choose(-np.ones((3, 3)), noise="poisson")
    with pytest.raises(ValueError, match="noise"):
        noise.choose(np.ones((3, 3)), noise="laplace")


def test_regression_variance_is_that_of_white_noise():
    """HySime's estimate on a rank-3 signal plus white noise of variance
    1e-4: within 5 %, where the rank-2 residual counts a whole component
    as noise."""
    rng = np.random.default_rng(1)
    X = rng.random((3000, 3)) @ rng.random((3, 60)) + rng.normal(0, 1e-2, (3000, 60))
    assert noise.regression_variance(X) == pytest.approx(1e-4, rel=0.05)
    assert unmix.preprocess.noise_variance(X, 2) > 10 * 1e-4
    assert noise.regression_variance(X[:100]) is None  # too few samples for 60 channels


def test_top_eigenvalues_match_the_full_spectrum():
    rng = np.random.default_rng(2)
    X = rng.random((500, 4)) @ rng.random((4, 700)) + 0.01 * rng.random((500, 700))
    exact = np.linalg.svd(X, compute_uv=False)[:4] ** 2
    total = float(np.sum(X * X))
    got = noise.top_eigenvalues(X, 4, total)
    # The precision a residual needs: relative to the residual's energy.
    assert abs(got.sum() - exact.sum()) <= 1e-3 * (total - exact.sum())


# ---------------------------------------------------------------------------
# The core's scaled sum-to-one
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("solver, loss", [("bpp", "frobenius"), ("mu", "frobenius"),
                                          ("admm", "frobenius"), ("mu", "kl")])
def test_sum_to_one_array_gives_each_row_its_sum(solver, loss):
    intensity = np.random.default_rng(3).uniform(0.3, 3.0, 400)
    X, _, _ = _mixture(intensity=intensity)
    r = unmix.nmf(X, 3, sum_to_one=intensity, solver=solver, loss=loss, max_iter=50, tol=0,
                  random_state=0)
    assert_allclose(r.W.sum(axis=1), intensity, rtol=1e-9)
    assert np.all(np.diff(r.objective) <= 1e-10 * r.objective[0])
    # The unit simplex fits data with intensities much worse.
    unit = unmix.nmf(X, 3, sum_to_one=True, solver=solver, loss=loss, max_iter=50, tol=0,
                     random_state=0)
    assert r.rel_error[-1] < 0.7 * unit.rel_error[-1]


@pytest.mark.parametrize("value, error, words", [
    (np.ones(5), ValueError, r"shape \(400,\)"),
    (-np.ones(400), ValueError, "finite sums >= 0"),
    ("yes", TypeError, "True, False or an array"),
])
def test_sum_to_one_array_errors(value, error, words):
    X, _, _ = _mixture()
    with pytest.raises(error, match=words):
        unmix.nmf(X, 3, sum_to_one=value)


# ---------------------------------------------------------------------------
# Fractions, intensity, the two conventions
# ---------------------------------------------------------------------------


def test_constant_intensity_gives_the_material_fractions():
    """A linear mixture whose totals follow from composition: the fractions
    are those of the mixture, the endmembers in the data's units, intensity
    one."""
    X, A, E = _mixture(n=900)
    u = unmix.unmix(X.reshape(30, 30, -1), 3, random_state=0)
    assert u.params["fractions"] == "material" and u.params["intensity_chi2"] < 4
    sad = metrics.spectral_angles(E, u.endmembers)
    assert sad.mean < 1.0
    assert metrics.abundance_rmse(A, u.abundances.reshape(-1, 3), sad) < 0.02
    # The endmembers are the pure spectra themselves, not just their shapes.
    assert_allclose(u.endmembers[sad.order], E, rtol=0.05, atol=0.02)
    assert_allclose(u.intensity, 1.0)


def test_varying_intensity_gives_signal_fractions_and_the_intensity_map():
    """Shading: every pixel scaled by its own factor. The fractions cannot be
    the material's (the scales of the endmembers are not identifiable); they
    are each component's share of the pixel's signal, and the intensity map
    follows the shading."""
    shading = np.random.default_rng(4).uniform(0.3, 2.0, 900)
    X, A, E = _mixture(n=900, intensity=shading)
    u = unmix.unmix(X.reshape(30, 30, -1), 3, random_state=0)
    assert u.params["fractions"] == "signal" and u.params["intensity_chi2"] > 4
    sad = metrics.spectral_angles(E, u.endmembers)
    assert sad.mean < 1.0
    F = u.abundances.reshape(-1, 3)
    assert_allclose(F.sum(axis=1), 1.0, atol=1e-10)
    # The share of pixel i's signal that component j gives.
    share = A * E.sum(axis=1)
    share /= share.sum(axis=1, keepdims=True)
    assert metrics.abundance_rmse(share, F, sad) < 0.02
    assert np.corrcoef(u.intensity.ravel(), shading)[0, 1] > 0.99
    model = u.intensity.reshape(-1, 1) * F @ u.endmembers
    assert np.linalg.norm(X - model) / np.linalg.norm(X) < 0.02


def test_pixels_without_signal_get_zero_fractions():
    X, _, _ = _mixture(n=400)
    X[[3, 50]] = 0.0
    u = unmix.unmix(X.reshape(20, 20, -1), 3, random_state=0)
    F = u.abundances.reshape(-1, 3)
    assert_allclose(F[[3, 50]], 0.0)
    assert_allclose(np.delete(F, [3, 50], axis=0).sum(axis=1), 1.0, atol=1e-10)


def test_minvol_weight_follows_the_unexplained_structure():
    """No excess on a linear mixture; on mixtures with endmember variability
    (two variants of every endmember, mixed per pixel) a share of the
    residual that the noise does not explain, and a larger weight."""
    X, _, E = _mixture(n=900)
    prep = fractions.prepare(X, "gaussian", 3, True)
    w_linear, info_linear = fractions.minvol_weight(prep.M, 3, prep.noise)
    rng = np.random.default_rng(5)
    variants = E[None] * (1 + 0.3 * (rng.random((2, 3, E.shape[1])) - 0.5))
    mix = rng.random((900, 3, 1))
    A = rng.dirichlet(np.full(3, 0.5), size=900)
    spectra = mix * variants[0] + (1 - mix) * variants[1]
    Xv = np.einsum("ij,ijc->ic", A, spectra) + rng.normal(0, 0.002, (900, E.shape[1]))
    prep_v = fractions.prepare(np.maximum(Xv, 0), "gaussian", 3, True)
    w_var, info_var = fractions.minvol_weight(prep_v.M, 3, prep_v.noise)
    assert info_linear["excess_share"] < 0.05 < 0.2 < info_var["excess_share"]
    assert w_linear == 0.0 < w_var


def test_counts_are_weighted_and_come_back_in_counts():
    sim = simulate("particles", dose=300, seed=1)
    u = unmix.unmix(unmix.SpectralImage(sim.X, channels=sim.energy, channel_unit="keV"), 3,
                    random_state=0)
    assert u.params["noise"] == "poisson" and "integer counts" in u.params["noise_reason"]
    assert u.column_weights.min() > 0 and u.column_weights.max() > u.column_weights.min()
    sad = metrics.spectral_angles(sim.spectra, u.endmembers)
    assert sad.mean < 3.0
    # Spectra in counts per pixel: each within 10 % of the true one's total.
    assert_allclose(u.endmembers[sad.order].sum(axis=1), sim.spectra.sum(axis=1), rtol=0.1)


def test_a_component_present_nowhere_is_reported():
    """Four components asked of a two-component image: the spare ones carry
    next to nothing, and the result says so instead of returning them
    silently."""
    rng = np.random.default_rng(6)
    E = rng.random((2, 30)) + 0.1
    A = np.zeros((400, 2))
    A[:200, 0] = 1.0
    A[200:, 1] = 1.0
    X = A @ E + rng.normal(0, 1e-3, (400, 30))
    u = unmix.unmix(np.maximum(X, 0).reshape(20, 20, -1), 4, random_state=0)
    F = u.abundances.reshape(-1, 4)
    dead = fractions.dead_components(F)
    if dead:
        assert any("present nowhere" in e for e in u.events), u.events
    else:  # no silent death: every component is somewhere
        assert F.max(axis=0).min() >= fractions.DEAD_FRACTION
    # The detection itself: a column below 1 % everywhere is dead.
    G = np.c_[F[:, :3], np.full(len(F), 0.005)]
    assert fractions.dead_components(G) == [3]
