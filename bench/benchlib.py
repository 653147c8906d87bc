"""Helpers shared by the benchmark scripts: seeded data, timing, the floor
of one NMF iteration measured with numpy, and a description of the machine.

Nothing here imports unmix at module level: ``perf_worker.py`` imports this
file from the separate virtual environment of the peers, where unmix is not
installed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

NOISE = 0.01
# numpy and unmix._core may load two different OpenBLAS libraries; the idle
# worker threads of one spin for a while after a call and slow the other on
# a small machine. A pause between the phases lets them fall asleep.
SETTLE_SEC = 0.2


def use_shared_data() -> Optional[Path]:
    """Points ``UNMIX_DATA`` (where :func:`unmix.datasets.data_folder`
    looks) at this repository's reference data, ``../shared/data`` beside
    the project, when it is unset and that folder exists, as
    tools/run-tests and the tests do; returns the folder used, if any."""
    if os.environ.get("UNMIX_DATA"):
        return Path(os.environ["UNMIX_DATA"])
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not shared.is_dir():
        return None
    os.environ["UNMIX_DATA"] = str(shared)
    return shared


def make_dense(shape: tuple[int, int], rank: int, dtype: Any, seed: int) -> np.ndarray:
    """Low rank plus 1 % noise: X = W H + 0.01 * mean(W H) * |N(0, 1)|,
    C-ordered (n_samples, n_features), non-negative; W uniform, H uniform
    to the 4th power (peaky spectra)."""
    rng = np.random.default_rng(seed)
    m, n = shape
    W = rng.random((m, rank))
    H = rng.random((rank, n)) ** 4
    X = W @ H
    scale = NOISE * float(X.mean())
    rows = max(1, (1 << 22) // n)  # noise in blocks of ~32 MB: no second full-size array
    for start in range(0, m, rows):
        block = X[start:start + rows]
        block += scale * np.abs(rng.standard_normal(block.shape))
    return np.ascontiguousarray(X, dtype=dtype)


def make_sparse(shape: tuple[int, int], rank: int, density: float, dtype: Any, seed: int):
    """A CSR matrix whose stored entries are those of a low-rank W H (as in
    :func:`make_dense`) plus 1 % noise, at uniformly random distinct places."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    m, n = shape
    nnz = int(round(density * m * n))
    # Draw a few more places than needed, keep the distinct ones: no
    # duplicates, so the matrix is canonical and nothing converts it.
    flat = np.unique(rng.integers(0, m * n, size=int(nnz * 1.01) + 16, dtype=np.int64))
    flat = rng.permutation(flat)[:nnz]
    flat.sort()
    rows, cols = np.divmod(flat, n)
    W = rng.random((m, rank))
    H = rng.random((rank, n)) ** 4
    values = np.empty(len(flat))
    for start in range(0, len(flat), 1 << 18):  # W[i] . H[:, j] in blocks
        sl = slice(start, start + (1 << 18))
        values[sl] = np.einsum("ij,ji->i", W[rows[sl]], H[:, cols[sl]])
    values += NOISE * values.mean() * np.abs(rng.standard_normal(len(values)))
    X = sp.csr_matrix((values.astype(dtype), (rows, cols)), shape=shape)
    X.sort_indices()
    return X


def settle() -> None:
    time.sleep(SETTLE_SEC)


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm up: first-touch, thread start-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_products(X: Any, k: int, repeats: int, seed: int) -> dict[str, Any]:
    """Time of the two products an iteration cannot avoid, on X's memory.

    Each product is timed in two equivalent BLAS formulations (OpenBLAS is
    much faster on some shapes than on others) and the faster one counts:
    the floor is what BLAS can do, not what one call order happens to give.
    """
    m, n = X.shape
    rng = np.random.default_rng(seed + 1)
    # The core's factors are column-major: A ~ the samples' factor (m x k),
    # B ~ the features' factor (n x k).
    A = np.asfortranarray(rng.random((m, k)), dtype=X.dtype)
    B = np.asfortranarray(rng.random((n, k)), dtype=X.dtype)
    At, Bt = A.T, B.T  # C-ordered views (k x m), (k x n)
    candidates = {
        # M @ H with M = X.T: (n x k)
        "XT_A": {"X.T @ A": lambda: X.T @ A, "(A.T @ X).T": lambda: At @ X},
        # M.T @ W: (m x k)
        "X_B": {"X @ B": lambda: X @ B, "(B.T @ X.T).T": lambda: Bt @ X.T},
    }
    total = 0.0
    chosen = {}
    for product, forms in candidates.items():
        times = {form: median_time(fn, repeats) for form, fn in forms.items()}
        form = min(times, key=times.__getitem__)
        chosen[product] = {"form": form, "sec": times[form], "all": times}
        total += times[form]
    return {"sec": total, "detail": chosen}


