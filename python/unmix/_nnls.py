"""Abundances on known spectra: the core's half-step with H held, called
directly, so that the endmember code (:mod:`unmix.endmembers`) and the
fitting code (:mod:`unmix._nmf`, whose pixel starts need these abundances)
both import it without importing each other."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

from . import _core
from ._constraints import core_constraints
from ._validation import as_core_matrix, check_factor, check_nonneg, seed_from


def nnls_abundances(X: Any, H: np.ndarray, l1_W: float = 0.0, l2_W: float = 0.0,
                    sum_to_one: bool = False, bounds_W: Optional[tuple[Any, Any]] = None
                    ) -> np.ndarray:
    """For each row x of X, the minimizer over w >= 0 of
    ``½||x - w H||² + l1_W ||w||₁ + ½ l2_W ||w||²`` (on the simplex with
    ``sum_to_one``, within ``bounds_W``): the core's half-step with H held
    fixed — exact in one step with BPP, iterated to convergence with HALS
    when there are bounds."""
    M = as_core_matrix(X)
    H = np.asarray(H, dtype=M.dtype)
    k = H.shape[0] if H.ndim == 2 else 0
    exact = bounds_W is None
    W0 = np.zeros((M.shape[0], k), dtype=M.dtype)
    if not exact:
        W0 += np.asarray(bounds_W[0], dtype=M.dtype)
    rescaled = _rescaled(X, M, H, W0, l1_W, l2_W, sum_to_one, bounds_W)
    if rescaled is not None:
        return rescaled
    n_samples, n_features = M.shape
    W0 = check_factor(W0, "W", (n_samples, k), M.dtype)
    H = check_factor(H, "H", (k, n_features), M.dtype)
    # The core's W is H.T and its H is W when it sees M = X.T.
    rows, cols = ("H", "W") if M.transposed else ("W", "H")
    options: dict[str, Any] = {
        "solver": "bpp" if exact else "hals", "init": "custom", "loss": "frobenius",
        "max_iter": 1 if exact else 1000, "tol": 0.0 if exact else 1e-10,
        "seed": seed_from(0), "transposed": M.transposed, "data_name": "X",
        "extrapolate": False,
        "l1_" + rows: check_nonneg(l1_W, "l1_W"), "l2_" + rows: check_nonneg(l2_W, "l2_W"),
        "l1_" + cols: 0.0, "l2_" + cols: 0.0, "fixed_" + rows: False, "fixed_" + cols: True,
    }
    options.update(core_constraints(
        rows, cols, (n_samples, n_features), k, sum_to_one=sum_to_one, graph_W=None,
        graph_H=None, smooth_W=0.0, smooth_H=0.0, bounds_W=bounds_W, bounds_H=None,
        fixed_H=None, minvol_H=0.0))
    sample_f, feature_f = np.asfortranarray(W0), np.asfortranarray(H.T)
    W_core, H_core = (feature_f, sample_f) if M.transposed else (sample_f, feature_f)
    if M.dense is not None:
        out = _core.nmf_dense(M.dense, k, options, W_core, H_core, None, None)
    else:
        indptr, indices, data = M.sparse
        out = _core.nmf_sparse(indptr, indices, data, M.core_shape[0], M.core_shape[1], k,
                               options, W_core, H_core, None, None)
    return out["H"] if M.transposed else out["W"]


def _rescaled(X: Any, M: Any, H: np.ndarray, W0: np.ndarray, l1_W: float, l2_W: float,
              sum_to_one: bool, bounds_W: Any) -> Optional[np.ndarray]:
    """The abundances of X times a power of two, brought back to X's
    units, when X's largest value lies outside the range the core computes
    with and nothing depends on X's scale (as :func:`unmix.nmf` does):
    X' = 2^-e X and H' = 2^-e_H H give W = 2^(e - e_H) W', exactly. None
    when the call goes ahead as it is."""
    values = M.dense if M.dense is not None else M.sparse[2]
    top = float(values.max()) if values.size else 0.0
    limit = _core.data_limit(M.dtype.name)
    if not (top > limit or 0 < top < 1 / limit) or not np.isfinite(top) or values.min() < 0:
        return None
    if l1_W != 0 or l2_W != 0 or bounds_W is not None:
        return None
    e = math.frexp(top)[1]
    # Rows that sum to one keep W's scale: H takes all of it.
    e_W = 0 if (not isinstance(sum_to_one, (bool, np.bool_)) or sum_to_one) else e // 2
    e_H = e - e_W
    W = nnls_abundances(scaled_data(X, M, e), np.ldexp(H, -e_H), sum_to_one=sum_to_one)
    return np.ldexp(W, e_W)


def scaled_data(X: Any, M: Any, e: int) -> Any:
    """``X * 2**-e`` (exact), dense from its validated matrix ``M``, sparse
    from ``X`` itself."""
    if sp.issparse(X):
        X = X.astype(M.dtype)
        X.data = np.ldexp(X.data, -e)
        return X
    return np.ldexp(M.dense.T if M.transposed else M.dense, -e)
