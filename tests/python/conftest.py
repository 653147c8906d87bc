"""Shared data and helpers for the tests of :func:`unmix.nmf`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: The reference data of this repository's tests: $UNMIX_DATA, else
#: ../shared/data beside the project when it exists (as tools/run-tests
#: exports it); tests that need it skip when neither is there.
_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
if not os.environ.get("UNMIX_DATA") and _SHARED.is_dir():
    os.environ["UNMIX_DATA"] = str(_SHARED)

SOLVERS = ("bpp", "hals", "mu")


def penalized_objective(X, W, H, l1_W=0.0, l1_H=0.0, l2_W=0.0, l2_H=0.0):
    """The objective unmix minimizes, computed directly in float64 numpy."""
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    return (
        0.5 * np.linalg.norm(X - W @ H) ** 2
        + l1_W * W.sum()
        + l1_H * H.sum()
        + 0.5 * l2_W * np.sum(W**2)
        + 0.5 * l2_H * np.sum(H**2)
    )


def sparse_factor(rng, shape, zero_fraction=0.4):
    """Uniform random non-negative factor with a fraction of exact zeros."""
    F = rng.random(shape)
    F[rng.random(shape) < zero_fraction] = 0.0
    return F


def make_noisy(seed=0, shape=(70, 40), rank=50, zero_fraction=0.2):
    """Non-negative data that is far from low rank (the fit never becomes exact),
    with some exact zeros so the sparse tests exercise a real sparsity pattern."""
    rng = np.random.default_rng(seed)
    n, p = shape
    X = rng.random((n, rank)) @ rng.random((rank, p)) / rank + 0.1 * rng.random(shape)
    X[rng.random(shape) < zero_fraction] = 0.0
    return X


@pytest.fixture
def low_rank():
    """X = W @ H exactly, with sparse-ish non-negative factors (unique NMF)."""
    rng = np.random.default_rng(1)
    W = sparse_factor(rng, (80, 5))
    H = sparse_factor(rng, (5, 60))
    return W @ H, W, H