def parallel_sum(X: np.ndarray, threads: int) -> float:
    """The sum of X's memory in `threads` contiguous pieces at once (numpy
    lets go of the GIL while it sums): the read rate of every core."""
    from concurrent.futures import ThreadPoolExecutor

    flat = X.reshape(-1, order="A")  # a view: X is contiguous in C or F order
    bounds = np.linspace(0, flat.size, threads + 1).astype(np.int64)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = pool.map(lambda p: float(flat[bounds[p]:bounds[p + 1]].sum()), range(threads))
        return float(sum(parts))


def measure_read(X: np.ndarray, repeats: int) -> dict[str, Any]:
    """The fastest memory-bound pass over a dense X: ``X @ ones``, ``X.sum()``,
    or X summed in contiguous pieces on every core at once."""
    ones = np.ones(X.shape[1], dtype=X.dtype)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    times = {"X @ ones": median_time(lambda: X @ ones, repeats),
             "X.sum()": median_time(X.sum, repeats)}
    if threads > 1:
        times[f"X.sum() in {threads} pieces at once"] = median_time(lambda: parallel_sum(X, threads),
                                                                  repeats)
    return {"sec": min(times.values()), "detail": times}


def measure_floor(X: np.ndarray, k: int, repeats: int, seed: int) -> dict[str, Any]:
    """floor = max(the two products, twice the read of X), in seconds."""
    products = measure_products(X, k, repeats, seed)
    read = measure_read(X, repeats)
    return {
        "floor_products_sec": products["sec"],
        "floor_read_sec": read["sec"],
        "floor_sec": max(products["sec"], 2.0 * read["sec"]),
        "floor_detail": {**products["detail"], "read": read["detail"]},
    }


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info(versions_of: Iterable[str] = ("unmix",)) -> dict[str, Any]:
    """Platform, CPUs, load, library versions and the BLAS libraries that
    threadpoolctl sees (numpy's and the one unmix links can differ)."""
    import importlib

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    for name in versions_of:
        try:
            info[name] = importlib.import_module(name).__version__
        except ImportError:
            info[name] = None
    if hasattr(os, "getloadavg"):
        info["loadavg_1min"] = os.getloadavg()[0]  # other work on the machine skews times
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["blas"] = None
    else:
        # After `import unmix`, both numpy's BLAS and the one unmix._core
        # links are loaded and listed.
        info["blas"] = [
            {key: pool.get(key) for key in
             ("user_api", "internal_api", "version", "num_threads", "architecture",
              "threading_layer")} | {"library": Path(pool.get("filepath", "")).name}
            for pool in threadpool_info()
        ]
    return info


def venv_python(venv: Path, package: str, requirements: Sequence[str], log: Callable[[str], Any],
                timeout: float = 600) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """(python, version of ``package``, None) of the virtual environment
    ``venv``, created (``python -m venv``) and filled (``pip install
    requirements``) on first use; (None, None, reason) when that fails. The
    peers that pin other versions of numpy or HyperSpy live in such
    environments, never in unmix's."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import importlib.metadata as m, {package}; "
             f"print(m.version({package!r}))"]

    def version() -> Optional[str]:
        if not python.exists():
            return None
        r = subprocess.run(probe, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    found = version()
    if found:
        return str(python), found, None
    log(f"# setting up {venv} for {package} (python -m venv; pip install "
        f"{' '.join(requirements)})")
    for cmd in ([sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", *requirements]):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, None, f"{' '.join(cmd[:3])}: {exc}"
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["(no output)"]
            return None, None, f"could not install {package} ({' '.join(cmd[:4])}): {tail[0]}"
    found = version()
    if not found:
        return None, None, f"{package} was installed but does not import"
    return str(python), found, None


def save_jsonl(lines: list[str], out: Path, stamp: _dt.datetime) -> Path:
    """Append the lines to ``out/<date>.jsonl`` and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stamp.date().isoformat()}.jsonl"
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")
    return path


def dumps(record: dict[str, Any]) -> str:
    """One JSON line; non-finite floats become null (strict JSON)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {key: clean(x) for key, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(record))
