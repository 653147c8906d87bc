"""The function interface: :func:`nmf` and its result."""

from __future__ import annotations

import inspect
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np
import scipy.sparse as sp

from . import _core
from ._constraints import core_constraints as _constraints, simplex_sums
from .endmembers import abundances_from_endmembers, spa, vca
from ._files import remove_stale_temporaries
from ._nnls import nnls_abundances, scaled_data  # noqa: F401 (unmix._nmf.nnls_abundances, as before)
from ._validation import (
    INITS,
    LOSSES,
    PIXEL_INITS,
    SOLVERS,
    as_core_matrix,
    check_bool,
    check_choice,
    check_factor,
    check_int,
    check_nonneg,
    seed_from,
)


class IterationInfo(NamedTuple):
    """What a ``callback`` receives after every iteration."""

    iteration: int
    objective: float
    rel_error: float
    elapsed: float


@dataclass(frozen=True)
class NMFResult:
    """The factors and the history of a fit, in scikit-learn's orientation.

    ``X ≈ W @ H`` with ``W`` (n_samples, n_components) — the abundances of a
    spectral image, one row per pixel — and ``H`` (n_components, n_features) —
    the endmember spectra.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    objective: np.ndarray  # penalized objective; [0] is the starting point
    rel_error: np.ndarray  # ||X - W H||_F / ||X||_F, same indexing
    converged: bool
    stop_reason: str  # "tol", "max_iter", "time_limit" or "callback"
    data_norm: float  # ||X||_F
    solver: str = "bpp"  # the solver used
    timings: dict[str, float] = field(default_factory=dict)
    # What the fit did on its own, as (iteration, description): a component
    # that died and was re-seeded, or that the penalties removed.
    events: list[tuple[int, str]] = field(default_factory=list)
    # The weights given as "auto", as the numbers used, and the
    # "noise_variance" they were computed from; empty when none was "auto".
    weights: dict[str, float] = field(default_factory=dict)


def nmf(
    X: Any,
    n_components: int,
    *,
    solver: Optional[str] = None,
    init: Optional[str] = None,
    loss: str = "frobenius",
    max_iter: int = 500,
    tol: float = 1e-5,
    random_state: Any = None,
    l1_W: float = 0.0,
    l1_H: float = 0.0,
    l2_W: float = 0.0,
    l2_H: float = 0.0,
    W: Optional[np.ndarray] = None,
    H: Optional[np.ndarray] = None,
    callback: Optional[Callable[[IterationInfo], Optional[bool]]] = None,
    verbose: bool = False,
    time_limit: Optional[float] = None,
    extrapolate: bool = False,
    sum_to_one: Any = False,
    graph_W: Any = None,
    graph_H: Any = None,
    smooth_W: Union[float, str] = 0.0,
    smooth_H: float = 0.0,
    bounds_W: Optional[tuple[Any, Any]] = None,
    bounds_H: Optional[tuple[Any, Any]] = None,
    fixed_H: Optional[np.ndarray] = None,
    minvol_H: Union[float, str] = 0.0,
    checkpoint: Union[str, os.PathLike, None] = None,
    checkpoint_every: Optional[int] = None,
    checkpoint_interval: Optional[float] = None,
    resume: Union[bool, str, os.PathLike] = False,
    n_threads: Optional[int] = None,
) -> NMFResult:
    r"""Non-negative matrix factorization ``X ≈ W @ H`` with ℓ1/ℓ2 penalties.

    Minimizes

    .. math::

        \tfrac12 \|X - WH\|_F^2
        + \lambda^{(1)}_W \|W\|_1 + \tfrac12 \lambda^{(2)}_W \|W\|_F^2
        + \lambda^{(1)}_H \|H\|_1 + \tfrac12 \lambda^{(2)}_H \|H\|_F^2
        \quad\text{subject to } W \ge 0,\ H \ge 0,

    where :math:`\|\cdot\|_1` is the entrywise ℓ1 norm (the sum of the
    entries), not the squared row ℓ1 some libraries use. The orientation is
    scikit-learn's: ``W`` (n_samples, n_components) are the abundances of a
    spectral image, ``H`` (n_components, n_features) the endmember spectra.
    In the NMF literature and in the C++ core, the roles are often swapped.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_samples, n_features)
        Non-negative, finite data. float64 and float32 arrays are used as
        they are, without a copy, in C or Fortran order; CSR and CSC matrices
        likewise. bool, integer and float16 data are converted to float64
        once (a copy); so are other sparse formats (to CSR), strided views
        (to C order) and sparse matrices with duplicate entries. Data whose
        largest value lies outside the range the core computes with (5e-150
        to 2e149 in float64, 3.6e-15 to 2.8e14 in float32) is fitted as X
        times a power of two (a copy), exactly, and the factors and the
        objective scaled back; with a penalty or a bound, which are in X's
        units, it is refused with the factor to multiply X by.
    n_components : int
        Number of components k >= 1. The NNDSVD initializations need
        ``k <= min(n_samples, n_features)``; above that (X's largest
        possible rank) the fit warns that the data cannot determine the
        extra components.
    solver : {"bpp", "hals", "mu"}, optional
        ``"bpp"``: alternating NNLS solved exactly by block principal
        pivoting (Kim & Park 2011). ``"hals"``: hierarchical ALS, one column at
        a time. ``"mu"``: Lee–Seung multiplicative updates. Default: ``"bpp"``,
        or ``"mu"`` for ``loss="kl"``.
    loss : {"frobenius", "kl"}
        ``"kl"``: the generalized Kullback–Leibler divergence
        ``Σ X log(X / WH) − X + WH``, the maximum-likelihood loss for Poisson
        counts (ToF-SIMS, EDS), with ``solver="mu"``; sparse data is touched
        only at its stored entries. Works with ℓ1, ℓ2 and the graph term.
    init : {"nndsvda", "nndsvd", "nndsvdar", "random", "spa", "vca", "custom"}, optional
        Default: ``"custom"`` when ``W`` and ``H`` are given, else
        ``"nndsvda"`` when ``n_components <= min(X.shape)``, else ``"random"``.
        ``"nndsvd"`` leaves zeros that ``"mu"`` can never leave; prefer
        ``"nndsvda"`` with MU. ``"spa"`` (successive projection) and ``"vca"``
        (vertex component analysis) pick the endmembers among the pixels —
        the recommended start for spectral images with (nearly) pure pixels.
    max_iter : int
        Maximum number of iterations (each updates W and then H).
    tol : float
        Stop when the penalized objective decreases by less than ``tol``
        times its value in one iteration, or when the fit is exact to
        ``tol``: ``||X - WH||_F <= tol ||X||_F``.
    random_state : int, numpy Generator/RandomState or None
        Seed of the random initialization and of the randomized SVD behind
        NNDSVD. The same seed gives the same result.
    l1_W, l1_H, l2_W, l2_H : float
        Penalty weights, >= 0.
    W, H : ndarray, optional
        Starting factors for ``init="custom"``, shapes (n_samples,
        n_components) and (n_components, n_features), dtype of X.
    callback : callable, optional
        Called as ``callback(info)`` with an :class:`IterationInfo` after
        every iteration; returning True stops the fit.
    verbose : bool
        Show a progress bar with the current relative error.
    time_limit : float, optional
        Stop after this many seconds.
    extrapolate : bool
        Extrapolation with restarts (Ang & Gillis 2019): each half-step
        starts from the other factor moved on along its last step, by a
        factor that grows while the objective falls and shrinks when it
        rises, when the next iteration restarts from the plain iterates.
        It reaches a given error in several times fewer iterations (see
        the README's benchmark), at little extra cost per iteration. The
        objective is then not monotone: it may rise at a restart (which is
        why it is asked for, not the default). The result is always the
        pair whose objective was recorded last. Frobenius loss, solvers
        "bpp" and "admm", whose half-steps solve their problem exactly
        (from an extrapolated start a single HALS sweep or MU step lands
        where the start leads: measured, it fits worse more often than not
        once penalties are on), with every constraint and penalty.
    sum_to_one : bool or array of shape (n_samples,)
        True: every row of W (the abundances of a pixel) lies on the
        probability simplex, exactly. An array ``c``: row i sums to ``c[i]``
        instead (a scaled simplex: each pixel's abundances sum to its own
        intensity, e.g. its total counts over their mean; a zero gives a
        zero row); not with ``bounds_W``. Solvers "bpp", "mu" and "admm".
    graph_W, graph_H : scipy.sparse matrix, optional
        Symmetric non-negative similarity between the rows of W (pixels,
        n_samples × n_samples) or the columns of H (channels); see
        :mod:`unmix.graphs`. With ``smooth_W`` / ``smooth_H`` > 0 it adds
        ``½ smooth tr(Fᵀ L F)``, L the graph's Laplacian. All solvers.
        When nothing fixes the scale of the components (no ``sum_to_one``,
        bounds or ``fixed_H``), the term is taken at components of the
        other factor of norm ``1/√p`` (p their length; for ``graph_W``
        ``½ smooth Σ_j p ||h_j||² w_jᵀ L w_j``), and W and H come back at
        that scale unless ℓ1, ℓ2 or ``minvol_H`` are on too; see "The graph
        term's scale" in the solvers docs.
    smooth_W : float or "auto"
        Weight of the smoothness of the abundances on ``graph_W`` (>= 0).
        ``"auto"``: :data:`~unmix.preprocess.AUTO_SMOOTH_W` × σ² (30 σ²),
        σ² the noise variance per entry of X
        (:func:`unmix.preprocess.noise_variance` with k = n_components): the
        maximum a posteriori weight for abundance steps of about 0.18
        between neighbours, the same at any scale and SNR of the data. Only
        with ``sum_to_one=True``, where abundances are fractions. The number
        used is in ``result.weights``.
    smooth_H : float
        Weight of the smoothness of the spectra on ``graph_H`` (>= 0).
    bounds_W, bounds_H : (lo, hi), optional
        ``lo <= entries <= hi`` per component: scalars or arrays of length
        n_components (``lo >= 0``). Solvers "hals" and "mu".
    fixed_H : ndarray of shape (n_known, n_features), optional
        Known endmember spectra, ``1 <= n_known <= n_components``: the
        first n_known rows of H are held at these values while the others
        are learned. All solvers. With all n_components rows, H is not
        fitted and only W is, under every W option (``sum_to_one``,
        ``graph_W``/``smooth_W``, ``bounds_W``, ``l1_W``, ``l2_W``,
        ``loss="kl"``); the H options (``l1_H``, ``l2_H``, ``bounds_H``,
        ``graph_H``/``smooth_H``, ``minvol_H``) and a starting ``H`` are
        refused. W then starts from ``W`` if given (``init`` None or
        "custom"), else from the NNLS abundances on fixed_H floored at 1e-3
        of their maximum (so that "mu" can move every entry).
    minvol_H : float or "auto"
        Minimum-volume weight λ: adds ``λ log det(H Hᵀ / δ + I)`` (δ = 0.1 ×
        the mean squared norm of the starting endmembers; ≥ 0, with the
        minimizer of ``log det(H Hᵀ + δ I)``), which pulls the
        endmembers towards the data when pure pixels are rare. Solvers
        "bpp", "hals" and "admm". ``"auto"``: the weight
        :func:`unmix.fractions.minvol_weight` sets from the data, half the
        residual energy of the best rank-k approximation that the noise
        does not explain (the noise estimated as Gaussian,
        :func:`unmix.noise.regression_variance`), zero where it explains
        it all; meant for rows of W on the simplex (``sum_to_one``), it
        follows the data's scale. The number used and what it came from are
        in ``result.weights``.

    checkpoint : path, optional
        Write the state of the run to this file (``.npz``, replaced
        atomically) every ``checkpoint_every`` iterations or
        ``checkpoint_interval`` seconds (default: every 60 s), and when the
        run stops, Ctrl-C included. See :mod:`unmix.checkpoint`.
    checkpoint_every : int, optional
    checkpoint_interval : float, optional
    resume : bool or path
        Continue the run saved in a checkpoint: ``True`` for the file given
        as ``checkpoint`` (starting afresh if it does not exist yet, so a
        job script can be rerun as it is), or the path of one. The problem
        (data, k, solver and every penalty and constraint) must be the same;
        ``max_iter``, ``tol`` and ``time_limit`` may change. The result is
        that of the uninterrupted run; a checkpoint of a run that had ended
        (killed before it returned) gives that run's result.

    n_threads : int, optional
        Threads of unmix's own kernels (the data products and the updates);
        None: every core this process may run on. The result is the same
        for any number of threads. During a fit the BLAS library unmix
        calls (the one ``unmix._core.blas_path()`` names) runs on one
        thread, as its work is small next to the kernels' and its own
        threads would compete with them for the cores; the setting is put
        back when the fit ends.

    Every solver keeps the penalized objective monotone under every
    constraint it accepts; a combination a solver cannot do exactly is
    refused with an error naming the solvers that can.

    Returns
    -------
    NMFResult
        ``W`` and ``H`` have the dtype of X (float32 stays float32).

    Notes
    -----
    **Unmixing a spectral image** is :func:`unmix.unmix`'s job: it weights
    the data for their noise, fits fractions (``sum_to_one``, here with
    per-pixel sums), sets ``minvol_H`` from the data and smooths the
    fractions in a second fit with the endmembers held (see
    :doc:`fractions`). Smoothness with free endmembers does not work: for
    rows that sum to one, ``W' = a W + (1 - a) 1 mᵀ`` (m the mean
    abundance, a < 1) is ``W A`` with ``A = a I + (1 - a) 1 mᵀ``, so
    ``H' = A⁻¹ H`` keeps ``W' H' = W H`` while the smoothness term shrinks
    by a²: the fit drifts towards flattened abundances and exaggerated
    endmembers; hold H (``fixed_H`` with every row) when smoothing
    fractions.

    A component that becomes zero everywhere (a bad start) gets one fresh
    random start, which may raise the objective at that iteration; under
    penalties it stays zero. Both are listed in ``result.events``. A factor
    that becomes NaN or infinite stops the fit with a RuntimeError naming
    the likely cause.

    The computation runs without the GIL. Ctrl-C stops it at the end of the
    current iteration and raises KeyboardInterrupt.
    """
    options = dict(locals())
    del options["X"], options["n_components"]
    return _fit(X, n_components, **options)


def _fit(X: Any, n_components: int, *, update_W: bool = True, update_H: bool = True,
         **given: Any) -> NMFResult:
    """:func:`nmf` plus the option to hold one factor fixed (for transform);
    the other keywords are :func:`nmf`'s, with its defaults."""
    unknown = set(given) - set(_NMF_DEFAULTS)
    if unknown:
        raise TypeError(f"nmf() got unexpected keyword arguments {sorted(unknown)}")
    o = {**_NMF_DEFAULTS, **given}
    solver, init, max_iter, tol = o["solver"], o["init"], o["max_iter"], o["tol"]
    W, H, callback, verbose, time_limit = o["W"], o["H"], o["callback"], o["verbose"], o["time_limit"]
    M = as_core_matrix(X)
    n_samples, n_features = M.shape
    k = check_int(n_components, "n_components", 1)
    loss = check_choice(o["loss"], "loss", LOSSES)
    rescaled = _rescaled_fit(X, M, k, update_W, update_H, o)
    if rescaled is not None:
        return rescaled
    if solver is None:
        solver = "mu" if loss == "kl" else "bpp"
    solver = check_choice(solver, "solver", SOLVERS)
    seed = seed_from(o["random_state"])
    resume_from = _resume_source(o)
    known = None if o["fixed_H"] is None else _known_spectra(o["fixed_H"], n_features, k)
    held = known if known is not None and known.shape[0] == k else None
    if held is not None:
        W, H, init = _hold_H(X, held, o, k, M.dtype)
        update_H = False
    if init is None:
        if W is not None and H is not None:
            init = "custom"
        else:
            init = "nndsvda" if k <= min(n_samples, n_features) else "random"
    init = check_choice(init, "init", INITS)
    if init.startswith("nndsvd") and k > min(n_samples, n_features):
        raise ValueError(
            f"n_components must be <= min(n_samples, n_features) = {min(n_samples, n_features)} "
            f"for init={init!r} (use init='random' for more components), got {k}"
        )
    limit = max(1024, 16 * max(n_samples, n_features))
    if k > limit:
        # Far more components than X has rows or columns only fill memory
        # (k x k Gram matrices): refused by name before the core tries.
        raise ValueError(f"n_components must be <= {limit} for X of shape ({n_samples}, "
                         f"{n_features}), got {k}")
    if init == "custom":
        if W is None or H is None:
            raise ValueError("init='custom' needs both W and H, got "
                             f"W={'None' if W is None else 'an array'}, "
                             f"H={'None' if H is None else 'an array'}")
        W = check_factor(W, "W", (n_samples, k), M.dtype)
        H = check_factor(H, "H", (k, n_features), M.dtype)
    elif W is not None or H is not None:
        raise ValueError(f"W and H are used only with init='custom', got init={init!r}")
    if init in PIXEL_INITS:
        if k > n_samples:
            raise ValueError(f"n_components must be <= n_samples = {n_samples} for init={init!r} "
                             f"(it picks n_components pixels), got {k}")
        if resume_from is None:  # a resumed run has its factors
            W, H = _pixel_init(X, k, init, seed, M.dtype, multiplicative=solver == "mu")
        init = "custom"
    options: dict[str, Any] = {
        "solver": solver,
        "init": init,
        "loss": loss,
        "max_iter": check_int(max_iter, "max_iter", 1),
        "tol": check_nonneg(tol, "tol"),
        "seed": seed,
        "transposed": M.transposed,
        "data_name": "X",
        "extrapolate": check_bool(o["extrapolate"], "extrapolate"),
    }
    if options["max_iter"] > 2**31 - 1:
        raise ValueError(f"max_iter must be <= {2**31 - 1}, got {options['max_iter']}")
    if time_limit is not None:
        limit = check_nonneg(time_limit, "time_limit")
        if limit == 0:
            raise ValueError("time_limit must be > 0 seconds or None, got 0")
        options["time_limit"] = limit
    # Penalties and roles map to the core's factors: when M = X.T, the
    # core's W is H.T and its H is W.
    rows, cols = ("H", "W") if M.transposed else ("W", "H")
    for name in ("l1_W", "l1_H", "l2_W", "l2_H"):
        options[name[:3] + (rows if name[3] == "W" else cols)] = check_nonneg(o[name], name)
    options["fixed_" + rows] = not update_W
    options["fixed_" + cols] = not update_H
    weights = _auto_weights(X, M.shape, k, o)
    options.update(_constraints(rows, cols, (n_samples, n_features), k, **{
        name: weights.get(name, o[name]) for name in (
            "sum_to_one", "graph_W", "graph_H", "smooth_W", "smooth_H", "bounds_W", "bounds_H",
            "minvol_H")}, fixed_H=None if held is not None else known))

    ckpt = _checkpointing(o, options, M, k, resume_from, held)
    W0 = H0 = None
    if init == "custom" and resume_from is None:
        assert W is not None and H is not None
        sample_f, feature_f = np.asfortranarray(W), np.asfortranarray(H.T)
        W0, H0 = (feature_f, sample_f) if M.transposed else (sample_f, feature_f)

    if o["n_threads"] is not None:
        options["threads"] = check_int(o["n_threads"], "n_threads", 1)
    if update_W and update_H and k > min(n_samples, n_features):
        warnings.warn(
            f"n_components={k} is above min(n_samples, n_features) = {min(n_samples, n_features)}, "
            "the most X's rank can be: the data do not determine the extra components (many "
            "factorizations fit equally well), and some may die and be re-seeded",
            UserWarning, stacklevel=3)
    with _Progress(callback, verbose, max_iter, solver) as progress:
        # Without a callback or a bar the core still checks for Ctrl-C.
        hook = progress if (callback is not None or verbose) else None
        if M.dense is not None:
            out = _core.nmf_dense(M.dense, k, options, W0, H0, hook, ckpt or None)
        else:
            assert M.sparse is not None
            indptr, indices, data = M.sparse
            out = _core.nmf_sparse(indptr, indices, data, M.core_shape[0], M.core_shape[1],
                                   k, options, W0, H0, hook, ckpt or None)

    # Back to scikit-learn's orientation (views, no copies).
    W_out, H_out = (out["H"], out["W"].T) if M.transposed else (out["W"], out["H"].T)
    for iteration, what in out["events"]:
        if ROSE_EVENT in what:  # the core's words (core/driver.hpp)
            warnings.warn(f"nmf: {what} at iteration {iteration}: the result fits worse than its "
                          "starting point (see result.events)", RuntimeWarning, stacklevel=3)
    return NMFResult(
        W=W_out, H=H_out, n_iter=out["n_iter"], objective=out["objective"],
        rel_error=out["rel_error"], converged=out["converged"],
        stop_reason=out["stop_reason"], data_norm=out["data_norm"], solver=solver,
        timings=out["timings"], events=out["events"], weights=weights,
    )


