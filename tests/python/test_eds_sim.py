"""The EDS-like simulator the tests use (eds_sim.py): seeded, with
abundances on the simplex, pure pixels only when asked for, and counts whose
mean is abundances @ spectra."""

from __future__ import annotations

import numpy as np
import pytest

from eds_sim import simulate


@pytest.mark.parametrize("kind, k", [("particles", 3), ("particles", 2), ("boundary", 2)])
@pytest.mark.parametrize("pure", [True, False])
def test_simulation_truth(kind: str, k: int, pure: bool) -> None:
    s = simulate(kind, k=k, pure=pure, dose=200, seed=3)
    assert s.X.shape == (40, 40, 400) and s.X.dtype.kind == "i"
    assert s.spectra.shape == (k, 400) and s.abundances.shape == (40, 40, k)
    assert np.allclose(s.abundances.sum(axis=2), 1) and s.abundances.min() >= 0
    assert np.allclose(s.spectra.sum(axis=1), 200)
    peaks = s.abundances.reshape(-1, k).max(axis=0)
    assert np.all(peaks >= 0.99) == pure
    expected = s.abundances.reshape(-1, k) @ s.spectra
    assert abs(s.X.sum() / expected.sum() - 1) < 0.01
    assert np.array_equal(s.X, simulate(kind, k=k, pure=pure, dose=200, seed=3).X)
