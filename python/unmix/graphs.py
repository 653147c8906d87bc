"""Similarity graphs for the smoothness penalty ``½ γ tr(Fᵀ L F)``.

A graph is a sparse symmetric non-negative ``S`` (n × n) between the rows
of a factor — pixels for the abundances W, channels for the endmembers' H.
Its Laplacian ``L = D − S`` makes the penalty ``¼ γ Σ_ij S_ij ||F_i − F_j||²``:
rows that are similar are pulled together.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ._validation import check_int, matrix

__all__ = ["check_graph", "grid", "knn"]


def grid(shape: Sequence[int], connectivity: int = 4) -> sp.csr_matrix:
    """The neighbour graph of a 2-D or 3-D pixel grid, pixels in C order
    (the order of ``image.reshape(-1, n_channels)``).

    Parameters
    ----------
    shape : (ny, nx) or (nz, ny, nx)
    connectivity : int
        2-D: 4 (edges) or 8 (edges and corners). 3-D: 6 (faces), 18 (and
        edges) or 26 (and corners). Weights are 1.
    """
    shape = tuple(check_int(s, "shape[i]", 1) for s in shape)
    allowed = {2: (4, 8), 3: (6, 18, 26)}.get(len(shape))
    if allowed is None:
        raise ValueError(f"shape must have 2 or 3 axes, got {shape}")
    if connectivity not in allowed:
        raise ValueError(f"connectivity must be one of {allowed} for a {len(shape)}-D grid, "
                         f"got {connectivity!r}")
    # Neighbour offsets: up to 1 step per axis, with as many non-zero steps
    # as the connectivity allows (1: edges/faces, 2: +diagonals, 3: +corners).
    max_steps = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    offsets = [o for o in np.ndindex(*(3,) * len(shape))
               if 0 < sum(abs(v - 1) for v in o) <= max_steps]
    index = np.arange(int(np.prod(shape))).reshape(shape)
    rows, cols = [], []
    for o in offsets:
        step = tuple(v - 1 for v in o)
        src = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(step, shape))
        dst = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(step, shape))
        rows.append(index[src].ravel())
        cols.append(index[dst].ravel())
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = index.size
    return sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, n))


def knn(X: Any, n_neighbors: int = 10, weights: str = "heat",
        sigma: "float | None" = None) -> sp.csr_matrix:
    """The k-nearest-neighbour graph of the rows of X (e.g. pixel spectra),
    made symmetric (i ~ j when either is among the other's neighbours).

    ``weights="heat"`` gives ``exp(-d² / σ²)`` with σ the median neighbour
    distance unless given; ``"binary"`` gives 1.
    """
    from scipy.spatial import cKDTree

    X = matrix(X, "X")
    n = X.shape[0]
    k = check_int(n_neighbors, "n_neighbors", 1, max(1, n - 1))
    if weights not in ("heat", "binary"):
        raise ValueError(f"weights must be 'heat' or 'binary', got {weights!r}")
    dist, idx = cKDTree(X).query(X, k=k + 1)  # the first neighbour is the point itself
    dist, idx = dist[:, 1:], idx[:, 1:]
    if weights == "heat":
        s = float(np.median(dist)) if sigma is None else float(sigma)
        if not s > 0:
            raise ValueError(f"sigma must be > 0, got {s}")
        w = np.exp(-(dist / s) ** 2)
    else:
        w = np.ones_like(dist)
    S = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    return S.maximum(S.T).tocsr()


def check_graph(S: Any, name: str, n: int) -> sp.csc_matrix:
    """A user similarity: square n × n, symmetric, non-negative, finite."""
    if not sp.issparse(S):
        raise TypeError(f"{name} must be a scipy.sparse matrix, got {type(S).__name__}")
    if S.shape != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}) (one row per row of the factor), "
                         f"got {S.shape}")
    S = sp.csc_matrix(S, dtype=np.float64)
    S.sum_duplicates()
    if S.nnz and (not np.isfinite(S.data).all() or S.data.min() < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    asym = abs(S - S.T)
    if asym.nnz and asym.max() > 1e-12 * max(abs(S).max(), 1e-300):
        raise ValueError(f"{name} must be symmetric, got |S - S.T| up to {asym.max():.3g}")
    return S