#: The words of the core's event of a fit that ended above its starting objective.
ROSE_EVENT = "above its starting value"

#: The options whose meaning depends on the scale of X.
_SCALED_OPTIONS = ("l1_W", "l1_H", "l2_W", "l2_H", "smooth_W", "smooth_H", "minvol_H",
                   "bounds_W", "bounds_H")


def _rescaled_fit(X: Any, M: Any, k: int, update_W: bool, update_H: bool,
                  o: dict[str, Any]) -> Optional[NMFResult]:
    """The fit of X times a power of two, brought back to X's units, when
    X's largest value lies outside the range the core computes with
    (``_core.data_limit``; the core refuses such data) and no option
    depends on X's scale: then the rescaling is exact, the factors and the
    objective scale back exactly and rel_error does not change. None
    otherwise, when the fit goes ahead as it is (and the core explains a
    range it cannot handle)."""
    values = M.dense if M.dense is not None else M.sparse[2]
    top = float(values.max()) if values.size else 0.0
    limit = _core.data_limit(M.dtype.name)
    if not (top > limit or 0 < top < 1 / limit) or not np.isfinite(top) or values.min() < 0:
        return None
    if any(o[name] is not None and (isinstance(o[name], str) or np.any(np.asarray(o[name]) != 0))
           for name in _SCALED_OPTIONS):
        return None
    # X = 2^e X', W = 2^e_W W', H = 2^e_H H'; rows of W that sum to given
    # values keep W's scale.
    e = math.frexp(top)[1]
    free_rows = isinstance(o["sum_to_one"], (bool, np.bool_)) and not o["sum_to_one"]
    e_W = e // 2 if free_rows else 0
    e_H = e - e_W
    X = scaled_data(X, M, e)

    def scaled(F: Any, by: int) -> Any:
        return None if F is None else np.ldexp(np.asarray(F), -by)

    # The objective is 2-homogeneous in X (1-homogeneous for the KL loss);
    # in X's units it may leave float64's range (then 0 or inf).
    power = e if o["loss"] == "kl" else 2 * e

    def in_units(objective: Any) -> Any:
        with np.errstate(over="ignore", under="ignore"):
            return np.ldexp(objective, power)

    callback = o["callback"]
    if callback is not None:
        given = callback
        callback = lambda info: given(info._replace(objective=float(in_units(info.objective))))  # noqa: E731
    r = _fit(X, k, update_W=update_W, update_H=update_H, **{
        **o, "W": scaled(o["W"], e_W), "H": scaled(o["H"], e_H),
        "fixed_H": scaled(o["fixed_H"], e_H), "callback": callback})
    return NMFResult(
        W=np.ldexp(r.W, e_W), H=np.ldexp(r.H, e_H), n_iter=r.n_iter,
        objective=in_units(r.objective), rel_error=r.rel_error, converged=r.converged,
        stop_reason=r.stop_reason, data_norm=math.ldexp(r.data_norm, e), solver=r.solver,
        timings=r.timings, events=r.events, weights=r.weights)


