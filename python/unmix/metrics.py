"""Scores of an unmixing against ground truth, as the hyperspectral
literature reports them.

Endmembers are scored by the spectral angle (SAD) between each true spectrum
and the estimated spectrum matched to it; the matching minimizes the sum of
the angles (Hungarian algorithm), so neither the order nor the scale of the
estimated components matters. Abundances are scored by their root mean square
error after the same matching and a sum-to-one normalization of every pixel
(optionally after undoing each component's scale against the true spectra,
``endmembers=(E_true, H_est)``, the fair score for an unconstrained NMF).

All functions take scikit-learn's orientation: spectra and endmembers are
rows (n_components, n_channels), abundances are (n_pixels, n_components).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Union

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from ._validation import block_step, matrix

__all__ = [
    "SpectralAngles",
    "abundance_rmse",
    "angle_matrix",
    "mean_sad",
    "reconstruction_error",
    "spectral_angles",
]


class SpectralAngles(NamedTuple):
    """The result of :func:`spectral_angles`.

    ``angles[i]`` is the angle in degrees between true component ``i`` and
    estimated component ``order[i]``. When there are fewer estimated than
    true components, the unmatched true components have ``order[i] == -1``
    and ``angles[i]`` NaN. ``mean`` is the mean over the matched components.
    """

    angles: np.ndarray
    order: np.ndarray
    mean: float


def angle_matrix(E_true: Any, E_est: Any) -> np.ndarray:
    """Spectral angles in degrees between every row of ``E_true`` and every
    row of ``E_est``: shape (k_true, k_est).

    The angle with an all-zero spectrum, which has no direction, is taken
    as 90 degrees.
    """
    T = matrix(E_true, "E_true").astype(np.float64, copy=False)
    E = matrix(E_est, "E_est").astype(np.float64, copy=False)
    if T.shape[1] != E.shape[1]:
        raise ValueError(
            f"E_true and E_est must have the same number of channels (columns), got "
            f"E_true with shape {T.shape} and E_est with shape {E.shape}"
        )
    cos = _unit_rows(T) @ _unit_rows(E).T
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _unit_rows(F: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm; zero rows stay zero (cosine 0, angle 90°)."""
    # Scale by the largest entry first so the norm neither under- nor overflows.
    peak = np.abs(F).max(axis=1, keepdims=True)
    G = np.divide(F, peak, out=np.zeros_like(F), where=peak > 0)
    norm = np.linalg.norm(G, axis=1, keepdims=True)
    return np.divide(G, norm, out=np.zeros_like(G), where=norm > 0)


def spectral_angles(E_true: Any, E_est: Any) -> SpectralAngles:
    """Per-component spectral angles (degrees) after the optimal matching.

    Parameters
    ----------
    E_true : array-like of shape (k_true, n_channels)
        Reference spectra, one per row.
    E_est : array-like of shape (k_est, n_channels)
        Estimated spectra, one per row, in any order and at any scale.

    Returns
    -------
    SpectralAngles
        ``(angles, order, mean)``: the matching pairs true component ``i``
        with estimated component ``order[i]`` and minimizes the sum of the
        angles over ``min(k_true, k_est)`` pairs (Hungarian algorithm). With
        ``k_est > k_true`` the extra estimates are ignored; with
        ``k_est < k_true`` the unmatched true components get ``order == -1``
        and a NaN angle, and ``mean`` averages the matched ones.

    Examples
    --------
    >>> import numpy as np
    >>> E = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    >>> spectral_angles(E, 3.0 * E[::-1]).order
    array([1, 0])
    """
    D = angle_matrix(E_true, E_est)
    rows, cols = linear_sum_assignment(D)
    k_true = D.shape[0]
    order = np.full(k_true, -1, dtype=np.intp)
    order[rows] = cols
    angles = np.full(k_true, np.nan)
    angles[rows] = D[rows, cols]
    return SpectralAngles(angles, order, float(D[rows, cols].mean()))


def mean_sad(E_true: Any, E_est: Any) -> float:
    """Mean spectral angle distance in degrees after the optimal matching:
    ``spectral_angles(E_true, E_est).mean``."""
    return spectral_angles(E_true, E_est).mean


def abundance_rmse(
    A_true: Any,
    A_est: Any,
    order: Union[None, SpectralAngles, Any] = None,
    sum_to_one: bool = True,
    *,
    endmembers: Optional[tuple[Any, Any]] = None,
) -> float:
    """Root mean square error of abundances over all pixels and components.

    Parameters
    ----------
    A_true : array-like of shape (n_pixels, k_true)
        Reference abundances.
    A_est : array-like of shape (n_pixels, k_est)
        Estimated abundances (e.g. the ``W`` of :func:`unmix.nmf`).
    order : SpectralAngles or array-like of int, optional
        The estimated column matched to each true component, as
        :func:`spectral_angles` returns it (the result itself or its
        ``order``); ``-1`` marks a true component with no match, scored
        against an estimated abundance of zero. Default: the columns as they
        are, which needs ``k_est == k_true``.
    sum_to_one : bool
        Normalize every row of ``A_est`` (over all its ``k_est`` columns) to
        sum to one before the comparison, which removes the scale ambiguity
        of the factorization. Rows that sum to zero or less stay as they are.
    endmembers : (E_true, H_est), optional
        The true spectra (k_true, n_channels) and the estimated ones
        (k_est, n_channels). Each matched estimated column ``j = order[i]``
        is first multiplied by the least-squares scale of ``H_est[j]`` on
        ``E_true[i]``, ``<H_est[j], E_true[i]> / <E_true[i], E_true[i]>``:
        this undoes the per-component scale ambiguity ``W D, D⁻¹ H`` of an
        unconstrained factorization, which the row normalization alone does
        not (it penalizes a plain NMF whose components came out at different
        scales even when its maps are right). Results that already sum to
        one with spectra at the data's scale barely change.

    Returns
    -------
    float
        ``sqrt(mean((A_true - A_est[:, order]) ** 2))``.
    """
    T = matrix(A_true, "A_true").astype(np.float64, copy=False)
    A = matrix(A_est, "A_est").astype(np.float64, copy=False)
    if T.shape[0] != A.shape[0]:
        raise ValueError(
            f"A_true and A_est must have the same number of pixels (rows), got A_true with "
            f"shape {T.shape} and A_est with shape {A.shape}"
        )
    if not isinstance(sum_to_one, (bool, np.bool_)):
        raise TypeError(f"sum_to_one must be True or False, got {sum_to_one!r}")
    k_true, k_est = T.shape[1], A.shape[1]
    idx = _check_order(order, k_true, k_est)
    if endmembers is not None:
        A = A * _endmember_scales(endmembers, idx, k_true, k_est)
    if sum_to_one:
        s = A.sum(axis=1, keepdims=True)
        A = np.divide(A, s, out=A.copy(), where=s > 0)
    matched = idx >= 0
    err = np.sum((T[:, matched] - A[:, idx[matched]]) ** 2) + np.sum(T[:, ~matched] ** 2)
    return float(np.sqrt(err / T.size))


