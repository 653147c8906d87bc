#!/usr/bin/env python
"""Performance of unmix's NMF against its floor and its peers, in one run.

For every case (a seeded, non-negative, low-rank-plus-1%-noise matrix) and
dtype, in the same run and on the same machine:

* the floor of one iteration, measured here: ``max(2 * bytes(X) / read
  bandwidth, 4 m n k / GEMM rate)`` (nnz instead of m n for sparse X), the
  bandwidth from the fastest pass over X and the rate from a square matmul;
  and the "products" floor of bench_solvers.py (``X.T @ A`` and ``X @ B``
  timed with numpy);
* for unmix's solvers (bpp, hals, mu) and the peers, scikit-learn's NMF
  (cd, mu) and pyplanc (anlsbpp, hals, mu, admm; in its own virtual
  environment, set up here), each in fresh worker processes
  (perf_worker.py, which documents the protocol), all from the same
  starting factors, each with the thread setting that ran fastest:
  time per iteration and its ratio to the floor; iterations and time to
  reach the target error (within 1 % of the best relative error any method
  reached on the case) and the ratio of every method's time to unmix's
  fastest; peak memory of one fit over the size of X, for C- and F-ordered
  input (CSR and CSC for sparse X).

``--defaults`` measures instead what a user comparing the two libraries
sees: ``unmix.nmf(X, k)`` and ``sklearn.decomposition.NMF(k)`` with only
``random_state`` given, each in a fresh worker with no thread limit (both
libraries' default: every core), on the same cases; the relative error is
computed by the worker for both; see :func:`run_defaults`.

Prints one JSON line per (case, dtype, method) and one with the targets per
(case, dtype) on stdout, the Markdown tables on stderr, and appends the JSON
lines to bench/results/<date>.jsonl. The targets are printed, never
asserted: absolute times on a shared machine are noise, the ratios are what
to read.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from benchlib import (dumps, machine_info, make_dense, make_sparse, measure_products,
                      measure_read, median_time, save_jsonl, settle, venv_python)

HERE = Path(__file__).resolve().parent
WORKER = HERE / "perf_worker.py"
DEFAULT_VENV = HERE / ".venv-pyplanc"
PYPLANC_REQUIREMENTS = ["pyplanc", "numpy<2.3", "scipy"]  # pyplanc 0.0.2 needs numpy < 2.3

# unmix:bpp+her is bpp with extrapolate=True (Ang & Gillis's extrapolation
# with restarts: not monotone, so asked for, not the default).
UNMIX = ["unmix:bpp", "unmix:bpp+her", "unmix:hals", "unmix:mu"]
PEERS = ["sklearn:cd", "sklearn:mu", "pyplanc:anlsbpp", "pyplanc:hals", "pyplanc:mu",
         "pyplanc:admm"]
METHODS = UNMIX + PEERS

# The targets the issue sets (printed next to the figures, never asserted).
TARGET_PER_ITER = 1.5       # time per iteration <= 1.5 x floor
TARGET_VS_SKLEARN_CD = 10.0  # time to target >= 10x faster than scikit-learn's cd
TARGET_VS_PYPLANC = 3.0     # ... >= 3x faster than pyplanc's fastest solver
TARGET_F32 = 1.7            # float32 >= 1.7x faster per iteration on memory-bound cases
TARGET_MEMORY = 1.1         # peak <= 1.1 x size(X) + O((m + n) k):
FACTOR_ARRAYS = 8           # ... with O((m + n) k) read as 8 factor-sized arrays
MEMORY_SLACK = 16 << 20     # ... plus 16 MiB for the interpreter's own allocations
TARGET_RATIO = 1.01         # target error = 1.01 x the best any method reached
# --defaults (issue 18): both libraries at their defaults.
TARGET_DEFAULTS_FINAL = 5.0   # unmix's whole fit, at an error <= sklearn's: >= 5x faster
TARGET_DEFAULTS_REACH = 10.0  # unmix reaches sklearn's final error >= 10x faster
TARGET_DEFAULTS_SPARSE = 2.0  # both, on a sparse case
DEFAULTS_SEED = 0             # random_state of both libraries


@dataclass(frozen=True)
class Case:
    shape: tuple[int, int]
    k: int
    quick_shape: tuple[int, int]
    trace_sec: float = 3.0     # fitting time allowed to unmix's error traces
    peer_sec: float = 3.0      # ... and at most to a peer's (see trace_budget)
    probe_sec: float = 0.5     # length of the timed fit for the time per iteration
    density: Optional[float] = None  # sparse when set
    quick_density: Optional[float] = None


# ToF-SIMS: the reference paper's 1535 masses x 16384 pixels (X is pixels x
# masses); XRD: 490000 patterns x 56 angles; a square and a sparse matrix.
CASES = {
    # tof_k4 has the long peer budget that decides the time-to-target
    # targets; elsewhere the budgets fit the whole run into ~15 minutes.
    "tof_k4": Case((16384, 1535), 4, (256, 96), trace_sec=4.0, peer_sec=30.0),
    "tof_k16": Case((16384, 1535), 16, (256, 96), trace_sec=4.0, peer_sec=4.0),
    "tof_k64": Case((16384, 1535), 64, (400, 160), trace_sec=2.0, peer_sec=2.0),
    "xrd_k6": Case((490000, 56), 6, (4000, 56), trace_sec=1.5, peer_sec=1.5),
    "square_k20": Case((8000, 8000), 20, (200, 200), trace_sec=1.5, peer_sec=1.5),
    "sparse_k20": Case((100000, 100000), 20, (2000, 2000), trace_sec=1.0, peer_sec=1.0,
                       density=1e-4, quick_density=1e-2),
}
QUICK_BUDGET = {"trace_sec": 0.3, "peer_sec": 0.3, "probe_sec": 0.02, "probe_iters": 5,
                "trace_iters": 40, "repeats": 1}
FULL_BUDGET = {"probe_iters": 50, "trace_iters": 1000, "repeats": 2}
GEMM_N = {"full": 2000, "quick": 300}


# --- data and floor ------------------------------------------------------------

def make_case_data(case: Case, quick: bool, seed: int) -> Any:
    shape = case.quick_shape if quick else case.shape
    if case.density is not None:
        density = case.quick_density if quick else case.density
        return make_sparse(shape, case.k, density, np.float64, seed)
    return make_dense(shape, case.k, np.float64, seed)


def nbytes(X: Any) -> int:
    if hasattr(X, "tocoo"):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def gemm_rate(dtype: np.dtype, n: int, repeats: int) -> float:
    """Flops per second of an n x n matmul: what the products could reach."""
    rng = np.random.default_rng(0)
    A = rng.random((n, n)).astype(dtype)
    B = rng.random((n, n)).astype(dtype)
    return 2.0 * n**3 / median_time(lambda: A @ B, repeats)


def measure_floor(X: Any, k: int, rate: float, repeats: int, seed: int) -> dict[str, Any]:
    """floor = max(2 * bytes(X) / bandwidth, 4 * m * n * k / rate), and the
    products floor; for sparse X nnz replaces m * n, the bandwidth comes
    from a pass over its values, and the products floor is part of the max."""
    if hasattr(X, "tocoo"):
        read_sec = median_time(X.data.sum, repeats)
        bandwidth = X.data.nbytes / read_sec
        flops = 4.0 * X.nnz * k
        read_detail: dict[str, float] = {"X.data.sum()": read_sec}
    else:
        read = measure_read(X, repeats)
        bandwidth = X.nbytes / read["sec"]
        flops = 4.0 * X.shape[0] * X.shape[1] * k
        read_detail = read["detail"]
    products = measure_products(X, k, repeats, seed)
    terms = {"memory": 2.0 * nbytes(X) / bandwidth, "compute": flops / rate}
    if hasattr(X, "tocoo"):
        # A sparse product gathers a row of the factor for every stored
        # entry: neither streaming bandwidth nor the GEMM rate bounds it,
        # and the measured products are the floor that means something.
        terms["products"] = products["sec"]
    bound = max(terms, key=terms.__getitem__)
    return {
        "floor_sec": terms[bound],
        "floor_read_sec": terms["memory"],
        "floor_flops_sec": terms["compute"],
        "floor_products_sec": products["sec"],
        "bound": bound,
        "bandwidth_bytes_per_sec": bandwidth,
        "gemm_flops_per_sec": rate,
        "floor_detail": {**products["detail"], "read": read_detail},
    }


def save_data(X: Any, folder: Path, order: str) -> str:
    """X in one order (CSR or CSC for sparse X) as .npy files the workers
    load without a copy; the path perf_worker.load_data expects."""
    path = folder / f"X_{order}"
    if hasattr(X, "tocoo"):
        Y = X.tocsr() if order == "C" else X.tocsc()
        for part in ("data", "indices", "indptr"):
            np.save(f"{path}.{part}.npy", getattr(Y, part))
        return str(path)
    np.save(f"{path}.npy", X if order == "C" else np.asfortranarray(X))
    return f"{path}.npy"


def save_inputs(X: Any, k: int, folder: Path, seed: int) -> dict[str, Any]:
    """The data in both orders and the common starting factors, as .npy
    files the workers load without a copy."""
    files: dict[str, Any] = {order: save_data(X, folder, order) for order in ("C", "F")}
    # One start for every method, scaled like scikit-learn's random init,
    # so the traces differ only by the algorithm.
    m, n = X.shape
    rng = np.random.default_rng(seed + 7)
    scale = np.sqrt(float(X.sum()) / (m * n) / k)
    np.save(folder / "W0.npy", (scale * rng.random((m, k))).astype(X.dtype))
    np.save(folder / "H0.npy", (scale * rng.random((k, n))).astype(X.dtype))
    files["start_W"], files["start_H"] = str(folder / "W0.npy"), str(folder / "H0.npy")
    return files


# --- pyplanc's environment -------------------------------------------------------

def pyplanc_python(venv: Path, log) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """(python, pyplanc version, None) of the virtual environment, created
    and filled on first use; (None, None, reason) when that fails."""
    return venv_python(venv, "pyplanc", PYPLANC_REQUIREMENTS, log)


# --- workers -----------------------------------------------------------------

class Worker:
    """A perf_worker.py process; its stdout lines arrive through a thread,
    so that waiting for them can time out."""

    def __init__(self, python: str, spec: dict[str, Any], folder: Path, name: str) -> None:
        spec_path = folder / f"{name}.json"
        spec_path.write_text(json.dumps(spec))
        self.log_path = folder / f"{name}.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen([python, str(WORKER), str(spec_path)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        self.lines: queue.Queue[Optional[str]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def read_until(self, last: str, timeout: float) -> tuple[dict[str, Any], Optional[str]]:
        """The events up to ``last``, and an error message if the worker
        died or timed out first."""
        events: dict[str, Any] = {}
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                return events, f"timed out after {timeout:.0f} s"
            if line is None:
                code = self.proc.wait()
                return events, f"worker exited with code {code}: {self.stderr_tail()}"
            event = json.loads(line)
            events[event.pop("event")] = event
            if last in events:
                return events, None

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send({"quit": True})
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr_tail(self) -> str:
        # pyplanc prints progress lines; keep what looks like an error.
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines()
                 if line.strip() and not line.startswith(("time taken", "completed constructor",
                                                          "OpenBLAS Warning"))]
        return " | ".join(lines[-3:]) or "(no message)"


# --- one case ------------------------------------------------------------------

def target_error(results: dict[str, Any]) -> tuple[float, float, float]:
    """(best, start, target): the best error any method reached, the error
    of the common start, and the target, within 1 % of the best. On data
    with no low-rank structure (sparse_k20: every error stays near 1) that
    is met by the start itself, so the target must also lie within 1 % of
    the best decrease from the start; on the dense cases the first
    condition is the stricter one. The target never falls below the error
    of a method that stopped because it had reached the target known
    then."""
    traces = [r["trace"] for r in results.values() if r.get("trace")]
    if not traces:
        return np.nan, np.nan, np.nan
    best = min(p[1] for trace in traces for p in trace)
    start = traces[0][0][1]
    target = min(TARGET_RATIO * best, best + (TARGET_RATIO - 1) * (start - best))
    # A method told to stop at the target known then must still count as
    # having reached it when a later method goes lower.
    stopped = [r["trace"][-1][1] for r in results.values() if r.get("trace_stop") == "reached"]
    return best, start, max([target, *stopped])


def trace_budget(method: str, results: dict[str, Any], budget: dict[str, float]
                 ) -> tuple[float, Optional[float]]:
    """(seconds, stop_at) for the trace of ``method``, given the methods run
    before it (unmix's solvers run first).

    The first method runs to the cap or to convergence and sets the target.
    The others stop once they reach the target known so far. A peer gets
    at most the time that decides its target: if scikit-learn's cd has not
    reached the target after 10x unmix's fastest time, unmix is at least
    10x faster, and a longer run would only make the ratio more precise
    (``--budget-scale`` buys that). Caps: the case's ``trace_sec`` for
    unmix, ``peer_sec`` for the peers."""
    best, _, target = target_error(results)
    cap = budget["trace_sec"] if method in UNMIX else budget["peer_sec"]
    if not np.isfinite(target):
        return cap, None
    if method in UNMIX:
        return cap, target
    t_unmix = [point[0] * results[mth]["sec_per_iter"] for mth in UNMIX
               if results.get(mth, {}).get("trace")
               for point in [first_reaching(results[mth]["trace"], target)] if point]
    if not t_unmix:
        return cap, target
    goal = TARGET_VS_SKLEARN_CD if method == "sklearn:cd" else TARGET_VS_PYPLANC
    return min(cap, 1.1 * goal * min(t_unmix)), target


def first_reaching(trace: list[list[float]], target: float) -> Optional[list[float]]:
    return next((point for point in trace[1:] if point[1] <= target), None)


def run_case(name: str, case: Case, X: Any, dtype: np.dtype, methods: list[str],
             pythons: dict[str, Optional[str]], skip: dict[str, str], budget: dict[str, Any],
             orders: list[str], trace_dtypes: list[str], floor: dict[str, Any], folder: Path,
             seed: int, log) -> list[dict[str, Any]]:
    files = save_inputs(X, case.k, folder, seed)
    m, n = X.shape
    base_spec = {"sparse": hasattr(X, "tocoo"), "shape": [m, n], "dtype": str(dtype),
                 "start_W": files["start_W"], "start_H": files["start_H"], "mem_iters": 1,
                 **budget}
    results: dict[str, dict[str, Any]] = {}
    workers: dict[str, Worker] = {}
    phase_timeout = 120 + 10 * (budget["peer_sec"] + budget["trace_sec"] + budget["probe_sec"])
    for method in methods:
        trace_sec, stop_at = trace_budget(method, results, budget)
        library = method.split(":")[0]
        results[method] = {"status": "ok", "memory": {}}
        reason = skip.get(library) or (
            "pyplanc takes float64 only" if library == "pyplanc" and dtype != np.float64
            else None)
        if reason:
            results[method].update(status="skipped", reason=reason)
            log(f"# {name} {dtype} {method}: skipped ({reason})")
            continue
        settle()
        spec = {**base_spec, "method": method, "order": "C", "data": files["C"], "mode": "full",
                "trace": str(dtype) in trace_dtypes, "trace_sec": trace_sec, "stop_at": stop_at}
        results[method]["trace_budget_sec"] = trace_sec
        started = time.perf_counter()
        worker = Worker(pythons[library], spec, folder, f"{method.replace(':', '_')}_C")
        events, error = worker.read_until("ready", phase_timeout)
        results[method]["worker_sec"] = time.perf_counter() - started
        if "memory" in events:
            results[method]["memory"]["C"] = events["memory"]
        results[method].update(events.get("per_iter", {}), **events.get("trace", {}))
        if error:
            results[method].update(status="failed", reason=error)
            log(f"# {name} {dtype} {method}: failed ({error})")
            worker.close()
            continue
        workers[method] = worker
        r = results[method]
        traced = (f"error {r['trace'][-1][1]:.5g} after {r['trace'][-1][0]} iterations "
                  f"({r['trace_stop']}); " if "trace" in r else "")
        log(f"# {name} {dtype} {method}: {r['sec_per_iter'] * 1e3:.4g} ms/iter "
            f"({r['sec_per_iter'] / floor['floor_sec']:.2f} x floor) with {r['threads']}; "
            f"{traced}{r['worker_sec']:.0f} s")

    best, start, target = target_error(results)
    for method, worker in workers.items():
        r = results[method]
        if "trace" not in r:  # a dtype without traces
            worker.close()
            continue
        point = first_reaching(r["trace"], target)
        if point is None:
            r["to_target"] = {"reached": False, "why": "not reached within the budget"}
            worker.close()
            continue
        settle()
        worker.send({"n_iter": int(point[0]), "target": target,
                     "repeat_below_sec": budget["probe_sec"] * 4})
        events, error = worker.read_until("to_target", phase_timeout)
        r["to_target"] = events.get("to_target", {"reached": False, "why": error})
        if not r["to_target"]["reached"] and "why" not in r["to_target"]:
            r["to_target"]["why"] = "a fresh fit of that many iterations missed the target"
        worker.close()

    # Peak memory for the other orders: a fresh process for one fit each.
    # Only for unmix, which promises to use either layout in place (and
    # only in float64: the layout code does not depend on the dtype); the
    # peers are measured on the C-ordered X their users typically have.
    for method in workers:
        for order in orders:
            if order == "C" or method not in UNMIX or (order == "F" and dtype != np.float64):
                continue
            library = method.split(":")[0]
            spec = {**base_spec, "method": method, "order": order, "data": files[order],
                    "mode": "memory"}
            worker = Worker(pythons[library], spec, folder,
                            f"{method.replace(':', '_')}_{order}")
            events, error = worker.read_until("memory", phase_timeout)
            results[method]["memory"][order] = events.get("memory", {"error": error})
            worker.close()
    if "C" not in orders:
        for r in results.values():
            r["memory"].pop("C", None)
    return summarize(name, case, X, dtype, results, floor, best, start, target)


def summarize(name: str, case: Case, X: Any, dtype: np.dtype, results: dict[str, Any],
              floor: dict[str, Any], best: float, start: float, target: float
              ) -> list[dict[str, Any]]:
    """One record per method, with the ratios to the floor, to unmix's
    fastest time to target, and of peak memory to the size of X."""
    m, n = X.shape
    size = nbytes(X)

    def seconds(r: dict[str, Any]) -> Optional[float]:
        t = r.get("to_target", {})
        return t["sec"] if t.get("reached") else None

    unmix_times = {mth: seconds(r) for mth, r in results.items()
                   if mth in UNMIX and seconds(r) is not None}
    unmix_best = min(unmix_times.values()) if unmix_times else None
    records = []
    for method, r in results.items():
        library, solver = method.split(":")
        rec: dict[str, Any] = {
            "record": "method", "case": name, "m": m, "n": n, "k": case.k,
            "dtype": str(dtype), "sparse": hasattr(X, "tocoo"),
            "nnz": int(X.nnz) if hasattr(X, "tocoo") else m * n, "bytes_X": size,
            "method": method, "library": library, "solver": solver,
            "status": r["status"], "reason": r.get("reason"), "worker_sec": r.get("worker_sec"),
            **{key: floor[key] for key in ("floor_sec", "floor_read_sec", "floor_flops_sec",
                                           "floor_products_sec", "bound")},
            "best_rel_error": best, "start_rel_error": start, "target_rel_error": target,
        }
        if "sec_per_iter" in r:
            rec.update(
                sec_per_iter=r["sec_per_iter"], per_iter_how=r["per_iter_how"],
                ratio_to_floor=r["sec_per_iter"] / floor["floor_sec"],
                ratio_to_products_floor=r["sec_per_iter"] / floor["floor_products_sec"],
                threads=r["threads"], thread_probe=r["thread_probe"])
        if "trace" in r:
            rec.update(trace=r["trace"], trace_stop=r["trace_stop"],
                       trace_budget_sec=r["trace_budget_sec"],
                       trace_fit_sec=r["trace_fit_sec"], final_rel_error=r["trace"][-1][1])
        to_target = r.get("to_target")
        if to_target is not None:
            rec["reached_target"] = bool(to_target.get("reached"))
            rec["to_target"] = to_target
            t = seconds(r)
            if t is not None:
                rec["iters_to_target"] = to_target["n_iter"]
                rec["sec_to_target"] = t
                if unmix_best is not None:
                    rec["time_to_target_vs_unmix_best"] = t / unmix_best
            else:
                rec["time_to_target_lower_bound_sec"] = at_least(r)
            if t is None and unmix_best is not None:
                rec["time_to_target_vs_unmix_best_at_least"] = at_least(r) / unmix_best
        rec["memory"] = {}
        for order, mem in r["memory"].items():
            if "extra_bytes" in mem:
                rec["memory"][order] = {
                    "extra_bytes": mem["extra_bytes"],
                    "peak_over_X": (size + mem["extra_bytes"]) / size,
                }
            else:
                rec["memory"][order] = mem
        if method in UNMIX and t_of(rec) is not None:
            # This solver's speed-up over each peer (> 1: unmix is faster).
            rec["speedup_vs"], rec["speedup_vs_at_least"] = {}, {}
            for peer, pr in results.items():
                if peer in UNMIX:
                    continue
                if seconds(pr) is not None:
                    rec["speedup_vs"][peer] = seconds(pr) / t_of(rec)
                elif pr.get("to_target") is not None and "trace" in pr:
                    rec["speedup_vs_at_least"][peer] = at_least(pr) / t_of(rec)
        records.append(rec)
    return records


def at_least(r: dict[str, Any]) -> float:
    """A lower bound on the time to target of a method whose trace ended
    above the target: it needs at least one iteration more than it did."""
    return (r["trace"][-1][0] + 1) * r["sec_per_iter"]


def t_of(rec: dict[str, Any]) -> Optional[float]:
    return rec.get("sec_to_target")


# --- the targets -----------------------------------------------------------------

def verdict(value: Optional[float], ok: bool, at_least: bool = False) -> str:
    if value is None:
        return "n/a"
    if at_least and not ok:
        return "?"  # a lower bound below the target decides nothing
    return "PASS" if ok else "MISS"


def targets(records: list[dict[str, Any]], float64_records: Optional[list[dict[str, Any]]]
            ) -> dict[str, Any]:
    """The issue's targets for one (case, dtype), from its method records."""
    by = {r["method"]: r for r in records}
    first = records[0]
    out: dict[str, Any] = {"record": "targets", "case": first["case"], "dtype": first["dtype"],
                           "bound": first["bound"]}
    unmix = [by[mth] for mth in UNMIX if mth in by and "ratio_to_floor" in by[mth]]
    if unmix:
        worst = max(unmix, key=lambda r: r["ratio_to_floor"])
        out["per_iter"] = {"worst_solver": worst["solver"], "ratio": worst["ratio_to_floor"],
                           "by_solver": {r["solver"]: r["ratio_to_floor"] for r in unmix},
                           "target": TARGET_PER_ITER,
                           "verdict": verdict(worst["ratio_to_floor"],
                                              worst["ratio_to_floor"] <= TARGET_PER_ITER)}
    fastest = min((r for r in unmix if r.get("sec_to_target") is not None),
                  key=lambda r: r["sec_to_target"], default=None)

    def speedup(peers: list[str], goal: float) -> dict[str, Any]:
        """unmix's fastest against the fastest of ``peers`` that ran."""
        ran = [by[p] for p in peers if p in by and by[p]["status"] == "ok"]
        if fastest is None or not ran:
            traced = any("trace" in r for r in unmix)
            why = ("no peer ran" if not ran else "not traced" if not traced
                   else "unmix did not reach the target")
            return {"verdict": "n/a", "why": why, "target": goal}
        reached = [r for r in ran if r.get("sec_to_target") is not None]
        if reached:
            peer = min(reached, key=lambda r: r["sec_to_target"])
            value = peer["sec_to_target"] / fastest["sec_to_target"]
            return {"unmix": fastest["solver"], "peer": peer["method"], "speedup": value,
                    "at_least": False, "target": goal, "verdict": verdict(value, value >= goal)}
        # No peer reached the target: the least time any of them spent
        # without reaching it bounds the speed-up from below.
        value = (min(r.get("time_to_target_lower_bound_sec", 0.0) for r in ran)
                 / fastest["sec_to_target"])
        return {"unmix": fastest["solver"], "peer": "none reached", "speedup": value,
                "at_least": True, "target": goal,
                "verdict": verdict(value, value >= goal, at_least=True)}

    out["vs_sklearn_cd"] = speedup(["sklearn:cd"], TARGET_VS_SKLEARN_CD)
    out["vs_pyplanc"] = speedup([p for p in PEERS if p.startswith("pyplanc:")],
                                TARGET_VS_PYPLANC)
    if first["dtype"] == "float32" and float64_records:
        f64 = {r["method"]: r for r in float64_records}
        ratios = {by[mth]["solver"]: f64[mth]["sec_per_iter"] / by[mth]["sec_per_iter"]
                  for mth in UNMIX if mth in by and "sec_per_iter" in by[mth]
                  and "sec_per_iter" in f64.get(mth, {})}
        if ratios:
            worst = min(ratios, key=ratios.__getitem__)
            memory_bound = float64_records[0]["bound"] == "memory"
            out["float32_speedup"] = {
                "worst_solver": worst, "ratio": ratios[worst], "by_solver": ratios,
                "memory_bound": memory_bound, "target": TARGET_F32,
                "verdict": verdict(ratios[worst], ratios[worst] >= TARGET_F32)
                if memory_bound else f"n/a ({float64_records[0]['bound']}-bound)"}
    peaks = [(r["solver"], order, mem["extra_bytes"]) for r in unmix
             for order, mem in r["memory"].items() if "extra_bytes" in mem]
    if peaks:
        solver, order, extra = max(peaks, key=lambda p: p[2])
        size, m, n, k = first["bytes_X"], first["m"], first["n"], first["k"]
        itemsize = np.dtype(first["dtype"]).itemsize
        allowed = ((TARGET_MEMORY - 1) * size + FACTOR_ARRAYS * (m + n) * k * itemsize
                   + MEMORY_SLACK)
        out["memory"] = {"worst_solver": solver, "order": order, "extra_bytes": extra,
                         "peak_over_X": (size + extra) / size, "allowed_extra_bytes": allowed,
                         "verdict": verdict(extra, extra <= allowed)}
    return out


# --- --defaults: both libraries at their defaults ------------------------------

def run_defaults(name: str, case: Case, X: Any, dtype: np.dtype, folder: Path, timeout: float,
                 log) -> dict[str, Any]:
    """unmix and scikit-learn at their defaults on one (case, dtype): one
    record with both fits, the speed-ups and the verdicts.

    Each library is fitted in a fresh worker (perf_worker.defaults), one
    after the other, with no thread limit: a user's default is every core
    for both. The targets: unmix's fit ends at an error <= scikit-learn's
    in <= 1/5 of its time; unmix's trace reaches scikit-learn's final
    error in <= 1/10 of its time; on sparse X, 2x for both."""
    m, n = X.shape
    sparse = hasattr(X, "tocoo")
    spec = {"mode": "defaults", "sparse": sparse, "shape": [m, n], "dtype": str(dtype),
            "order": "C", "data": save_data(X, folder, "C"), "k": case.k,
            "random_state": DEFAULTS_SEED}
    rec: dict[str, Any] = {
        "record": "defaults", "case": name, "m": m, "n": n, "k": case.k, "dtype": str(dtype),
        "sparse": sparse, "nnz": int(X.nnz) if sparse else m * n, "bytes_X": nbytes(X),
        "random_state": DEFAULTS_SEED, "status": "ok"}
    for library in ("unmix", "sklearn"):
        settle()
        started = time.perf_counter()
        worker = Worker(sys.executable, {**spec, "library": library}, folder,
                        f"defaults_{library}")
        events, error = worker.read_until("defaults", timeout)
        worker.close()
        if error:
            rec.update(status="failed", reason=f"{library}: {error}")
            log(f"# {name} {dtype} {library} at defaults: failed ({error})")
            return rec
        rec[library] = {**events["defaults"], "worker_sec": time.perf_counter() - started}
        r = rec[library]
        log(f"# {name} {dtype} {library} at defaults: {r['sec']:.3g} s, error "
            f"{r['rel_error']:.6g} after {r['n_iter']} iterations ({r['stop_reason']})")

    u, s = rec["unmix"], rec["sklearn"]
    rec["speedup"] = s["sec"] / u["sec"]
    rec["error_le_sklearn"] = u["rel_error"] <= s["rel_error"]
    # The first iteration at which unmix's own error is at most scikit-learn's
    # final one (both are ||X - WH|| / ||X||; the record keeps unmix's own
    # final error next to the worker's to show they agree).
    reach = next((p for p in u["trace"] if p[1] <= s["rel_error"]), None)
    rec["reached_sklearn_error"] = reach is not None
    if reach is not None:
        rec.update(iters_to_sklearn_error=int(reach[0]), sec_to_sklearn_error=reach[2],
                   speedup_to_sklearn_error=s["sec"] / reach[2])
    goal_final = TARGET_DEFAULTS_SPARSE if sparse else TARGET_DEFAULTS_FINAL
    goal_reach = TARGET_DEFAULTS_SPARSE if sparse else TARGET_DEFAULTS_REACH
    rec["target_final"] = {"target": goal_final, "verdict": verdict(
        rec["speedup"], rec["error_le_sklearn"] and rec["speedup"] >= goal_final)}
    rec["target_reach"] = {"target": goal_reach, "verdict": verdict(
        rec.get("speedup_to_sklearn_error"),
        rec.get("speedup_to_sklearn_error", 0.0) >= goal_reach)}
    if reach is None:
        rec["target_reach"].update(verdict="MISS", why="unmix never reached scikit-learn's error")
    return rec


def defaults_markdown(records: list[dict[str, Any]], header: str) -> str:
    rows = [header, "",
            "| case | dtype | unmix s | sklearn s | unmix error | sklearn error | unmix iters "
            "(stop) | sklearn iters (stop) | sklearn ÷ unmix | ≤ error & ≥ 5× (sparse 2×) "
            "| unmix s to sklearn's error | sklearn ÷ that | ≥ 10× (sparse 2×) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        head = f"| {r['case']} | {r['dtype']} |"
        if r["status"] != "ok":
            rows.append(f"{head} failed: {r['reason'][:80]} |" + " |" * 11)
            continue
        u, s = r["unmix"], r["sklearn"]
        le = "≤" if r["error_le_sklearn"] else ">"
        reach = (f"{r['sec_to_sklearn_error']:.3g} (it {r['iters_to_sklearn_error']})"
                 if r["reached_sklearn_error"] else "not reached")
        rows.append(
            f"{head} {u['sec']:.3g} | {s['sec']:.3g} | {u['rel_error']:.6g} {le} "
            f"| {s['rel_error']:.6g} | {u['n_iter']} ({u['stop_reason']}) "
            f"| {s['n_iter']} ({s['stop_reason']}) | {r['speedup']:.2f} "
            f"| {r['target_final']['verdict']} | {reach} "
            f"| {fmt(r.get('speedup_to_sklearn_error'))} | {r['target_reach']['verdict']} |")
    return "\n".join(rows)


def main_defaults(args: argparse.Namespace, log) -> int:
    """bench_perf.py --defaults: one record per (case, dtype), the table on
    stderr (and in --markdown), the run saved as perf_defaults.json (a
    --quick run as perf_defaults.quick.json) in --out."""
    machine = machine_info(("unmix", "sklearn", "scipy"))
    stamp = _dt.datetime.now().astimezone()
    mode = "quick" if args.quick else "full"
    common = {"mode": mode, "date": stamp.isoformat(timespec="seconds")}
    records = []
    with tempfile.TemporaryDirectory(prefix="unmix-bench-") as tmp:
        for name in args.cases:
            case = CASES[name]
            X64 = make_case_data(case, args.quick, args.seed)
            for dtype_name in args.dtypes:
                dtype = np.dtype(dtype_name)
                X = X64 if dtype == np.float64 else X64.astype(dtype)
                log(f"# {name} {dtype_name}: X {X.shape[0]} x {X.shape[1]}, k = {case.k}")
                folder = Path(tmp) / f"{name}_{dtype_name}"
                folder.mkdir()
                rec = {**run_defaults(name, case, X, dtype, folder, args.defaults_timeout, log),
                       "seed": args.seed, **common}
                shutil.rmtree(folder)
                print(dumps(rec), flush=True)
                records.append(rec)
                del X
    cpu = machine.get("cpu_model") or machine.get("processor") or "unknown CPU"
    load = machine.get("loadavg_1min")
    header = (f"{stamp.date().isoformat()}, {cpu}, {machine['cpu_count']} cores, load average "
              f"{'?' if load is None else f'{load:.2f}'} at the start ({mode} run, --defaults: "
              f"unmix {machine.get('unmix')}, scikit-learn {machine.get('sklearn')}, "
              "each library at its defaults with random_state=0)")
    table = defaults_markdown(records, header)
    log("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if not args.no_save:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / ("perf_defaults.quick.json" if args.quick else "perf_defaults.json")
        path.write_text(dumps({**common, "machine": machine, "records": records}) + "\n")
        log(f"# wrote {len(records)} records to {path}")
    return 0


# --- output ----------------------------------------------------------------------

def fmt(x: Optional[float], digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown(records: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> str:
    rows = ["| case | dtype | method | iter ÷ floor | iter ÷ products | iterations to target "
            "| time to target ÷ unmix's best | peak ÷ size(X), C | F |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        head = f"| {r['case']} | {r['dtype']} | {r['method']} |"
        if r["status"] == "skipped":
            rows.append(f"{head} skipped: {r['reason']} | | | | | |")
            continue
        if "sec_to_target" in r:
            iters = str(r["iters_to_target"])
            vs = fmt(r.get("time_to_target_vs_unmix_best"))
        elif "time_to_target_vs_unmix_best_at_least" in r:
            iters = "not reached"
            vs = f"> {r['time_to_target_vs_unmix_best_at_least']:.2f}"
        else:
            iters, vs = ("not reached" if "to_target" in r else "—"), "—"
        if r["status"] == "failed":
            iters = f"failed: {r['reason'][:60]}"
        mem = [fmt(r["memory"].get(o, {}).get("peak_over_X")) for o in ("C", "F")]
        rows.append(f"{head} {fmt(r.get('ratio_to_floor'))} "
                    f"| {fmt(r.get('ratio_to_products_floor'))} | {iters} | {vs} "
                    f"| {mem[0]} | {mem[1]} |")
    rows += ["", "| case | dtype | bound | iter ÷ floor ≤ 1.5 (worst unmix solver) "
             "| vs sklearn cd ≥ 10× | vs pyplanc's fastest ≥ 3× | float32 ≥ 1.7× float64 "
             "| peak ≤ 1.1 size(X) + O((m+n)k) |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        cells = []
        p = s.get("per_iter")
        cells.append(f"{p['ratio']:.2f} ({p['worst_solver']}) {p['verdict']}" if p else "n/a")
        for key in ("vs_sklearn_cd", "vs_pyplanc"):
            v = s[key]
            if "speedup" in v:
                sign = "≥ " if v["at_least"] else ""
                cells.append(f"{sign}{v['speedup']:.1f}× ({v['unmix']} vs "
                             f"{v['peer'].replace('pyplanc:', '')}) {v['verdict']}")
            else:
                cells.append(f"n/a ({v['why']})")
        f = s.get("float32_speedup")
        cells.append(f"{f['ratio']:.2f}× ({f['worst_solver']}) {f['verdict']}" if f else "—")
        mem = s.get("memory")
        cells.append(f"{mem['peak_over_X']:.2f} ({mem['worst_solver']}, {mem['order']}) "
                     f"{mem['verdict']}" if mem else "n/a")
        rows.append(f"| {s['case']} | {s['dtype']} | {s['bound']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def matrices(records: list[dict[str, Any]]) -> str:
    """The figures as (case, dtype) x method tables: time per iteration over
    the floor, time to target over unmix's fastest, peak memory over X."""
    methods = [m for m in METHODS if any(r["method"] == m and r["status"] == "ok"
                                         for r in records)]
    keys = list(dict.fromkeys((r["case"], r["dtype"]) for r in records))
    by = {(r["case"], r["dtype"], r["method"]): r for r in records}

    def to_target(r: dict[str, Any]) -> str:
        if "time_to_target_vs_unmix_best" in r:
            return fmt(r["time_to_target_vs_unmix_best"])
        if "time_to_target_vs_unmix_best_at_least" in r:
            return f"> {r['time_to_target_vs_unmix_best_at_least']:.2f}"
        return "not reached" if "to_target" in r else "—"

    tables = []
    for title, cell, only_traced in (
            ("time per iteration ÷ floor", lambda r: fmt(r.get("ratio_to_floor")), False),
            ("time to target ÷ unmix's fastest", to_target, True),
            ("peak memory ÷ size(X), C order",
             lambda r: fmt(r["memory"].get("C", {}).get("peak_over_X")), False)):
        rows = [f"| {title} | " + " | ".join(m.replace(":", " ") for m in methods) + " |",
                "|---" * (len(methods) + 1) + "|"]
        for case, dtype in keys:
            found = [by.get((case, dtype, m)) for m in methods]
            if only_traced and not any(r and "trace" in r for r in found):
                continue
            cells = [cell(r) if r and r["status"] == "ok" else "—" for r in found]
            rows.append(f"| {case} {dtype} | " + " | ".join(cells) + " |")
        tables.append("\n".join(rows))
    return "\n\n".join(tables)


def report(records: list[dict[str, Any]], summaries: list[dict[str, Any]],
           machine: dict[str, Any], date: str, mode: str) -> str:
    cpu = machine.get("cpu_model") or machine.get("processor") or "unknown CPU"
    load = machine.get("loadavg_1min")
    header = (f"{date}, {cpu}, {machine['cpu_count']} cores, load average "
              f"{'?' if load is None else f'{load:.2f}'} at the start ({mode} run)")
    return "\n\n".join([header, matrices(records), markdown(records, summaries)])


def from_jsonl(path: Path) -> str:
    """The tables of the last run saved in a .jsonl file."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = [r for r in lines if r.get("record") in ("method", "targets")]
    if not lines:
        raise SystemExit(f"{path}: no bench_perf.py records")
    last = [r for r in lines if r["date"] == lines[-1]["date"]]
    records = [r for r in last if r["record"] == "method"]
    summaries = [r for r in last if r["record"] == "targets"]
    return report(records, summaries, last[0]["machine"], last[0]["date"][:10], last[0]["mode"])


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--dtypes", nargs="+", choices=("float64", "float32"),
                   default=["float64", "float32"])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    p.add_argument("--orders", nargs="+", choices=("C", "F"), default=["C", "F"],
                   help="memory layouts of X whose peak memory is measured for unmix "
                        "(CSR and CSC for sparse X; F in float64 only); the peers get C")
    p.add_argument("--trace-dtypes", nargs="*", choices=("float64", "float32"),
                   default=["float64"],
                   help="dtypes whose error traces (and so times to target) are measured; "
                        "the others get time per iteration and memory only")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="multiplies every case's time budgets")
    p.add_argument("--repeats", type=int, default=3,
                   help="repeats of the floor's timings (median)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data")
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes and budgets: a smoke test of seconds, not a benchmark")
    p.add_argument("--no-pyplanc", action="store_true",
                   help="do not set up or run pyplanc")
    p.add_argument("--pyplanc-venv", type=Path, default=DEFAULT_VENV,
                   help="virtual environment for pyplanc, created when missing")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="folder of the <date>.jsonl files")
    p.add_argument("--no-save", action="store_true", help="print only, write no file")
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    p.add_argument("--defaults", action="store_true",
                   help="unmix.nmf(X, k) against sklearn's NMF(k), both at their defaults "
                        "(only random_state given), on the same cases; saved as "
                        "perf_defaults.json in --out")
    p.add_argument("--defaults-timeout", type=float, default=1800.0,
                   help="seconds one library's fit may take in --defaults")
    p.add_argument("--report", type=Path, metavar="JSONL",
                   help="print the tables of the last run saved in this file, run nothing")
    args = p.parse_args(argv)
    if args.budget_scale <= 0:
        p.error("--budget-scale must be > 0")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.report:
        print(from_jsonl(args.report))
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.defaults:
        return main_defaults(args, log)
    machine = machine_info(("unmix", "sklearn", "scipy"))
    stamp = _dt.datetime.now().astimezone()
    load = machine.get("loadavg_1min")
    if load is not None and load > 0.25 * (machine["cpu_count"] or 1):
        log(f"# warning: load average {load:.2f} on {machine['cpu_count']} CPUs: other work "
            "on this machine skews the times (the ratios less so)")

    pythons: dict[str, Optional[str]] = {"unmix": sys.executable, "sklearn": sys.executable}
    skip: dict[str, str] = {}
    if any(mth.startswith("pyplanc:") for mth in args.methods):
        if args.no_pyplanc:
            skip["pyplanc"] = "--no-pyplanc"
        else:
            python, version, reason = pyplanc_python(args.pyplanc_venv, log)
            pythons["pyplanc"] = python
            machine["pyplanc"] = version
            if reason:
                skip["pyplanc"] = reason
                log(f"# pyplanc skipped: {reason}")

    mode = "quick" if args.quick else "full"
    budget_base = QUICK_BUDGET if args.quick else FULL_BUDGET
    rates: dict[str, float] = {}
    lines, records_all, summaries = [], [], []
    with tempfile.TemporaryDirectory(prefix="unmix-bench-") as tmp:
        for name in args.cases:
            case = CASES[name]
            budget = {"trace_sec": case.trace_sec, "peer_sec": case.peer_sec,
                      "probe_sec": case.probe_sec, **budget_base}
            for key in ("trace_sec", "peer_sec", "probe_sec"):
                budget[key] *= args.budget_scale
            X64 = make_case_data(case, args.quick, args.seed)
            float64_records = None
            for dtype_name in args.dtypes:
                dtype = np.dtype(dtype_name)
                X = X64 if dtype == np.float64 else X64.astype(dtype)
                if dtype_name not in rates:
                    rates[dtype_name] = gemm_rate(dtype, GEMM_N[mode], args.repeats)
                settle()
                floor = measure_floor(X, case.k, rates[dtype_name], args.repeats, args.seed)
                log(f"# {name} {dtype_name}: X {X.shape[0]} x {X.shape[1]}, k = {case.k}; "
                    f"floor {floor['floor_sec'] * 1e3:.4g} ms ({floor['bound']}-bound), "
                    f"products {floor['floor_products_sec'] * 1e3:.4g} ms")
                folder = Path(tmp) / f"{name}_{dtype_name}"
                folder.mkdir()
                records = run_case(name, case, X, dtype, args.methods, pythons, skip, budget,
                                   args.orders, args.trace_dtypes, floor, folder, args.seed,
                                   log)
                shutil.rmtree(folder)  # the next case's data may be large
                common = {"mode": mode, "seed": args.seed, "budget": budget,
                          "date": stamp.isoformat(timespec="seconds"), "machine": machine}
                summary = {**targets(records, float64_records), **common}
                for rec in records:
                    rec.update(common, floor_detail=floor["floor_detail"],
                               bandwidth_bytes_per_sec=floor["bandwidth_bytes_per_sec"],
                               gemm_flops_per_sec=floor["gemm_flops_per_sec"])
                for rec in [*records, summary]:
                    line = dumps(rec)
                    lines.append(line)
                    print(line, flush=True)
                records_all += records
                summaries.append(summary)
                if dtype == np.float64:
                    float64_records = records
                del X

    tables = report(records_all, summaries, machine, stamp.date().isoformat(), mode)
    log("\n" + tables)
    if args.markdown:
        args.markdown.write_text(tables + "\n")
    if not args.no_save:
        path = save_jsonl(lines, args.out, stamp)
        log(f"# appended {len(lines)} lines to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
