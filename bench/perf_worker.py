#!/usr/bin/env python
"""One NMF method on one data set, in a fresh process (run by bench_perf.py).

The same protocol for every library, so that no method is measured in a
kinder way than another:

1. memory: load the data and the starting factors, note the peak resident
   memory (VmHWM, the per-process ru_maxrss), run one fit (``mem_iters``
   iterations) and report its growth. The first fit of a fresh process is
   the only one whose peak is visible, so a worker measures the memory of
   exactly one fit.
2. time per iteration: a 1-iteration fit under each thread setting; the
   fastest setting is kept; then ``(T(n) - T(1)) / (n - 1)`` with ``n``
   chosen so that T(n) lasts about ``probe_sec``, each T the least of
   ``repeats`` fits. The difference removes what every call pays once
   (input checks, the final error some libraries compute) and leaves the
   cost of one more iteration. When one iteration takes more than
   ``2 * probe_sec``, the other thread settings are not tried and n = 2,
   timed once. These fits start from the common start, so the trace
   reuses them.
3. trace: from the common start, the fit is continued to the points of
   :func:`ladder` (each call starts from the factors the previous one
   returned: for every method here but pyplanc's ADMM that is the same
   trajectory as one long fit), and after each the relative error
   ||X - W H||_F / ||X||_F is computed here, in float64, the same way for
   every method. It stops at the time or iteration budget, when one
   ladder step lowers the error by less than a millionth (converged), or
   when the error reaches ``stop_at`` (the target known so far, when the
   parent gives one).
4. time to target: on request, a fresh fit of the given number of
   iterations from the common start, timed by the wall clock (the faster
   of two when one is cheap); its error is checked against the target.

With ``"mode": "defaults"`` (bench_perf.py --defaults) the worker runs
none of that: it fits ``unmix.nmf(X, k, random_state=s)`` or
``sklearn.decomposition.NMF(n_components=k, random_state=s)`` with no other
option and no thread limit, after a tiny warm-up fit, and reports the wall
time of the call, the relative error computed here, the iterations and how
the fit stopped; for unmix, a second identical fit with a callback gives
the error after every iteration and the wall time since the call began
(see :func:`defaults`).

Usage: ``perf_worker.py SPEC.json``. Results are JSON lines on stdout;
commands (phase 4) are JSON lines on stdin. The libraries' own prints are
sent to stderr. Only numpy and scipy are needed besides the library of the
method, so the same file runs in pyplanc's virtual environment.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import warnings
from typing import Any, Iterator

import numpy as np

PLATEAU = 1e-6  # relative decrease per ladder step below which a trace is converged


def ladder() -> Iterator[int]:
    """Iteration counts at which a trace is read: every iteration up to 5,
    then 20 % more each time (6, 8, 10, 12, 15, 18, ...). Every method is
    read at the same points, so "iterations to target" has the same
    granularity for all."""
    n = 1
    while True:
        yield n
        n = n + 1 if n < 5 else math.ceil(n * 1.2)


def is_sparse(X: Any) -> bool:
    return hasattr(X, "tocoo")


def transposed_is_free(X: Any) -> bool:
    """C-ordered dense and CSR data are column-major (CSC) when transposed."""
    return X.format == "csr" if is_sparse(X) else X.flags.c_contiguous


class RelError:
    """||X - W H||_F / ||X||_F in float64, without a dense m x n temporary."""

    def __init__(self, X: Any) -> None:
        self.X = X
        if is_sparse(X):
            coo = X.tocoo()
            self.rows, self.cols = coo.row, coo.col
            self.vals = coo.data.astype(np.float64)
            self.norm2 = float(self.vals @ self.vals)
        else:
            self.step = max(1, (1 << 21) // X.shape[1])  # rows per ~16 MB float64 block
            self.norm2 = sum(float(np.sum(np.square(b, dtype=np.float64)))
                             for b in self._blocks(X))

    def _blocks(self, A: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, A.shape[0], self.step):
            yield A[start:start + self.step]

    def __call__(self, W: np.ndarray, H: np.ndarray) -> float:
        W = np.asarray(W, dtype=np.float64)
        H = np.asarray(H, dtype=np.float64)
        if not is_sparse(self.X) and self.X.dtype == np.float64:
            # ||X||^2 - 2 <W^T X, H> + <W^T W, H H^T>: one BLAS product, and
            # float64 keeps the cancellation harmless at errors ~ 1e-3.
            cross = float(np.sum((W.T @ self.X) * H))
            err2 = max(self.norm2 - 2.0 * cross + float(np.sum((W.T @ W) * (H @ H.T))), 0.0)
        elif is_sparse(self.X):
            # ||X||^2 - 2 <X, WH> + ||WH||^2; <X, WH> only at the stored entries.
            cross = 0.0
            for start in range(0, len(self.vals), 1 << 18):
                sl = slice(start, start + (1 << 18))
                cross += float(self.vals[sl] @ np.einsum(
                    "ij,ji->i", W[self.rows[sl]], H[:, self.cols[sl]]))
            wh2 = float(np.sum((W.T @ W) * (H @ H.T)))
            err2 = max(self.norm2 - 2.0 * cross + wh2, 0.0)
        else:
            err2 = 0.0
            for start in range(0, self.X.shape[0], self.step):
                block = np.asarray(self.X[start:start + self.step], dtype=np.float64)
                block = block - W[start:start + self.step] @ H
                err2 += float(np.sum(block * block))
        return math.sqrt(err2 / self.norm2) if self.norm2 > 0 else 0.0


# --- the methods: fit(X, W, H, n) runs n iterations from (W, H) -------------
# Every fit returns (W, H, iterations done) in scikit-learn's orientation,
# X ~ W @ H with W (m x k) and H (k x n).

class UnmixMethod:
    """unmix runs its kernels on threads of its own (n_threads) and its BLAS
    on one thread during a fit, so the setting tried is n_threads."""

    def __init__(self, solver: str) -> None:
        import unmix

        self.nmf = unmix.nmf
        # "bpp+her": bpp with extrapolate=True.
        self.solver, _, mode = solver.partition("+")
        self.extrapolate = mode == "her"
        self.settings = [{"n_threads": t} for t in thread_counts()]
        self.n_threads = None

    def apply(self, setting: dict[str, int]) -> None:
        self.n_threads = setting["n_threads"]

    def fit(self, X: Any, W: np.ndarray, H: np.ndarray, n: int):
        # tol=0: no early stop except when an iteration cannot lower the objective.
        r = self.nmf(X, W.shape[1], solver=self.solver, init="custom", W=W, H=H,
                     max_iter=n, tol=0.0, n_threads=self.n_threads, extrapolate=self.extrapolate)
        return r.W, r.H, r.n_iter


class SklearnMethod:
    def __init__(self, solver: str) -> None:
        from sklearn.decomposition import NMF
        from threadpoolctl import threadpool_limits

        self.NMF, self.limits, self.solver = NMF, threadpool_limits, solver
        self.settings = [{"blas_threads": t} for t in thread_counts()]
        warnings.simplefilter("ignore")  # the ConvergenceWarning of every short fit

    def apply(self, setting: dict[str, int]) -> None:
        self._limit = self.limits(setting["blas_threads"])

    def fit(self, X: Any, W: np.ndarray, H: np.ndarray, n: int):
        model = self.NMF(W.shape[1], solver=self.solver, init="custom", max_iter=n, tol=0.0)
        # Copies: scikit-learn may update the given arrays in place.
        W = model.fit_transform(X, W=W.copy(), H=H.copy())
        return W, model.components_, model.n_iter_


class PyplancMethod:
    """pyplanc.nmf factors M ~ W_p H_p^T; it takes column-major float64 (or
    CSC). A C-ordered (or CSR) X is handed over as M = X.T, which is
    column-major without a copy; otherwise M = X."""

    def __init__(self, algo: str) -> None:
        import ctypes
        import glob

        import pyplanc

        self.pyplanc, self.algo = pyplanc, algo
        # The library links its own OpenBLAS statically; its thread count is
        # set through the exported OpenBLAS call (threadpoolctl cannot see it).
        libs = glob.glob(os.path.join(os.path.dirname(pyplanc.__file__), "pyplanc.libs",
                                      "libnmflib*.so"))
        self.blas = ctypes.CDLL(libs[0]) if libs else None
        # Its OpenMP threads call BLAS: threads in both would oversubscribe
        # the cores, so the machine's cores go to one or the other.
        cpus = thread_counts()[0]
        self.settings = [{"ncores": cpus, "blas_threads": 1}]
        if cpus > 1:
            self.settings.append({"ncores": 1, "blas_threads": cpus})
        self.ncores = cpus

    def apply(self, setting: dict[str, int]) -> None:
        self.ncores = setting["ncores"]
        if self.blas is not None:
            self.blas.openblas_set_num_threads(setting["blas_threads"])

    def fit(self, X: Any, W: np.ndarray, H: np.ndarray, n: int):
        if transposed_is_free(X):
            M, Wp, Hp = X.T, H.T, W
        else:
            M, Wp, Hp = X, W, H.T
        out = self.pyplanc.nmf(M, W.shape[1], niter=n, algo=self.algo, ncores=self.ncores,
                               Winit=np.asfortranarray(Wp), Hinit=np.asfortranarray(Hp))
        if transposed_is_free(X):
            return np.asarray(out.H), np.asarray(out.W).T, n
        return np.asarray(out.W), np.asarray(out.H).T, n


def thread_counts() -> list[int]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return sorted({cpus or 1, 1}, reverse=True)


def make_method(name: str):
    library, solver = name.split(":")
    return {"unmix": UnmixMethod, "sklearn": SklearnMethod, "pyplanc": PyplancMethod}[library](
        solver)


# --- data --------------------------------------------------------------------

def load_data(spec: dict[str, Any]) -> Any:
    """Dense: one .npy in the order asked for. Sparse: the CSR/CSC arrays as
    separate .npy files, so that loading makes no temporary copy (which
    would raise the peak before the fit starts)."""
    path = spec["data"]
    if spec["sparse"]:
        import scipy.sparse as sp

        parts = [np.load(f"{path}.{part}.npy") for part in ("data", "indices", "indptr")]
        cls = sp.csr_matrix if spec["order"] == "C" else sp.csc_matrix
        return cls(tuple(parts), shape=tuple(spec["shape"]), copy=False)
    return np.load(path)


def warm_up(method: Any, sparse: bool, dtype: str) -> None:
    """A tiny fit before the baseline: lazy imports, BLAS buffers and thread
    start-up are the library's fixed cost, not the fit's."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 30)).astype(dtype)
    if sparse:
        import scipy.sparse as sp

        X = sp.csr_matrix(X)
    for setting in method.settings:
        method.apply(setting)
        method.fit(X, rng.random((40, 2)).astype(dtype), rng.random((2, 30)).astype(dtype), 2)
    method.apply(method.settings[0])


