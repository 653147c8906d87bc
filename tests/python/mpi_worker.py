"""Run under mpirun by test_distributed.py: each rank factors its block with
unmix.distributed.nmf and checks its rows against the serial unmix.nmf,
plain and with constraints, graph terms and the KL loss."""

import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

import unmix
import unmix.distributed as ud

comm = MPI.COMM_WORLD
rng = np.random.default_rng(5)  # the same global matrix on every rank
n_samples, n_features, k = 41, 23, 3
X = rng.random((n_samples, k)) @ rng.random((k, n_features)) + 0.02 * rng.random((n_samples, n_features))
X[rng.random(X.shape) < 0.3] = 0
failures = []
grids = {(comm.size, 1), (1, comm.size), ud.choose_grid(comm.size, X.shape)}
if comm.size == 4:
    grids.add((2, 2))
for grid in sorted(grids):
    rows, cols = ud.block_of(comm.rank, X.shape, grid)
    for solver in ("bpp", "hals", "mu"):
        for kind in ("C", "F", "csr", "csc", "float32"):
            block = X[rows, cols]
            data = {"C": np.ascontiguousarray(block), "F": np.asfortranarray(block),
                    "csr": sp.csr_matrix(block), "csc": sp.csc_matrix(block),
                    "float32": np.ascontiguousarray(block, dtype=np.float32)}[kind]
            full = X.astype(np.float32) if kind == "float32" else X
            kw = dict(solver=solver, max_iter=12, tol=0, random_state=3, l1_W=0.01, l2_H=0.1)
            serial = unmix.nmf(full if kind != "F" else np.asfortranarray(full), k, **kw)
            dist = ud.nmf(data, k, comm=comm, shape=X.shape, grid=grid, **kw)
            W, H = dist.gather(comm)
            tol = 1e-3 if kind == "float32" else 1e-9
            if comm.rank == 0:
                assert W.dtype == full.dtype and H.dtype == full.dtype
                err_W = np.abs(W - serial.W).max() / np.abs(serial.W).max()
                err_H = np.abs(H - serial.H).max() / np.abs(serial.H).max()
                if not (err_W <= tol and err_H <= tol and dist.n_iter == serial.n_iter):
                    failures.append(f"grid {grid} {solver} {kind}: W {err_W:.2e} H {err_H:.2e}")
# Constraints and the KL loss: the graph terms fetch neighbour rows from
# other ranks, the known spectrum is split by owner.
import unmix.graphs as graphs

S_W = graphs.grid((n_samples, 1), 4) + graphs.knn(X, 3)  # a chain plus far links
S_H = graphs.grid((n_features, 1), 4)
known = rng.random((1, n_features))
constrained = [
    dict(solver="bpp", sum_to_one=True, graph_W=S_W, smooth_W=0.3, fixed_H=known),
    dict(solver="hals", bounds_W=(0.0, 2.0), graph_H=S_H, smooth_H=0.2, fixed_H=known),
    dict(solver="bpp", sum_to_one=True, minvol_H=0.5),
    dict(solver="admm", sum_to_one=True, bounds_W=(0.0, 0.9), graph_W=S_W, smooth_W=0.1),
    dict(loss="kl", sum_to_one=True, graph_W=S_W, smooth_W=0.2, fixed_H=known),
    # Nothing fixes the scale: the graph terms weighted by the other factor's
    # norms (their ridge summed over the ranks), returned at unit norms, or
    # as fitted when l1/l2 make the scale matter.
    dict(solver="bpp", graph_W=S_W, smooth_W=0.3),
    dict(solver="mu", graph_W=S_W, smooth_W=0.3, graph_H=S_H, smooth_H=0.2, l1_W=0.01, l2_H=0.1),
    dict(loss="kl", graph_H=S_H, smooth_H=0.2),
    dict(solver="hals", graph_W=S_W, smooth_W=0.3, graph_H=S_H, smooth_H=0.2),
]
for grid in sorted(grids):
    rows, cols = ud.block_of(comm.rank, X.shape, grid)
    for c, extra in enumerate(constrained):
        for kind in ("C", "F"):
            block = X[rows, cols]
            data = np.ascontiguousarray(block) if kind == "C" else np.asfortranarray(block)
            kw = dict(max_iter=12, tol=0, random_state=3, **extra)
            serial = unmix.nmf(X if kind == "C" else np.asfortranarray(X), k, **kw)
            W, H = ud.nmf(data, k, comm=comm, shape=X.shape, grid=grid, **kw).gather(comm)
            if comm.rank == 0:
                err_W = np.abs(W - serial.W).max() / np.abs(serial.W).max()
                err_H = np.abs(H - serial.H).max() / np.abs(serial.H).max()
                if not (err_W <= 1e-9 and err_H <= 1e-9):
                    failures.append(f"grid {grid} constrained {c} {kind}: W {err_W:.2e} H {err_H:.2e}")
# Each rank's thread count does not change its bits; a block large enough
# (>= 2^16 entries per thread) for its kernels to split.
big = rng.random((2000, 4)) @ rng.random((4, 400))
rows, cols = ud.block_of(comm.rank, big.shape, ud.choose_grid(comm.size, big.shape))
by_threads = [ud.nmf(np.ascontiguousarray(big[rows, cols]), 4, comm=comm, shape=big.shape,
                     max_iter=5, tol=0, random_state=0, n_threads=t)
              for t in (1, 3)]
if not (np.array_equal(by_threads[0].W, by_threads[1].W)
        and np.array_equal(by_threads[0].H, by_threads[1].H)):
    failures.append(f"rank {comm.rank}: n_threads=3 changed the factors")
try:
    ud.nmf(np.ascontiguousarray(big[rows, cols]), 4, comm=comm, shape=big.shape, n_threads=0)
    failures.append("n_threads=0 was accepted")
except ValueError as err:
    if "n_threads" not in str(err):
        failures.append(f"unclear error: {err}")
# An error on one rank's input is raised on every rank, without a hang.
bad = np.zeros((2, 2)) if comm.rank == comm.size - 1 else X[ud.block_of(comm.rank, X.shape, (comm.size, 1))]
try:
    ud.nmf(bad, k, comm=comm, shape=X.shape, grid=(comm.size, 1))
    failures.append("a wrong block shape was accepted")
except ValueError as err:
    if f"rank {comm.size - 1}" not in str(err):
        failures.append(f"unclear error: {err}")
failures = comm.gather(failures, root=0)
if comm.rank == 0:
    flat = [f for rank_failures in failures for f in rank_failures]
    print(f"{comm.size} ranks: {len(flat)} failures", *flat, sep="\n")
    sys.exit(1 if flat else 0)