_NMF_DEFAULTS = {name: p.default for name, p in inspect.signature(nmf).parameters.items()
                 if p.kind is inspect.Parameter.KEYWORD_ONLY}

#: The options that shape how H is fitted: meaningless when fixed_H holds all of H.
H_OPTIONS = ("l1_H", "l2_H", "bounds_H", "graph_H", "smooth_H", "minvol_H")


def _known_spectra(fixed_H: Any, n_features: int, k: int) -> np.ndarray:
    E = np.asarray(fixed_H, dtype=np.float64)
    if E.ndim != 2 or E.shape[1] != n_features or not 1 <= E.shape[0] <= k:
        raise ValueError(f"fixed_H must have shape (n_known, {n_features}) with 1 <= n_known <= "
                         f"n_components = {k}, got {E.shape}")
    if not np.isfinite(E).all() or E.min() < 0:
        raise ValueError("fixed_H must be finite and non-negative")
    return E


def _hold_H(X: Any, E: np.ndarray, o: dict[str, Any], k: int,
            dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, str]:
    """The custom start of a fit with every row of H known: H = fixed_H, W
    the user's or the NNLS abundances on it."""
    why = f"when fixed_H holds all n_components = {k} rows (H is held, not fitted)"
    for name in H_OPTIONS:
        value = o[name]
        if value is not None and not (isinstance(value, numbers.Real) and value == 0):
            shown = repr(value) if isinstance(value, (numbers.Number, str)) else \
                type(value).__name__
            raise ValueError(f"{name} must be left unset {why}, got {name}={shown}")
    if o["H"] is not None:
        raise ValueError(f"H must be None {why}: the fit starts from H = fixed_H")
    if o["init"] not in (None, "custom"):
        raise ValueError(f"init must be None or 'custom' {why}: W starts from the W given, "
                         f"or else from the NNLS abundances on fixed_H; got {o['init']!r}")
    if o["init"] == "custom" and o["W"] is None:
        raise ValueError(f"init='custom' needs W {why}, got W=None")
    H = np.ascontiguousarray(E, dtype=dtype)
    W = o["W"] if o["W"] is not None else _floored(abundances_from_endmembers(X, H), dtype)
    return W, H, "custom"