def peak_rss_bytes() -> int:
    """Peak resident memory of this process image. On Linux, VmHWM: the
    ru_maxrss of a child starts at the parent's peak (exec records the peak
    of the address space it replaces), which would hide a fit's growth
    below the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def timed_fit(method: Any, X: Any, W0: np.ndarray, H0: np.ndarray, n: int):
    t0 = time.perf_counter()
    W, H, done = method.fit(X, W0, H0, n)
    return time.perf_counter() - t0, W, H, done


def fastest_fit(method: Any, X: Any, W0: np.ndarray, H0: np.ndarray, n: int,
                repeats: int):
    """The least time of ``repeats`` fits: on a shared machine other work
    only ever adds time, so the minimum is the least noisy estimate."""
    return min((timed_fit(method, X, W0, H0, n) for _ in range(repeats)), key=lambda r: r[0])


def per_iteration(method: Any, X: Any, W0: np.ndarray, H0: np.ndarray,
                  spec: dict[str, Any]) -> dict[str, Any]:
    # The memory fit, first in the process, is not timed: its first touch
    # of fresh memory and lazy set-up can cost several iterations.
    probe, fits = [], {}
    for i, setting in enumerate(method.settings):
        method.apply(setting)
        # The first setting was warmed by the memory fit; a second fit of
        # the others lets them warm up too.
        fits[i] = fastest_fit(method, X, W0, H0, 1, spec["repeats"] if i else 1)
        probe.append({"setting": setting, "one_iter_sec": fits[i][0]})
        if fits[i][0] > 2 * spec["probe_sec"]:
            break  # seconds an iteration: keep the budget for the trace
    best = min(range(len(probe)), key=lambda i: probe[i]["one_iter_sec"])
    method.apply(probe[best]["setting"])
    t1, n1 = fits[best][0], fits[best][3]
    if t1 > 2 * spec["probe_sec"]:  # slow: one more iteration, once
        second = fastest_fit(method, X, W0, H0, 2, 1)
    else:
        n = 1 + int(min(max(round(spec["probe_sec"] / max(t1, 1e-9)), 1),
                        spec["probe_iters"]))
        second = fastest_fit(method, X, W0, H0, n, spec["repeats"])
    t2, n2 = second[0], second[3]
    # Fits from the start are points of the trace: no need to run them again.
    method.cache = {fit[3]: fit for fit in (fits[best], second)}
    if n2 > n1 and t2 > t1:
        sec, how = (t2 - t1) / (n2 - n1), "(T(n) - T(1)) / (n - 1)"
    else:  # stopped after one iteration, or timer noise on a tiny problem
        sec, how = t2 / max(n2, 1), "T(n) / n"
    return {"threads": probe[best]["setting"], "thread_probe": probe, "sec_per_iter": sec,
            "per_iter_how": how, "fits": [[n1, t1], [n2, t2]]}


def trace(method: Any, X: Any, W0: np.ndarray, H0: np.ndarray, error: RelError,
          spec: dict[str, Any], sec_per_iter: float, overhead: float = 0.0) -> dict[str, Any]:
    """The budget counts iterations at ``sec_per_iter``, not the wall time
    of the calls: a library that spends long in each call (checks, a final
    error, ``overhead`` seconds measured per call) would otherwise get fewer
    iterations. The wall clock only guards the length of the run: twice the
    budget plus the calls' overhead."""
    W, H = W0, H0
    done, fit_sec = 0, 0.0
    points = [[0, error(W, H), 0.0]]
    stop = "iterations"
    for point in ladder():
        if point > spec["trace_iters"]:
            break
        chunk = point - done
        if point in method.cache:  # the same iterations from the same start
            sec, W, H, _ = method.cache[point]
            fit_sec, did = max(fit_sec, sec), chunk
        else:
            sec, W, H, did = timed_fit(method, X, W, H, chunk)
            fit_sec += sec
        done += did
        points.append([done, error(W, H), fit_sec])
        if did < chunk:
            stop = "stopped"  # the method stopped by itself (unmix: no decrease)
            break
        if spec["stop_at"] is not None and points[-1][1] <= spec["stop_at"]:
            stop = "reached"
            break
        calls = len(points) - 1
        if done * sec_per_iter >= spec["trace_sec"] or fit_sec >= 2 * spec["trace_sec"] + calls * overhead:
            stop = "budget"
            break
        previous, current = points[-2][1], points[-1][1]
        if done >= 10 and previous - current <= PLATEAU * current:
            stop = "converged"
            break
    return {"trace": points, "trace_stop": stop, "trace_fit_sec": fit_sec}


