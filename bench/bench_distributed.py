"""Distributed NMF on this machine: time per iteration split into compute and
communication on 1, 2 and 4 MPI ranks, words moved per rank against
MPI-FAUN's model, and a projection to large runs.

    python bench/bench_distributed.py                  # square_k20: 8000 x 8000, k = 20
    python bench/bench_distributed.py --ranks 1 2 --size 2000 3000 --k 8
    python bench/bench_distributed.py --project-only   # just the projection

Each configuration runs as `mpirun -np P python bench/bench_distributed.py
--worker ...`; every rank generates only its own block of a seeded matrix.
With P ranks on a machine of C cores each rank runs its kernels on
max(1, C // P) threads (n_threads), so 1 rank x 2 threads and 2 ranks x 1
thread use the same cores; more ranks than cores share them.
Output: one JSON line per configuration, the two figures the performance
issue asks for (the speed of P ranks x 1 thread against 1 rank x P threads,
P = C, and the communication share at 4 ranks), then the projection table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def model_words(m: int, n: int, k: int, pr: int, pc: int) -> float:
    """Words one rank moves per iteration in MPI-FAUN (even split): two
    all-gathers and two reduce-scatters of factor rows, two k x k Gram
    all-reduces and the objective's three scalars."""
    p = pr * pc
    gather_scatter = 2 * k * ((m / pr) * (pc - 1) / pc + (n / pc) * (pr - 1) / pr)
    return gather_scatter + 2 * 2 * (p - 1) / p * k * k + 2 * (p - 1) / p * 3


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    from mpi4py import MPI

    import unmix.distributed as ud

    comm = MPI.COMM_WORLD
    m, n = args.size
    shape = (m, n)
    grid = ud.choose_grid(comm.size, shape)
    rows, cols = ud.block_of(comm.rank, shape, grid)
    rng = np.random.default_rng(1000 + comm.rank)
    nr, nc = rows.stop - rows.start, cols.stop - cols.start
    block = rng.random((nr, 10)) @ rng.random((10, nc)) + 0.01 * rng.random((nr, nc))
    kw = dict(comm=comm, shape=shape, grid=grid, init="random", tol=0.0, random_state=0,
              n_threads=args.threads)
    ud.nmf(block, args.k, max_iter=2, **kw)  # warm-up
    comm.Barrier()
    r = ud.nmf(block, args.k, max_iter=args.iters, solver=args.solver, **kw)
    loop = r.timings["total"] - r.timings["init"]
    # The slowest rank sets the pace; report it.
    loop, comm_sec, words = comm.allreduce(loop, op=MPI.MAX), \
        comm.allreduce(r.comm_seconds, op=MPI.MAX), comm.allreduce(r.comm_words, op=MPI.MAX)
    if comm.rank == 0:
        # comm_words also counts the start (data statistics, initial Grams).
        start_words = 2 * (comm.size - 1) / comm.size * (4 + 2 * args.k * args.k + 3)
        per_iter_words = (words - start_words) / r.n_iter
        print(json.dumps({
            "case": f"dense_{m}x{n}_k{args.k}", "solver": args.solver, "ranks": comm.size,
            "grid": list(grid), "threads_per_rank": args.threads,
            "n_iter": r.n_iter, "sec_per_iter": loop / r.n_iter,
            "comm_sec_per_iter": comm_sec / r.n_iter,
            "compute_sec_per_iter": (loop - comm_sec) / r.n_iter,
            "comm_fraction": comm_sec / loop,
            "words_per_rank_per_iter": per_iter_words,
            "model_words_per_rank_per_iter": model_words(m, n, args.k, *grid),
            "flops_per_iter": 4.0 * m * n * args.k,
        }), flush=True)


def project(compute_rate: float, k: int, bandwidth: float, latency: float) -> list[dict]:
    """Time per iteration at scale for a 1e6 x 1e5 dense matrix, from a
    per-rank compute rate (flop/s) measured here and the MPI-FAUN model."""
    from unmix._core import choose_grid

    m, n = 10**6, 10**5
    rows = []
    for p in (64, 1024):
        pr, pc = choose_grid(p, m, n)
        compute = 4.0 * m * n * k / (p * compute_rate)
        words = model_words(m, n, k, pr, pc)
        # Each of the 4 row collectives and 3 all-reduces costs about
        # log2(group size) latencies.
        messages = 2 * (math.log2(max(pr, 1)) + math.log2(max(pc, 1))) + 3 * math.log2(p)
        comm = words * 8 / bandwidth + messages * latency
        rows.append({"ranks": p, "grid": [pr, pc], "k": k, "compute_sec": compute,
                     "comm_sec": comm, "sec_per_iter": compute + comm,
                     "comm_fraction": comm / (compute + comm), "words_per_rank": words})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--size", type=int, nargs=2, default=[8000, 8000], metavar=("M", "N"))
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--solver", default="hals")
    ap.add_argument("--bandwidth", type=float, default=10e9, help="bytes/s per rank (default 10 GB/s)")
    ap.add_argument("--latency", type=float, default=2e-6, help="seconds per message (default 2 us)")
    ap.add_argument("--project-only", action="store_true")
    ap.add_argument("--compute-rate", type=float, help="flop/s per rank for --project-only")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0

    rate = args.compute_rate
    if not args.project_only:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun is None:
            print("mpirun not found", file=sys.stderr)
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        lines = {}
        for p in args.ranks:
            env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                       OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
            # Not bound to a core, so that a rank's threads may use the cores
            # its share allows.
            cmd = [mpirun, "--bind-to", "none", "-np", str(p), sys.executable, __file__, "--worker",
                   "--size", *map(str, args.size), "--k", str(args.k), "--iters", str(args.iters),
                   "--solver", args.solver, "--threads", str(max(1, cores // p))]
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(out.stdout, out.stderr, file=sys.stderr)
                return 1
            line = json.loads(out.stdout.strip().splitlines()[-1])
            line["wall_sec"] = time.perf_counter() - t
            lines[p] = line
            print(json.dumps(line), flush=True)
        if 1 in lines and cores in lines and cores > 1:
            speed = lines[1]["sec_per_iter"] / lines[cores]["sec_per_iter"]
            print(f"# {cores} ranks x 1 thread run at {speed:.2f} x the speed of 1 rank x {cores} "
                  f"threads (target >= 0.9)", flush=True)
        if 4 in lines:
            print(f"# communication at 4 ranks: {100 * lines[4]['comm_fraction']:.1f} % of an "
                  f"iteration (target <= 10 %)", flush=True)
        if 1 in lines:
            rate = lines[1]["flops_per_iter"] / lines[1]["compute_sec_per_iter"] / max(1, cores)
    if rate is None:
        print("--project-only needs --compute-rate (flop/s per rank)", file=sys.stderr)
        return 1
    print(f"# projection: 1e6 x 1e5 dense, per-rank compute rate {rate / 1e9:.1f} GFLOP/s "
          f"(measured here, per core), network {args.bandwidth / 1e9:.0f} GB/s per rank, "
          f"latency {args.latency * 1e6:.0f} us")
    for row in project(rate, args.k, args.bandwidth, args.latency):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
