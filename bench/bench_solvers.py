#!/usr/bin/env python
"""Time per iteration of unmix's NMF solvers against the floor measured in the same run.

The data is a seeded, dense, non-negative ToF-SIMS-sized image: X is 16384
pixels (128 x 128) x 1535 masses, low rank plus 1 % noise, so the core's
column-major M = X.T is the 1535 x 16384 matrix of the reference paper. For each k, the script measures

* the floor of one iteration: an alternating iteration cannot avoid the two
  products with the data, ``M @ H`` and ``M.T @ W`` where the core's M is
  ``X.T`` (C-ordered X seen column-major, without a copy), nor reading X twice.
  Both are timed with numpy on the same memory: ``X.T @ A`` (A: n_samples x k)
  and ``X @ B`` (B: n_features x k) for the products, and the fastest
  memory-bound pass over X (``X @ ones`` or ``X.sum()``) for the read.
  floor = max(products, 2 * read), medians of ``--repeats`` runs;
* the time per iteration of each solver: ``unmix.nmf`` with a fixed number of
  iterations (``tol=0``, ``init="random"``, ``random_state=0``),
  ``(timings["total"] - timings["init"]) / n_iter``, median of ``--repeats`` fits.

It prints one JSON line per (k, solver) on stdout, a readable table on
stderr, and appends the JSON lines to bench/results/<date>.jsonl. Nothing
here asserts a time: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

import unmix
from benchlib import machine_info, make_dense, measure_floor, save_jsonl, settle

HERE = Path(__file__).resolve().parent
FULL_SHAPE = (16384, 1535)  # 128 x 128 pixels x 1535 masses; the core's M = X.T is 1535 x 16384
QUICK_SHAPE = (120, 700)
TRUE_RANK = 8
SOLVERS = ("bpp", "hals", "mu")


def make_data(shape: tuple[int, int], dtype: np.dtype, seed: int) -> np.ndarray:
    """Rank 8 plus 1 % noise, C-ordered (n_samples, n_features), non-negative."""
    return make_dense(shape, TRUE_RANK, dtype, seed)


def time_solver(X: np.ndarray, k: int, solver: str, iters: int, repeats: int) -> dict[str, Any]:
    """Median time per iteration over ``repeats`` fits (after one warm-up fit)."""
    runs = []
    for r in range(repeats + 1):
        res = unmix.nmf(X, k, solver=solver, init="random", max_iter=iters, tol=0.0,
                        random_state=0)
        if r == 0:
            continue  # warm-up
        t = res.timings
        n_iter = max(res.n_iter, 1)
        runs.append({
            "sec_per_iter": (t["total"] - t["init"]) / n_iter,
            "products_per_iter": t["products"] / n_iter,
            "gram_per_iter": t["gram"] / n_iter,
            "update_per_iter": t["update"] / n_iter,
            "n_iter": res.n_iter,
            "stop_reason": res.stop_reason,
            "rel_error": float(res.rel_error[-1]),
        })
    best = sorted(runs, key=lambda run: run["sec_per_iter"])[len(runs) // 2]  # the median run
    return best


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--k", type=int, nargs="+", default=None,
                   help="ranks to time (default: 4 16)")
    p.add_argument("--iters", type=int, default=None,
                   help="iterations per fit (default: 20; 5 with --quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats of each timing, median reported (default: 5; 2 with --quick)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--solvers", nargs="+", choices=SOLVERS, default=list(SOLVERS))
    p.add_argument("--seed", type=int, default=0, help="seed of the data")
    p.add_argument("--quick", action="store_true",
                   help=f"a {QUICK_SHAPE[0]} x {QUICK_SHAPE[1]} matrix: a smoke test, "
                        "not a benchmark")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder of the <date>.jsonl files")
    p.add_argument("--no-save", action="store_true", help="print only, write no file")
    args = p.parse_args(argv)
    if args.k is None:
        args.k = [4, 16]
    if args.iters is None:
        args.iters = 5 if args.quick else 20
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    for name in ("iters", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if min(args.k) < 1:
        p.error("--k must be >= 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    shape = QUICK_SHAPE if args.quick else FULL_SHAPE
    case = "quick" if args.quick else "tof-sims"
    dtype = np.dtype(args.dtype)
    X = make_data(shape, dtype, args.seed)
    m, n = X.shape
    machine = machine_info()
    stamp = _dt.datetime.now().astimezone()

    lines = []
    load = machine.get("loadavg_1min")
    if load is not None and load > 0.25 * (machine["cpu_count"] or 1):
        print(f"# warning: load average {load:.2f} on {machine['cpu_count']} CPUs: other work "
              "on this machine will skew the times", file=sys.stderr)
    print(f"# {case}: X {m} x {n} {dtype}, {args.iters} iterations, median of "
          f"{args.repeats}; {machine['cpu_count']} CPUs", file=sys.stderr)
    print(f"# {'k':>3} {'solver':>6} {'s/iter':>10} {'floor':>10} {'ratio':>6} "
          f"{'products':>10} {'2*read':>10}  stop", file=sys.stderr)
    for k in args.k:
        settle()
        floor = measure_floor(X, k, args.repeats, args.seed)
        for solver in args.solvers:
            settle()
            run = time_solver(X, k, solver, args.iters, args.repeats)
            record = {
                "case": case,
                "m": m,
                "n": n,
                "k": k,
                "dtype": str(dtype),
                "solver": solver,
                "n_iter": run["n_iter"],
                "sec_per_iter": run["sec_per_iter"],
                "floor_products_sec": floor["floor_products_sec"],
                "floor_read_sec": floor["floor_read_sec"],
                "floor_sec": floor["floor_sec"],
                "ratio_to_floor": run["sec_per_iter"] / floor["floor_sec"],
                "breakdown_per_iter": {
                    "products": run["products_per_iter"],
                    "gram": run["gram_per_iter"],
                    "update": run["update_per_iter"],
                },
                "floor_detail": floor["floor_detail"],
                "stop_reason": run["stop_reason"],
                "rel_error": run["rel_error"],
                "iters": args.iters,
                "repeats": args.repeats,
                "seed": args.seed,
                "date": stamp.isoformat(timespec="seconds"),
                "machine": machine,
            }
            line = json.dumps(record)
            lines.append(line)
            print(line, flush=True)
            print(f"# {k:>3} {solver:>6} {record['sec_per_iter']:>10.4g} "
                  f"{record['floor_sec']:>10.4g} {record['ratio_to_floor']:>6.2f} "
                  f"{record['floor_products_sec']:>10.4g} {2 * record['floor_read_sec']:>10.4g}"
                  f"  {run['stop_reason']} after {run['n_iter']}", file=sys.stderr)

    if not args.no_save:
        path = save_jsonl(lines, args.out, stamp)
        print(f"# appended {len(lines)} lines to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