def _auto_weights(X: Any, shape: tuple[int, int], k: int, o: dict[str, Any]) -> dict[str, float]:
    """The numbers of the weights given as "auto", and what they come from
    (see unmix.preprocess.AUTO_SMOOTH_W and unmix.fractions.minvol_weight)."""
    for name in ("smooth_W", "smooth_H", "minvol_H"):
        value = o[name]
        if isinstance(value, str) and (value != "auto" or name == "smooth_H"):
            also = "" if name == "smooth_H" else " or 'auto'"
            raise TypeError(f"{name} must be a real number >= 0{also}, got {value!r}")
    auto = [name for name in ("smooth_W", "minvol_H") if isinstance(o[name], str)]
    if not auto:
        return {}
    if "smooth_W" in auto and simplex_sums(o["sum_to_one"], shape[0]) is None:
        raise ValueError("smooth_W='auto' needs sum_to_one=True: the weight takes abundances to "
                         f"be fractions, got sum_to_one={o['sum_to_one']!r}")
    from .preprocess import AUTO_SMOOTH_W, noise_variance

    sigma2 = noise_variance(X, k)
    out: dict[str, Any] = {"noise_variance": sigma2}
    if "smooth_W" in auto:
        out["smooth_W"] = AUTO_SMOOTH_W * sigma2
    if "minvol_H" in auto:
        from .fractions import minvol_weight
        from .noise import regression_variance

        # Gaussian noise of one variance, estimated without counting what k
        # components miss as noise (else the residual of the rank-k fit).
        variance = regression_variance(X) if not sp.issparse(X) else None
        source = "regression of every channel on the others (HySime)"
        if variance is None:
            variance, source = sigma2, f"the residual of the best rank-{k} approximation"
        weight, info = minvol_weight(X, k, np.full(shape[0], variance * shape[1]))
        out.update(minvol_H=weight, excess_share=info["excess_share"],
                   minvol_noise_variance=variance, noise_source=source)
    return out


