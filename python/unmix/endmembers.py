"""Endmember extraction from pure pixels, and abundances for given endmembers.

Geometric methods assume that every endmember appears, nearly pure, in at
least one pixel; they return the indices of those pixels, so ``X[idx]`` are
the endmember spectra (a good start, or a baseline, for the NMF):

- :func:`spa`: successive projection algorithm (Gillis & Vavasis 2014).
- :func:`vca`: vertex component analysis (Nascimento & Dias 2005).

:func:`abundances_from_endmembers` solves the non-negative least squares
problem of every pixel for given endmember spectra.

Arrays follow scikit-learn's orientation: ``X`` is (n_pixels, n_channels),
endmembers ``E`` are (k, n_channels), abundances (n_pixels, k).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh

from ._nnls import nnls_abundances
from ._validation import block_step, check_int, matrix, rng_from

__all__ = ["abundances_from_endmembers", "spa", "vca"]

# VCA forms the n_channels x n_channels Gram matrix up to this size; above it,
# the leading eigenvectors come from ARPACK with products by X only.
_DENSE_GRAM_MAX = 1024


def _blocks(X: Any) -> Any:
    """Row blocks of X as dense float64 arrays of at most ~8 MB."""
    step = block_step(X.shape[1])
    for i in range(0, X.shape[0], step):
        B = X[i:i + step]
        yield i, np.asarray(B.toarray() if sp.issparse(B) else B, dtype=np.float64)


def _row(X: Any, i: int) -> np.ndarray:
    """Row i of X as a new float64 vector (never a view of X)."""
    row = X[i:i + 1]
    return np.array(row.toarray() if sp.issparse(row) else row, dtype=np.float64).ravel()


def _matvec(X: Any, v: np.ndarray) -> np.ndarray:
    """``X @ v`` in float64 without converting all of X (float32 X stays float32)."""
    dtype = X.dtype if X.dtype == np.float32 else np.float64
    return np.asarray(X @ v.astype(dtype, copy=False), dtype=np.float64)


def _rmatvec(X: Any, u: np.ndarray) -> np.ndarray:
    """``X.T @ u`` in float64, likewise."""
    dtype = X.dtype if X.dtype == np.float32 else np.float64
    return np.asarray(X.T @ u.astype(dtype, copy=False), dtype=np.float64)


def _row_sq_norms(X: Any) -> np.ndarray:
    out = np.empty(X.shape[0])
    for i, B in _blocks(X):
        out[i:i + B.shape[0]] = np.einsum("ij,ij->i", B, B)
    return out


def _row_abs_sums(X: Any) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(abs(X).sum(axis=1, dtype=np.float64)).ravel()
    out = np.empty(X.shape[0])
    for i, B in _blocks(X):
        out[i:i + B.shape[0]] = np.abs(B).sum(axis=1)
    return out


def _check_k(k: Any, X: Any) -> int:
    return check_int(k, "k", 1, min(X.shape))


def spa(X: Any, k: int, normalize: bool = False) -> np.ndarray:
    """Successive projection algorithm: the indices of ``k`` pure pixels.

    Picks the pixel of largest norm, projects all pixels onto the orthogonal
    complement of the picked spectra, and repeats (Gillis & Vavasis, *Fast
    and robust recursive algorithms for separable nonnegative matrix
    factorization*, IEEE TPAMI 36(4), 2014). The projection is kept
    implicitly: the picked spectra are orthonormalized (Gram–Schmidt) and the
    residual norms of all pixels are updated with one product ``X @ q`` per
    pick, so the cost is O(k · n_pixels · n_channels) and X is never copied.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_pixels, n_channels)
        Finite data (pixels as rows).
    k : int
        Number of pixels to pick, ``1 <= k <= min(n_pixels, n_channels)``.
    normalize : bool
        Run on the pixels scaled to unit ℓ1 norm (the preprocessing Gillis &
        Vavasis recommend for non-negative data whose abundances do not sum to
        one, e.g. under varying illumination). Without it, SPA favours bright
        pixels and can miss a dark endmember such as water. All-zero pixels
        stay zero.

    Returns
    -------
    ndarray of int, shape (k,)
        Distinct pixel indices in the order picked; ``X[idx]`` are the
        endmember estimates. Exact for noiseless separable data (every
        pixel a convex combination of the endmember pixels) with linearly
        independent endmembers.
    """
    X = matrix(X, "X", sparse=True)
    k = _check_k(k, X)
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    if normalize:
        l1 = _row_abs_sums(X)
        scale = np.divide(1.0, l1, out=np.zeros_like(l1), where=l1 > 0)
    else:
        scale = np.ones(X.shape[0])
    residual = _row_sq_norms(X) * scale**2
    Q = np.zeros((X.shape[1], 0))
    picked = np.empty(k, dtype=np.intp)
    for j in range(k):
        i = int(np.argmax(residual))
        picked[j] = i
        r = _row(X, i) * scale[i]
        for _ in range(2):  # Gram-Schmidt, twice for orthogonality to rounding
            r -= Q @ (Q.T @ r)
        norm = np.linalg.norm(r)
        residual[i] = -np.inf
        if norm > 0 and j + 1 < k:
            q = r / norm
            residual -= (_matvec(X, q) * scale) ** 2
            Q = np.column_stack([Q, q])
    return picked


def vca(X: Any, k: int, random_state: Any = None, snr_db: Optional[float] = None) -> np.ndarray:
    """Vertex component analysis: the indices of ``k`` pure pixels.

    Nascimento & Dias, *Vertex component analysis: a fast algorithm to unmix
    hyperspectral data*, IEEE TGRS 43(4), 2005. The data is projected on a
    k-dimensional subspace found by SVD — the (k-1)-dimensional principal
    subspace of the centred data, lifted by a constant, when the SNR is low;
    the k leading singular vectors of the raw data, followed by a projective
    scaling, when it is high — and then ``k`` times the pixel with the
    largest projection on a random direction orthogonal to the pixels
    picked so far is picked.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_pixels, n_channels)
        Finite data (pixels as rows).
    k : int
        Number of pixels to pick, ``1 <= k <= min(n_pixels, n_channels)``.
    random_state : int, numpy Generator/RandomState or None
        Seed of the random directions.
    snr_db : float, optional
        The SNR of the data in dB; estimated from the data when None (as in
        the paper). It selects the projection: the low-SNR one below
        ``15 + 10 log10(k)`` dB.

    Returns
    -------
    ndarray of int, shape (k,)
        Pixel indices in the order picked; ``X[idx]`` are the endmember
        estimates.
    """
    X = matrix(X, "X", sparse=True)
    k = _check_k(k, X)
    rng = rng_from(random_state)
    if snr_db is not None and (isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real)
                               or np.isnan(snr_db)):
        raise TypeError(f"snr_db must be a real number (dB) or None, got {snr_db!r}")
    n, p = X.shape
    mean = np.asarray(X.sum(axis=0, dtype=np.float64)).ravel() / n

    gram = _gram(X) if _dense_gram(X.shape[1], k) else None  # shared by both subspaces
    U_c = _leading_subspace(X, mean, k, rng, gram)  # principal subspace of the centred data
    Z = np.column_stack([_matvec(X, U_c[:, j]) for j in range(k)]) - mean @ U_c
    if snr_db is None:
        power_y = float(_row_sq_norms(X).sum()) / n
        power_x = float(np.sum(Z * Z)) / n + float(mean @ mean)
        signal = power_x - k / p * power_y
        noise = power_y - power_x
        if noise <= 0:
            snr_db = np.inf
        elif signal <= 0:
            snr_db = -np.inf
        else:
            snr_db = 10.0 * np.log10(signal / noise)
    threshold = 15.0 + 10.0 * np.log10(k)

    if snr_db < threshold:
        Y = Z[:, :k - 1]
        lift = np.sqrt(np.max(np.einsum("ij,ij->i", Y, Y))) if k > 1 else 1.0
        Y = np.column_stack([Y, np.full(n, lift)])
    else:
        U = _leading_subspace(X, None, k, rng, gram)
        Y = np.column_stack([_matvec(X, U[:, j]) for j in range(k)])
        denom = Y @ Y.mean(axis=0)
        Y = np.divide(Y, denom[:, None], out=np.zeros_like(Y), where=denom[:, None] > 0)

    A = np.zeros((k, k))
    A[-1, 0] = 1.0
    picked = np.empty(k, dtype=np.intp)
    for i in range(k):
        w = rng.standard_normal(k)
        f = w - A @ np.linalg.lstsq(A, w, rcond=None)[0]
        f /= np.linalg.norm(f)
        v = np.abs(Y @ f)
        v[picked[:i]] = -1.0  # never the same pixel twice
        j = int(np.argmax(v))
        picked[i] = j
        A[:, i] = Y[j]
    return picked


def _dense_gram(p: int, k: int) -> bool:
    return p <= _DENSE_GRAM_MAX or k >= p - 1


def _gram(X: Any) -> np.ndarray:
    """Xᵀ X in float64, accumulated over row blocks."""
    G = np.zeros((X.shape[1], X.shape[1]))
    for _, B in _blocks(X):
        G += B.T @ B
    return G


def _leading_subspace(X: Any, mean: Optional[np.ndarray], k: int,
                      rng: np.random.Generator, gram: Optional[np.ndarray]) -> np.ndarray:
    """The k leading eigenvectors (n_channels, k) of ``(X - 1 mean)ᵀ (X - 1 mean)``
    (of ``Xᵀ X`` when mean is None), from ``gram`` = Xᵀ X when given, else
    by ARPACK with products by X only; largest first, signs fixed so that the
    largest entry of each is positive."""
    n, p = X.shape
    if gram is not None:
        G = gram - n * np.outer(mean, mean) if mean is not None else gram
        _, V = eigh(G, subset_by_index=(p - k, p - 1))
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        def apply(v: np.ndarray) -> np.ndarray:
            v = np.ravel(v)
            out = _rmatvec(X, _matvec(X, v))
            if mean is not None:
                out -= n * mean * (mean @ v)
            return out

        op = LinearOperator((p, p), matvec=apply, dtype=np.float64)
        _, V = eigsh(op, k=k, which="LA", v0=rng.standard_normal(p))
    V = V[:, ::-1]
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(k)])
    return V * np.where(signs == 0, 1.0, signs)


def abundances_from_endmembers(X: Any, E: Any) -> np.ndarray:
    """Non-negative least-squares abundances of every pixel for endmembers E.

    Solves ``min_a ||x - a E||²`` subject to ``a >= 0`` exactly for every row
    ``x`` of X with the core's block principal pivoting (one BPP half-step of
    :func:`unmix.nmf` with E held fixed).

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_pixels, n_channels)
        Finite, non-negative data.
    E : array-like of shape (k, n_channels)
        Non-negative endmember spectra.

    Returns
    -------
    ndarray of shape (n_pixels, k)
        float32 for float32 X, else float64. No sum-to-one constraint.
    """
    X = matrix(X, "X", sparse=True)
    E = matrix(E, "E", nonneg=True)
    if E.shape[1] != X.shape[1]:
        raise ValueError(f"E must have one column per channel of X ({X.shape[1]}), got shape "
                         f"{E.shape}")
    return nnls_abundances(X, E)
