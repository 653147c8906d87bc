"""unmix.endmembers: SPA, VCA and NNLS abundances."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import nnls

import unmix.endmembers as em
from unmix import datasets
from unmix.endmembers import abundances_from_endmembers, spa, vca
from unmix.metrics import abundance_rmse, spectral_angles


def separable(seed=0, n_pixels=400, n_channels=40, k=5, max_mix=0.8):
    """Noiseless X = A E with exactly one pure pixel per endmember, at random
    positions; every other pixel is a mixture with no abundance above max_mix."""
    rng = np.random.default_rng(seed)
    E = rng.random((k, n_channels))
    A = rng.dirichlet(np.full(k, 0.7), size=4 * n_pixels)
    A = A[A.max(axis=1) < max_mix][: n_pixels - k]
    A = np.vstack([A, np.eye(k)])
    perm = rng.permutation(n_pixels)
    A = A[perm]
    pure = np.argsort(perm)[n_pixels - k:]  # where the identity rows went
    return A @ E, A, E, pure


# --------------------------------------------------------------------------
# SPA
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_spa_recovers_the_pure_pixels(seed):
    X, A, _, pure = separable(seed)
    X0 = X.copy()
    idx = spa(X, 5)
    assert idx.dtype == np.intp and idx.shape == (5,)
    assert set(idx.tolist()) == set(pure.tolist())
    np.testing.assert_array_equal(X, X0)  # the input is not touched


@pytest.mark.parametrize("form", ["float32", "csr", "csc", "fortran", "list"])
def test_spa_input_forms(form):
    X, _, _, pure = separable(1)
    data = {"float32": X.astype(np.float32), "csr": sp.csr_matrix(X), "csc": sp.csc_array(X),
            "fortran": np.asfortranarray(X), "list": X.tolist()}[form]
    assert set(spa(data, 5).tolist()) == set(pure.tolist())


def test_spa_normalized_is_scale_invariant():
    X, _, _, pure = separable(2)
    scale = np.random.default_rng(0).uniform(0.2, 3.0, size=(X.shape[0], 1))
    Xs = X * scale  # varying illumination: abundances no longer sum to one
    assert set(spa(Xs, 5, normalize=True).tolist()) == set(pure.tolist())
    Xs[10] = 0.0  # an all-zero pixel is harmless
    assert set(spa(Xs, 5, normalize=True).tolist()) == set(pure.tolist())


def test_spa_rank_deficient_gives_distinct_pixels():
    X, _, _, _ = separable(3, k=2)
    idx = spa(X, 4)
    assert len(set(idx.tolist())) == 4


# --------------------------------------------------------------------------
# VCA
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("snr_db", [None, 0.0], ids=["estimated", "low-snr"])
def test_vca_recovers_the_pure_pixels(seed, snr_db):
    X, _, _, pure = separable(seed)
    X0 = X.copy()
    idx = vca(X, 5, random_state=seed, snr_db=snr_db)
    assert set(idx.tolist()) == set(pure.tolist())
    np.testing.assert_array_equal(X, X0)


def test_vca_is_reproducible_and_takes_sparse_and_float32():
    X, _, _, pure = separable(5)
    idx = vca(X, 5, random_state=11)
    np.testing.assert_array_equal(vca(X, 5, random_state=11), idx)
    np.testing.assert_array_equal(vca(X, 5, random_state=np.random.default_rng(11)), idx)
    assert set(vca(sp.csr_matrix(X), 5, random_state=11).tolist()) == set(pure.tolist())
    assert set(vca(X.astype(np.float32), 5, random_state=11).tolist()) == set(pure.tolist())


def test_vca_iterative_subspace_for_many_channels(monkeypatch):
    # Above _DENSE_GRAM_MAX channels the subspace comes from ARPACK.
    monkeypatch.setattr(em, "_DENSE_GRAM_MAX", 10)
    X, _, _, pure = separable(6)
    for snr_db in (None, 0.0):
        assert set(vca(X, 5, random_state=0, snr_db=snr_db).tolist()) == set(pure.tolist())


def test_vca_with_noise_finds_nearly_pure_pixels():
    X, A, E, _ = separable(7, n_pixels=1000, max_mix=0.95)
    rng = np.random.default_rng(0)
    Xn = X + 0.01 * rng.standard_normal(X.shape)
    for idx in (vca(Xn, 5, random_state=0), spa(Xn, 5)):
        assert spectral_angles(E, X[idx]).mean < 3.0
        assert A[idx].max(axis=1).min() > 0.85


# --------------------------------------------------------------------------
# NNLS abundances
# --------------------------------------------------------------------------


def _nnls_loop(X, E):
    return np.array([nnls(E.T, x)[0] for x in X])


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_abundances_match_scipy_nnls(k):
    rng = np.random.default_rng(k)
    E = rng.random((k, 60))
    X = np.abs(rng.random((300, k)) @ E + 0.5 * rng.standard_normal((300, 60)))
    X[7] = 0.0
    A = abundances_from_endmembers(X, E)
    expected = _nnls_loop(X, E)
    np.testing.assert_allclose(A, expected, atol=1e-9)
    assert (A >= 0).all() and (A == 0).any()
    np.testing.assert_array_equal(A[7], 0.0)


def test_abundances_ill_conditioned():
    rng = np.random.default_rng(0)
    base = rng.random(50)
    E = np.vstack([base + 1e-3 * rng.random(50) for _ in range(4)])
    X = np.abs(rng.random((200, 4)) @ E + 0.01 * rng.standard_normal((200, 50)))
    A = abundances_from_endmembers(X, E)
    expected = _nnls_loop(X, E)
    obj = lambda B: np.sum((X - B @ E) ** 2, axis=1)  # noqa: E731
    np.testing.assert_allclose(obj(A), obj(expected), rtol=1e-6, atol=1e-12)


def test_abundances_exact_and_forms():
    X, A, E, _ = separable(8)
    np.testing.assert_allclose(abundances_from_endmembers(X, E), A, atol=1e-10)
    np.testing.assert_allclose(abundances_from_endmembers(sp.csr_matrix(X), E), A, atol=1e-10)
    A32 = abundances_from_endmembers(X.astype(np.float32), E)
    assert A32.dtype == np.float32
    np.testing.assert_allclose(A32, A, atol=1e-4)


def test_abundances_refuse_negative_data():
    E = np.ones((2, 5))
    with pytest.raises(ValueError, match="Negative values in data passed to X"):
        abundances_from_endmembers(-np.ones((3, 5)), E)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("func", [spa, vca])
def test_k_errors(func):
    X = np.random.default_rng(0).random((10, 4))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 4\], got 5"):
        func(X, 5)
    with pytest.raises(TypeError, match=r"k must be an integer in \[1, 4\], got True"):
        func(X, True)
    with pytest.raises(ValueError, match=r"X must be finite, got 1 entries"):
        func(_one_nan(X), 2)


def _one_nan(X):
    Y = X.copy()
    Y[3, 2] = np.nan
    return Y


def test_other_errors():
    X = np.random.default_rng(0).random((10, 4))
    with pytest.raises(TypeError, match=r"normalize must be True or False, got 'l1'"):
        spa(X, 2, normalize="l1")
    with pytest.raises(TypeError, match=r"snr_db must be a real number \(dB\) or None"):
        vca(X, 2, snr_db="high")
    with pytest.raises(TypeError, match=r"random_state must be None, a non-negative integer"):
        vca(X, 2, random_state="x")
    with pytest.raises(ValueError, match=r"E must have one column per channel of X \(4\), got "
                                         r"shape \(2, 5\)"):
        abundances_from_endmembers(X, np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"E must be a dense array, got a scipy.sparse"):
        abundances_from_endmembers(X, sp.csr_matrix(np.ones((2, 4))))


# --------------------------------------------------------------------------
# Samson
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samson():
    try:
        return datasets.load_samson()
    except FileNotFoundError as err:
        pytest.skip(f"reference data shared/data is absent: {err}")


def test_samson_spa_and_vca(samson):
    # Measured: SPA 22.0° (it takes a bright pixel for water), SPA on
    # l1-normalized pixels 5.3°, VCA 4.2° (seed 0); plain NMF is ~25°.
    sads = {}
    for name, idx in [("spa", spa(samson.X, 3)),
                      ("spa-l1", spa(samson.X, 3, normalize=True)),
                      ("vca", vca(samson.X, 3, random_state=0))]:
        result = spectral_angles(samson.endmembers, samson.X[idx])
        assert np.isfinite(result.mean) and result.mean < 30.0, (name, result)
        sads[name] = result.mean
        A = abundances_from_endmembers(samson.X, samson.X[idx])
        assert np.isfinite(abundance_rmse(samson.abundances, A, result))
    assert sads["spa-l1"] < 10.0 and sads["vca"] < 10.0