def _endmember_scales(endmembers: Any, idx: np.ndarray, k_true: int, k_est: int) -> np.ndarray:
    """Per-column factors of A_est: the least-squares scale of each matched
    estimated spectrum on its true spectrum (1 for unmatched columns)."""
    if not isinstance(endmembers, (tuple, list)) or len(endmembers) != 2:
        raise TypeError(f"endmembers must be a pair (E_true, H_est), got {type(endmembers).__name__}")
    E = matrix(endmembers[0], "E_true").astype(np.float64, copy=False)
    H = matrix(endmembers[1], "H_est").astype(np.float64, copy=False)
    if E.shape[0] != k_true or H.shape[0] != k_est or E.shape[1] != H.shape[1]:
        raise ValueError(
            f"endmembers must be (E_true, H_est) with shapes ({k_true}, n_channels) and "
            f"({k_est}, n_channels), got {E.shape} and {H.shape}")
    scales = np.ones(k_est)
    for i, j in enumerate(idx):
        if j >= 0:
            norm2 = float(E[i] @ E[i])
            if norm2 > 0:
                scales[j] = float(H[j] @ E[i]) / norm2
    return scales


def _check_order(order: Any, k_true: int, k_est: int) -> np.ndarray:
    if order is None:
        if k_true != k_est:
            raise ValueError(
                "order is needed when A_est has a different number of components than "
                f"A_true: got k_true={k_true} and k_est={k_est} (pass the result of "
                "spectral_angles)"
            )
        return np.arange(k_true)
    if isinstance(order, SpectralAngles):
        order = order.order
    idx = np.asarray(order)
    if idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise TypeError(f"order must be a 1-D array of integers (or a SpectralAngles), got "
                        f"{idx.ndim}-D array of dtype {idx.dtype}")
    if idx.shape[0] != k_true:
        raise ValueError(f"order must have one entry per true component ({k_true}), got "
                         f"{idx.shape[0]}")
    if idx.size and (idx.min() < -1 or idx.max() >= k_est):
        raise ValueError(f"order entries must be -1 or in [0, {k_est}) (the columns of "
                         f"A_est), got {idx.tolist()}")
    used = idx[idx >= 0]
    if np.unique(used).size != used.size:
        raise ValueError(f"order must not repeat a column of A_est, got {idx.tolist()}")
    return idx.astype(np.intp)


def reconstruction_error(X: Any, W: Any, H: Any) -> float:
    """Relative Frobenius error ``||X - W H||_F / ||X||_F``.

    Computed in float64, in blocks of rows, so no temporary of X's size is
    made (each is at most about 8 MB). ``X`` may be dense or scipy.sparse.
    Returns 0 when X and W H are both zero and infinity when only X is.
    """
    if sp.issparse(X):
        Xm = sp.csr_array(X)
        if Xm.ndim != 2:
            raise ValueError(f"X must be 2-D, got {Xm.ndim}-D")
    else:
        Xm = np.asarray(X)
        if Xm.ndim != 2:
            raise ValueError(f"X must be a 2-D array, got a {Xm.ndim}-D array with shape "
                             f"{Xm.shape}")
        if Xm.dtype.kind not in "biuf":
            raise TypeError(f"X must have a real numeric dtype, got dtype {Xm.dtype}")
    Wm = matrix(W, "W").astype(np.float64, copy=False)
    Hm = matrix(H, "H").astype(np.float64, copy=False)
    n, p = Xm.shape
    if Wm.shape[0] != n or Hm.shape[1] != p or Wm.shape[1] != Hm.shape[0]:
        raise ValueError(
            f"W (n_pixels, k) and H (k, n_channels) must match X {Xm.shape}: got W with "
            f"shape {Wm.shape} and H with shape {Hm.shape}"
        )
    step = block_step(p)
    num = den = 0.0
    for i in range(0, n, step):
        block = Xm[i:i + step]
        B = block.toarray() if sp.issparse(block) else block
        B = np.asarray(B, dtype=np.float64)
        R = Wm[i:i + step] @ Hm
        den += float(np.einsum("ij,ij->", B, B))
        R -= B
        num += float(np.einsum("ij,ij->", R, R))
    if not (np.isfinite(num) and np.isfinite(den)):
        raise ValueError("X, W and H must be finite, got NaN or infinity")
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den))