def _resume_source(o: dict[str, Any]) -> Optional[Union[str, os.PathLike]]:
    """The checkpoint to resume from, if any: resume=True means the
    ``checkpoint`` file when it exists (a rerun job script starts afresh
    the first time), resume=<path> a file that must exist."""
    path, resume = o["checkpoint"], o["resume"]
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path (str or os.PathLike) or None, got {path!r}")
    if not isinstance(resume, (bool, np.bool_, str, os.PathLike)):
        raise TypeError(f"resume must be True, False or a path, got {resume!r}")
    if resume is True and path is None:
        raise ValueError("resume=True resumes from checkpoint=<path>, but checkpoint is None")
    if resume is True:
        return path if os.path.exists(path) else None
    if resume is False:
        return None
    if not os.path.exists(resume):
        raise FileNotFoundError(f"resume: no checkpoint file {os.fspath(resume)!r}")
    return resume


def _checkpointing(o: dict[str, Any], options: dict[str, Any], M: Any, k: int,
                   resume_from: Optional[Union[str, os.PathLike]],
                   held: Optional[np.ndarray]) -> dict[str, Any]:
    """The core's checkpoint settings from nmf's keywords: what to save,
    when, and the state to resume from."""
    from . import checkpoint as ck

    path, every, interval = o["checkpoint"], o["checkpoint_every"], o["checkpoint_interval"]
    if path is None and (every is not None or interval is not None):
        raise ValueError("checkpoint_every and checkpoint_interval need checkpoint=<path>")
    # A fully fixed H reaches the core as its start, which the fingerprint
    # does not see: its values are part of the problem.
    fp = ck.fingerprint(options if held is None else {**options, "held_H": held},
                        M.shape, k, M.dtype)
    out: dict[str, Any] = {}
    if path is not None:
        if every is not None:
            out["every"] = check_int(every, "checkpoint_every", 1)
        if interval is not None:
            out["seconds"] = check_nonneg(interval, "checkpoint_interval")
            if out["seconds"] == 0:
                raise ValueError("checkpoint_interval must be > 0 seconds, got 0")
        if every is None and interval is None:
            out["seconds"] = 60.0
        remove_stale_temporaries(Path(path))
        out["save"] = lambda state: ck.save(path, state, fp, options["seed"])
    if resume_from is not None:
        out["resume"] = ck.load(resume_from, fp)
        # Re-seeding a dead component draws from the run's own seed.
        options["seed"] = out["resume"].pop("seed")
    return out