def to_target(method: Any, X: Any, W0: np.ndarray, H0: np.ndarray, error: RelError,
              command: dict[str, Any]) -> dict[str, Any]:
    """A fresh fit of n iterations; if it misses the target (only when
    continuing a fit is not the same as running it longer), the next two
    ladder points."""
    tries = []
    for n, _ in zip(ladder_from(command["n_iter"]), range(3)):
        sec, W, H, done = timed_fit(method, X, W0, H0, n)
        if sec < command["repeat_below_sec"]:  # cheap: take the faster of two
            sec = min(sec, timed_fit(method, X, W0, H0, n)[0])
        err = error(W, H)
        tries.append({"n_iter": done, "sec": sec, "rel_error": err})
        if err <= command["target"]:
            return {"reached": True, "n_iter": done, "sec": sec, "rel_error": err,
                    "tries": tries}
    return {"reached": False, "tries": tries}


def defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit of a library at its defaults (only ``random_state`` given),
    timed by the wall clock from the call to its return. unmix is fitted a
    second time, the same way but with a callback: the same seed gives the
    same iterates, and the callback records, after every iteration, unmix's
    own relative error and the wall time since that call began, so the
    time to reach an error includes the initialization as the timed call's
    does."""
    library, k, seed = spec["library"], spec["k"], spec["random_state"]
    X = load_data(spec)
    error = RelError(X)
    rng = np.random.default_rng(0)
    tiny = rng.random((40, 30)).astype(spec["dtype"])
    if spec["sparse"]:
        import scipy.sparse as sp

        tiny = sp.csr_matrix(tiny)
    if library == "unmix":
        import inspect

        import unmix

        unmix.nmf(tiny, 2, random_state=seed)  # warm-up: imports, threads
        t0 = time.perf_counter()
        r = unmix.nmf(X, k, random_state=seed)
        sec = time.perf_counter() - t0
        out = {"sec": sec, "n_iter": int(r.n_iter), "rel_error": error(r.W, r.H),
               "own_rel_error": float(r.rel_error[-1]), "stop_reason": r.stop_reason,
               "converged": bool(r.converged), "solver": r.solver,
               "max_iter": inspect.signature(unmix.nmf).parameters["max_iter"].default}
        out["hit_max_iter"] = r.stop_reason == "max_iter"
        points: list[list[float]] = []

        def record(info: Any) -> None:
            points.append([info.iteration, info.rel_error, time.perf_counter() - t0,
                           info.elapsed])

        t0 = time.perf_counter()
        r2 = unmix.nmf(X, k, random_state=seed, callback=record)
        out.update(traced_sec=time.perf_counter() - t0, traced_n_iter=int(r2.n_iter),
                   traced_rel_error=error(r2.W, r2.H), trace=points)
        return out
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NMF(n_components=2, random_state=seed).fit_transform(tiny)  # warm-up
    model = NMF(n_components=k, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        W = model.fit_transform(X)
        sec = time.perf_counter() - t0
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return {"sec": sec, "n_iter": int(model.n_iter_), "rel_error": error(W, model.components_),
            "max_iter": model.max_iter, "hit_max_iter": int(model.n_iter_) >= model.max_iter,
            "convergence_warning": warned, "solver": model.solver,
            "stop_reason": "max_iter" if warned else "tol"}


def ladder_from(n: int) -> Iterator[int]:
    yield n
    yield from (p for p in ladder() if p > n)


def main() -> int:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    # Results go to the real stdout; anything the libraries print goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(event: str, **fields: Any) -> None:
        out.write(json.dumps({"event": event, **fields}) + "\n")
        out.flush()

    if spec["mode"] == "defaults":
        send("defaults", **defaults(spec))
        return 0
    method = make_method(spec["method"])
    warm_up(method, spec["sparse"], spec["dtype"])
    X = load_data(spec)
    W0, H0 = np.load(spec["start_W"]), np.load(spec["start_H"])
    baseline = peak_rss_bytes()
    sec, _, _, done = timed_fit(method, X, W0, H0, spec["mem_iters"])
    send("memory", order=spec["order"], extra_bytes=max(peak_rss_bytes() - baseline, 0),
         baseline_bytes=baseline, n_iter=done, sec=sec)
    if spec["mode"] == "memory":
        return 0

    timing = per_iteration(method, X, W0, H0, spec)
    send("per_iter", **timing)
    if not spec["trace"]:
        send("ready")
        return 0
    error = RelError(X)
    # What a call costs besides its iterations (checks, conversions, a copy
    # of X): the wall-clock guard of the trace allows it for every call.
    (n1, t1), _ = timing["fits"]
    overhead = max(0.0, t1 - n1 * timing["sec_per_iter"])
    send("trace", **trace(method, X, W0, H0, error, spec, timing["sec_per_iter"], overhead))
    send("ready")
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("quit"):
            break
        send("to_target", **to_target(method, X, W0, H0, error, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
