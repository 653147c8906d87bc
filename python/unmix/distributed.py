"""Distributed NMF over an mpi4py communicator (MPI-FAUN on a process grid).

Every rank holds one block of ``X`` (n_samples × n_features): with a grid of
``pr × pc`` ranks, rank ``r = i * pc + j`` holds ``X[rows_i, cols_j]``, where
``rows_i`` is the i-th of ``pr`` nearly equal runs of the samples (the first
``n_samples % pr`` runs one longer) and ``cols_j`` likewise for the features;
:func:`block_of` gives them. The fit moves only factor rows and k × k
matrices between ranks, never the data, and gives the factors the serial
:func:`unmix.nmf` gives for the same seed, to rounding.

Run it under ``mpirun``::

    from mpi4py import MPI
    import unmix.distributed as ud

    comm = MPI.COMM_WORLD
    rows, cols = ud.block_of(comm.rank, shape, grid)
    r = ud.nmf(X[rows, cols], 8, comm=comm, shape=shape, grid=grid)
    W, H = r.gather(comm)          # full factors on rank 0, None elsewhere
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp

from . import _core
from ._nmf import IterationInfo, _constraints, _known_spectra, _Progress
from ._validation import (
    INITS,
    LOSSES,
    SOLVERS,
    check_bool,
    check_choice,
    check_int,
    check_nonneg,
    seed_from,
)

__all__ = ["DistributedNMFResult", "block_of", "choose_grid", "nmf"]


def _split(total: int, parts: int, index: int) -> slice:
    base, extra = divmod(total, parts)
    first = index * base + min(index, extra)
    return slice(first, first + base + (1 if index < extra else 0))


def choose_grid(n_ranks: int, shape: tuple[int, int]) -> tuple[int, int]:
    """The pr × pc grid that minimizes MPI-FAUN's communication for this shape
    (a tall, narrow X gets n_ranks × 1)."""
    pr, pc = _core.choose_grid(n_ranks, shape[1], shape[0])  # the core sees X.T
    return pc, pr


def block_of(rank: int, shape: tuple[int, int], grid: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns of X that ``rank`` holds on a ``grid``."""
    pr, pc = grid
    return _split(shape[0], pr, rank // pc), _split(shape[1], pc, rank % pc)


@dataclass(frozen=True)
class DistributedNMFResult:
    """This rank's part of the factors, in scikit-learn's orientation.

    ``W`` holds the rows ``W_first : W_first + len(W)`` of the global W
    (samples); ``H`` the columns ``H_first : H_first + H.shape[1]`` of the
    global H (features). The histories are global and equal on every rank.
    """

    W: np.ndarray
    H: np.ndarray
    W_first: int
    H_first: int
    n_iter: int
    objective: np.ndarray
    rel_error: np.ndarray
    converged: bool
    stop_reason: str
    grid: tuple[int, int]
    comm_seconds: float
    comm_words: float
    timings: dict[str, float] = field(default_factory=dict)

    def gather(self, comm: Any, root: int = 0) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """The full W and H on ``root`` (None on the other ranks)."""
        parts = comm.gather((self.W_first, self.W, self.H_first, self.H), root=root)
        if parts is None:
            return None, None
        W = np.concatenate([w for _, w, _, _ in sorted(parts, key=lambda p: p[0])], axis=0)
        H = np.concatenate([h for _, _, _, h in sorted(parts, key=lambda p: p[2])], axis=1)
        return W, H


def nmf(
    X_block: Any,
    n_components: int,
    *,
    comm: Any,
    shape: tuple[int, int],
    grid: Optional[tuple[int, int]] = None,
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
    callback: Optional[Callable[[IterationInfo], Optional[bool]]] = None,
    verbose: bool = False,
    time_limit: Optional[float] = None,
    extrapolate: bool = False,
    n_threads: Optional[int] = None,
    sum_to_one: bool = False,
    graph_W: Any = None,
    graph_H: Any = None,
    smooth_W: float = 0.0,
    smooth_H: float = 0.0,
    bounds_W: Optional[tuple[Any, Any]] = None,
    bounds_H: Optional[tuple[Any, Any]] = None,
    fixed_H: Optional[np.ndarray] = None,
    minvol_H: float = 0.0,
) -> DistributedNMFResult:
    """:func:`unmix.nmf` on a matrix held in blocks across the ranks of ``comm``.

    Every rank calls it with its own block (a numpy array or a CSR/CSC
    matrix; see :func:`block_of`) and the same other arguments. Blocks are
    used without a copy when every rank's block is C-ordered (or CSR), or
    every rank's is Fortran-ordered (or CSC); otherwise the odd ones are
    converted once. ``init="custom"`` is not available distributed.

    The loss, penalties and constraints are :func:`unmix.nmf`'s, with the
    same meaning and solvers; every rank passes the same global values
    (``graph_W``/``graph_H`` the whole graph, ``fixed_H`` every known
    spectrum) and keeps only its part. A graph term fetches, each time its
    factor changes, the rows linked to this rank's rows from the ranks that
    own them: for a grid graph about two image rows per rank. Not
    distributed: weights given as ``"auto"`` (pass the numbers of a serial
    ``result.weights``) and a ``fixed_H`` that holds every component.

    ``n_threads`` is each rank's number of threads for its kernels; None:
    the cores of the rank's node divided among the ranks on it (at most the
    cores it is bound to). The result does not depend on it.

    Errors are raised on every rank alike, so no rank is left waiting.
    """
    from . import _mpi  # built only when MPI was found at build time

    size = comm.Get_size()
    rank = comm.Get_rank()
    n_samples, n_features = (check_int(s, "shape[i]", 1) for s in shape)
    k = check_int(n_components, "n_components", 1)
    if grid is None:
        grid = choose_grid(size, (n_samples, n_features))
    pr, pc = grid
    if pr * pc != size:
        raise ValueError(f"grid must be (pr, pc) with pr * pc = {size} ranks, got {grid}")
    loss = check_choice(loss, "loss", LOSSES)
    solver = check_choice("mu" if solver is None and loss == "kl" else solver or "bpp",
                          "solver", SOLVERS)
    if init is None:
        init = "nndsvda" if k <= min(n_samples, n_features) else "random"
    init = check_choice(init, "init", tuple(i for i in INITS if i != "custom"))
    # One seed for all ranks, or the factors would not match.
    seed = comm.bcast(seed_from(random_state) if rank == 0 else None, root=0)

    block, layout, problem = _block(X_block, rank, (n_samples, n_features), grid)
    problems = comm.allgather((layout, problem))
    errors = [f"rank {r}: {p}" for r, (_, p) in enumerate(problems) if p]
    if errors:
        raise ValueError("X_block: " + "; ".join(errors))
    # M = X.T unless every block is Fortran-ordered (or CSC).
    transposed = not all(lay == "F" for lay, _ in problems)
    dtypes = comm.allgather(block.dtype.str)
    if len(set(dtypes)) > 1:
        raise ValueError(f"X_block must have one dtype on every rank, got {dtypes}")
    if transposed and layout == "F":
        block = block.tocsr() if sp.issparse(block) else np.ascontiguousarray(block)

    options: dict[str, Any] = {
        "solver": solver, "init": init, "max_iter": check_int(max_iter, "max_iter", 1),
        "tol": check_nonneg(tol, "tol"), "seed": seed, "transposed": transposed,
        "data_name": "X", "extrapolate": check_bool(extrapolate, "extrapolate"),
    }
    if time_limit is not None:
        options["time_limit"] = check_nonneg(time_limit, "time_limit")
    if n_threads is not None:
        options["threads"] = check_int(n_threads, "n_threads", 1)
    options["loss"] = loss
    rows, cols = ("H", "W") if transposed else ("W", "H")
    for name, value in (("l1_W", l1_W), ("l1_H", l1_H), ("l2_W", l2_W), ("l2_H", l2_H)):
        options[name[:3] + (rows if name[3] == "W" else cols)] = check_nonneg(value, name)

    i, j = divmod(rank, pc)
    if transposed:
        # The core sees M = X.T on the transposed grid; order its ranks so
        # that rank (j, i) of that grid holds X's block (i, j).
        core = comm.Split(0, j * pr + i)
        m, n, cpr, cpc = n_features, n_samples, pc, pr
        ci, cj = j, i
    else:
        core = comm.Split(0, rank)
        m, n, cpr, cpc = n_samples, n_features, pr, pc
        ci, cj = i, j
    try:
        known = None if fixed_H is None else _known_spectra(fixed_H, n_features, k)
        if known is not None and known.shape[0] == k:
            raise ValueError(f"fixed_H must have fewer than n_components = {k} rows in "
                             "unmix.distributed.nmf (holding all of H needs a custom start), "
                             f"got {known.shape[0]}")
        if known is not None:
            # The core takes the known values of the features this rank owns.
            outer, parts, index = ((_split(m, cpr, ci), cpc, cj) if transposed
                                   else (_split(n, cpc, cj), cpr, ci))
            inner = _split(outer.stop - outer.start, parts, index)
            known = known[:, outer.start + inner.start:outer.start + inner.stop]
        for name, value in (("smooth_W", smooth_W), ("minvol_H", minvol_H)):
            if isinstance(value, str):
                raise ValueError(f"{name}={value!r} is not available in unmix.distributed.nmf: "
                                 "pass the number a serial fit reports in result.weights")
        options.update(_constraints(
            rows, cols, (n_samples, n_features), k, sum_to_one=sum_to_one, graph_W=graph_W,
            graph_H=graph_H, smooth_W=smooth_W, smooth_H=smooth_H, bounds_W=bounds_W,
            bounds_H=bounds_H, fixed_H=known, minvol_H=minvol_H))
    except Exception:
        core.Free()
        raise
    handle = _handle(core)
    try:
        with _Progress(callback, verbose and rank == 0, max_iter, solver) as progress:
            hook = progress if (callback is not None or (verbose and rank == 0)) else None
            if sp.issparse(block):
                out = _mpi.nmf_sparse(block.indptr, block.indices, block.data, k, options,
                                      handle, cpr, cpc, m, n, hook)
            else:
                M = block.T if transposed else block
                out = _mpi.nmf_dense(M, k, options, handle, cpr, cpc, m, n, hook)
    finally:
        core.Free()

    if transposed:
        W, W_first, H, H_first = out["H"], out["H_first"], out["W"].T, out["W_first"]
    else:
        W, W_first, H, H_first = out["W"], out["W_first"], out["H"].T, out["H_first"]
    return DistributedNMFResult(
        W=W, H=H, W_first=int(W_first), H_first=int(H_first), n_iter=out["n_iter"],
        objective=out["objective"], rel_error=out["rel_error"], converged=out["converged"],
        stop_reason=out["stop_reason"], grid=(pr, pc), comm_seconds=out["comm_seconds"],
        comm_words=out["comm_words"], timings=out["timings"],
    )


def _block(X: Any, rank: int, shape: tuple[int, int], grid: tuple[int, int]
           ) -> tuple[Any, str, Optional[str]]:
    """This rank's block as a float array or CSR/CSC matrix, its layout
    ("C" or "F") and what is wrong with it, if anything."""
    rows, cols = block_of(rank, shape, grid)
    expected = (rows.stop - rows.start, cols.stop - cols.start)
    if sp.issparse(X):
        X = X if X.format in ("csr", "csc") else X.tocsr()
        layout = "C" if X.format == "csr" else "F"
        if X.indptr.dtype != X.indices.dtype:
            X.indptr, X.indices = X.indptr.astype(np.int64), X.indices.astype(np.int64)
    else:
        X = np.asarray(X)
        layout = "F" if (X.flags.f_contiguous and not X.flags.c_contiguous) else "C"
        if X.ndim == 2 and not (X.flags.c_contiguous or X.flags.f_contiguous):
            X = np.ascontiguousarray(X)
    if X.ndim != 2 or X.shape != expected:
        return X, layout, f"expected a block of shape {expected} for grid {grid}, got {X.shape}"
    if X.dtype not in (np.float64, np.float32):
        X = X.astype(np.float64)
    return X, layout, None


def _handle(comm: Any) -> int:
    from mpi4py import MPI

    return int(MPI._handleof(comm))
