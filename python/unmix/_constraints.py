"""The constraint options of a fit in the core's names, shared by
:func:`unmix.nmf`, :func:`unmix.distributed.nmf` and the NNLS abundances
(:mod:`unmix._nnls`)."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

from ._validation import check_nonneg


def simplex_sums(sum_to_one: Any, n_samples: int) -> Optional[np.ndarray]:
    """What ``sum_to_one`` asks for: None (no constraint), an empty array
    (every row of W sums to one) or the sum of every row (a scaled simplex,
    each pixel's abundances summing to its own intensity)."""
    if isinstance(sum_to_one, (bool, np.bool_)):
        return np.empty(0) if sum_to_one else None
    if isinstance(sum_to_one, (str, bytes, numbers.Number)) or sum_to_one is None:
        raise TypeError("sum_to_one must be True, False or an array of one sum per sample "
                        f"(n_samples = {n_samples}), got {sum_to_one!r}")
    sums = np.asarray(sum_to_one, dtype=np.float64)
    if sums.shape != (n_samples,):
        raise ValueError(f"sum_to_one must have shape ({n_samples},) (one sum per sample) when it "
                         f"is an array, got shape {sums.shape}")
    if not np.isfinite(sums).all() or (sums.size and sums.min() < 0):
        raise ValueError("sum_to_one must hold finite sums >= 0 when it is an array")
    return np.ascontiguousarray(sums)


def core_constraints(rows: str, cols: str, shape: tuple[int, int], k: int, *, sum_to_one: Any,
                 graph_W: Any, graph_H: Any, smooth_W: float, smooth_H: float,
                 bounds_W: Any, bounds_H: Any, fixed_H: Any, minvol_H: float) -> dict[str, Any]:
    """The constraint options in the core's names: the W (samples) side is
    the core factor ``rows``, the H (features) side ``cols``."""
    from .graphs import check_graph

    # Errors from the core name the factors as the caller knows them.
    out: dict[str, Any] = {"name_" + rows: "W", "name_" + cols: "H"}
    sums = simplex_sums(sum_to_one, shape[0])
    if sums is not None:
        out["simplex_" + rows] = True
        if sums.size:
            out["simplex_sums_" + rows] = sums
    for side, core, graph, smooth, n in (("W", rows, graph_W, smooth_W, shape[0]),
                                         ("H", cols, graph_H, smooth_H, shape[1])):
        smooth = check_nonneg(smooth, f"smooth_{side}")
        if smooth > 0:
            if graph is None:
                raise ValueError(f"smooth_{side} > 0 needs graph_{side} (see unmix.graphs), "
                                 "got None")
            S = check_graph(graph, f"graph_{side}", n)
            out["graph_" + core] = (S.indptr, S.indices, S.data, n)
            out["smooth_" + core] = smooth
    for side, core, bounds in (("W", rows, bounds_W), ("H", cols, bounds_H)):
        if bounds is None:
            continue
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise TypeError(f"bounds_{side} must be a pair (lo, hi), got {bounds!r}")
        for which, value in zip(("lower", "upper"), bounds):
            v = np.asarray(value, dtype=np.float64)
            if v.ndim == 0:
                out[f"{which}_{core}"] = float(v)
            elif v.shape == (k,):
                out[f"{which}_cols_{core}"] = np.ascontiguousarray(v)
            else:
                raise ValueError(f"bounds_{side} entries must be scalars or arrays of length "
                                 f"n_components = {k}, got shape {v.shape}")
    minvol_H = check_nonneg(minvol_H, "minvol_H")
    if minvol_H > 0:
        out["minvol_" + cols] = minvol_H
    if fixed_H is not None:  # checked by _known_spectra
        out["fixed_cols_" + cols] = list(range(fixed_H.shape[0]))
        out["fixed_values_" + cols] = np.asfortranarray(fixed_H.T)
    return out