def _pixel_init(X: Any, k: int, method: str, seed: int, dtype: np.dtype,
                multiplicative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Endmembers picked from the data's own pixels (SPA on sum-normalized
    pixels, or VCA), abundances by NNLS on them — the usual start in
    hyperspectral unmixing, close to the answer when pure pixels exist."""
    rows = spa(X, k, normalize=True) if method == "spa" else vca(X, k, random_state=seed)
    picked = X[rows]
    H = np.asarray(picked.toarray() if sp.issparse(picked) else picked, dtype=dtype)
    W = _floored(abundances_from_endmembers(X, H), dtype)
    if multiplicative:  # the picked spectra too: a channel with zero counts would stay zero
        H = _floored(H, dtype)
    return W, np.ascontiguousarray(H)


def _floored(F: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """F floored at 1e-3 of its maximum: strictly positive, so that
    multiplicative updates can move every entry."""
    F = np.maximum(F, np.asarray(1e-3 * F.max() if F.size else 0, dtype=dtype))
    return np.ascontiguousarray(F, dtype=dtype)


class _Progress:
    """The per-iteration hook handed to the core: the user's callback and
    the tqdm bar."""

    def __init__(self, callback: Optional[Callable[[IterationInfo], Any]], verbose: bool,
                 max_iter: int, solver: str) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {callback!r}")
        self.callback = callback
        self.bar: Union[Any, None] = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_iter, desc=f"nmf ({solver})", unit="it")

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, iteration: int, objective: float, rel_error: float,
                 elapsed: float) -> bool:
        if self.bar is not None:
            # The core's own count: a resumed fit starts where it stopped.
            self.bar.update(iteration - self.bar.n)
            self.bar.set_postfix(rel_error=f"{rel_error:.3e}", refresh=False)
        if self.callback is None:
            return False
        return bool(self.callback(IterationInfo(iteration, objective, rel_error, elapsed)))
