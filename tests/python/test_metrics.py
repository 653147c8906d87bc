"""unmix.metrics against hand-computed cases."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import unmix._validation
from unmix.metrics import (
    SpectralAngles,
    abundance_rmse,
    angle_matrix,
    mean_sad,
    reconstruction_error,
    spectral_angles,
)


def _planar(degrees):
    """Unit spectra in the plane of the first two channels, at given angles."""
    t = np.radians(np.asarray(degrees, dtype=float))
    return np.column_stack([np.cos(t), np.sin(t), np.zeros_like(t)])


# --------------------------------------------------------------------------
# spectral angles
# --------------------------------------------------------------------------


def test_permuted_scaled_copy_gives_zero_and_the_order():
    rng = np.random.default_rng(0)
    E = rng.random((4, 30))
    perm = np.array([2, 0, 3, 1])
    E_est = np.array([2.5, 0.1, 7.0, 1.0])[:, None] * E[perm]
    result = spectral_angles(E, E_est)
    assert isinstance(result, SpectralAngles)
    np.testing.assert_allclose(result.angles, 0.0, atol=1e-5)
    np.testing.assert_array_equal(result.order, np.argsort(perm))
    np.testing.assert_allclose(E_est[result.order] / E,
                               np.broadcast_to([[0.1], [1.0], [2.5], [7.0]], E.shape))
    assert result.mean == pytest.approx(0.0, abs=1e-5)


def test_orthogonal_spectra_are_90_degrees():
    E_true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    E_est = np.array([[0.0, 0.0, 3.0], [2.0, 0.0, 0.0]])
    result = spectral_angles(E_true, E_est)
    np.testing.assert_allclose(result.angles, [0.0, 90.0])
    np.testing.assert_array_equal(result.order, [1, 0])
    assert result.mean == pytest.approx(45.0)


@pytest.mark.parametrize("a, b, expected", [
    ([1.0, 0.0], [1.0, 1.0], 45.0),
    ([1.0, 1.0, 0.0], [0.0, 1.0, 1.0], 60.0),
    ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 0.0),
    ([1.0, 0.0], [-1.0, 0.0], 180.0),
])
def test_known_angles(a, b, expected):
    assert angle_matrix([a], [b])[0, 0] == pytest.approx(expected, abs=1e-6)
    assert mean_sad([a], [b]) == pytest.approx(expected, abs=1e-6)


def test_matching_minimizes_the_sum_not_greedily():
    # Greedy would pair true 30° with estimate 20° (10°) and leave 0° with 50°.
    result = spectral_angles(_planar([0, 30]), _planar([20, 50]))
    np.testing.assert_allclose(result.angles, [20.0, 20.0])
    np.testing.assert_array_equal(result.order, [0, 1])
    assert mean_sad(_planar([0, 30]), _planar([20, 50])) == pytest.approx(20.0)


def test_more_estimates_than_truth():
    result = spectral_angles(_planar([0, 40]), _planar([80, 41, 2]))
    np.testing.assert_array_equal(result.order, [2, 1])
    np.testing.assert_allclose(result.angles, [2.0, 1.0])
    assert result.mean == pytest.approx(1.5)


def test_fewer_estimates_than_truth():
    result = spectral_angles(_planar([0, 40, 80]), _planar([78]))
    np.testing.assert_array_equal(result.order, [-1, -1, 0])
    assert np.isnan(result.angles[:2]).all()
    assert result.angles[2] == pytest.approx(2.0)
    assert result.mean == pytest.approx(2.0)


def test_zero_spectra_are_90_degrees_without_warnings():
    E_true = np.array([[1.0, 0.0], [0.0, 0.0]])
    E_est = np.array([[0.0, 0.0], [1.0, 1e-300]])
    np.testing.assert_allclose(angle_matrix(E_true, E_est), [[90.0, 0.0], [90.0, 90.0]])
    result = spectral_angles(E_true, E_est)
    np.testing.assert_array_equal(result.order, [1, 0])


def test_tiny_and_huge_spectra_do_not_overflow():
    E = np.array([[1e-200, 2e-200], [1e200, 1e200]])
    np.testing.assert_allclose(spectral_angles(E, E[::-1] * 3).angles, 0.0, atol=1e-5)


@pytest.mark.parametrize("E_est, error, match", [
    (np.ones((2, 4)), ValueError, r"same number of channels.*\(2, 3\).*\(2, 4\)"),
    (np.ones(3), ValueError, r"E_est must be a 2-D array, got a 1-D"),
    (np.array([[np.nan, 1.0, 1.0]]), ValueError, r"E_est must be finite, got 1 entries"),
    ("abc", TypeError, r"E_est must be a 2-D array of numbers, got 'abc'"),
    (np.ones((0, 3)), ValueError, r"E_est must be non-empty, got shape \(0, 3\)"),
])
def test_spectral_angles_errors(E_est, error, match):
    with pytest.raises(error, match=match):
        spectral_angles(np.ones((2, 3)), E_est)


# --------------------------------------------------------------------------
# abundance RMSE
# --------------------------------------------------------------------------


def test_rmse_of_permuted_exact_abundances_is_zero():
    rng = np.random.default_rng(1)
    A = rng.dirichlet(np.ones(3), size=50)
    perm = np.array([1, 2, 0])
    A_est = A[:, perm] * rng.uniform(0.5, 2.0, size=(50, 1))  # per-pixel scale
    order = spectral_angles(np.eye(3), np.eye(3)[perm])
    np.testing.assert_array_equal(order.order, np.argsort(perm))
    assert abundance_rmse(A, A_est, order) == pytest.approx(0.0, abs=1e-12)
    assert abundance_rmse(A, A_est, order.order) == pytest.approx(0.0, abs=1e-12)
    assert abundance_rmse(A, A_est, order, sum_to_one=False) > 0.05
    assert abundance_rmse(A, A[:, perm], order, sum_to_one=False) == pytest.approx(0.0, abs=1e-15)


def test_rmse_hand_computed():
    A_true = np.array([[1.0, 0.0], [0.5, 0.5]])
    A_est = np.array([[0.5, 0.5], [0.5, 0.5]])
    # errors 0.5, 0.5, 0, 0 -> sqrt(0.5 / 4)
    assert abundance_rmse(A_true, A_est) == pytest.approx(np.sqrt(0.125))
    # sum-to-one acts on the rows of A_est: [2, 2] -> [0.5, 0.5]
    assert abundance_rmse(A_true, 4 * A_est) == pytest.approx(np.sqrt(0.125))
    assert abundance_rmse(A_true, 4 * A_est, sum_to_one=False) == pytest.approx(
        np.sqrt((1 + 4 + 2.25 + 2.25) / 4))


def test_rmse_with_extra_and_missing_components():
    A_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    # three estimated columns: the extra one takes part in the normalization
    A_est = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    assert abundance_rmse(A_true, A_est, [0, 2]) == pytest.approx(np.sqrt(0.5 / 4))
    # a true component with no match is scored against zero
    assert abundance_rmse(A_true, A_est[:, :1], [0, -1]) == pytest.approx(np.sqrt(1 / 4))


def test_rmse_zero_rows_without_warnings():
    A_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    A_est = np.array([[0.0, 0.0], [0.0, 3.0]])
    assert abundance_rmse(A_true, A_est) == pytest.approx(0.5)


@pytest.mark.parametrize("order, error, match", [
    (None, ValueError, r"order is needed .* k_true=2 and k_est=3"),
    ([0], ValueError, r"order must have one entry per true component \(2\), got 1"),
    ([0, 3], ValueError, r"order entries must be -1 or in \[0, 3\).*\[0, 3\]"),
    ([1, 1], ValueError, r"order must not repeat a column of A_est, got \[1, 1\]"),
    ([0.0, 1.0], TypeError, r"order must be a 1-D array of integers"),
])
def test_rmse_order_errors(order, error, match):
    with pytest.raises(error, match=match):
        abundance_rmse(np.ones((4, 2)), np.ones((4, 3)), order)


def test_rmse_shape_errors():
    with pytest.raises(ValueError, match=r"same number of pixels.*\(4, 2\).*\(5, 2\)"):
        abundance_rmse(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(TypeError, match=r"sum_to_one must be True or False, got 'yes'"):
        abundance_rmse(np.ones((4, 2)), np.ones((4, 2)), sum_to_one="yes")


# --------------------------------------------------------------------------
# reconstruction error
# --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["dense", "fortran", "float32", "csr", "csc", "coo"])
def test_reconstruction_error_matches_direct(form, monkeypatch):
    monkeypatch.setattr(unmix._validation, "BLOCK_BYTES", 2000)  # many blocks of 6 rows
    rng = np.random.default_rng(2)
    X = rng.random((103, 40))
    X[X < 0.5] = 0.0
    W, H = rng.random((103, 3)), rng.random((3, 40))
    data = {
        "dense": X, "fortran": np.asfortranarray(X), "float32": X.astype(np.float32),
        "csr": sp.csr_matrix(X), "csc": sp.csc_array(X), "coo": sp.coo_matrix(X),
    }[form]
    Xd = X.astype(np.float32).astype(np.float64) if form == "float32" else X
    expected = np.linalg.norm(Xd - W @ H) / np.linalg.norm(Xd)
    assert reconstruction_error(data, W, H) == pytest.approx(expected, rel=1e-12)


def test_reconstruction_error_exact_and_zero():
    rng = np.random.default_rng(3)
    W, H = rng.random((20, 2)), rng.random((2, 7))
    assert reconstruction_error(W @ H, W, H) == pytest.approx(0.0, abs=1e-15)
    Z = np.zeros((20, 7))
    assert reconstruction_error(Z, np.zeros((20, 2)), H) == 0.0
    assert reconstruction_error(Z, W, H) == np.inf


def test_reconstruction_error_in_small_blocks():
    # X is 48 MB: no temporary anywhere near its size.
    rng = np.random.default_rng(4)
    X = rng.random((6000, 1000))
    W, H = rng.random((6000, 2)), rng.random((2, 1000))
    tracemalloc.start()
    try:
        reconstruction_error(X, W, H)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20


def test_reconstruction_error_errors():
    X = np.ones((5, 4))
    with pytest.raises(ValueError, match=r"must match X \(5, 4\).*\(5, 2\).*\(3, 4\)"):
        reconstruction_error(X, np.ones((5, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"X must be a 2-D array, got a 1-D"):
        reconstruction_error(np.ones(5), np.ones((5, 2)), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"X, W and H must be finite"):
        reconstruction_error(np.full((5, 4), np.nan), np.ones((5, 2)), np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"X must have a real numeric dtype, got dtype <U1"):
        reconstruction_error(np.full((5, 4), "a"), np.ones((5, 2)), np.ones((2, 4)))
