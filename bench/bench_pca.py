#!/usr/bin/env python
"""unmix.pca against scikit-learn's PCA on the same matrices, in the same run.

For every matrix (the real maps of the reference data when ``UNMIX_DATA``
or ``../shared/data`` holds them, and a seeded synthetic low-rank-plus-
Poisson-noise image of ToF-SIMS size) and every k, it times

* ``unmix.pca(X, k)`` (method "auto", which takes the randomized method
  for few components of a large matrix; the scores are included),
* ``sklearn.decomposition.PCA(k, svd_solver="randomized", random_state=0)``
  and ``PCA(k, svd_solver="auto")``, ``fit_transform`` (scores included),

best of ``--repeats`` runs each, and prints the ratio of each peer's time to
unmix's (above 1: unmix is faster) and how far each method's explained
variances are from the exact ones (eigenvalues of the covariance, numpy):
the largest relative error over the k components. One JSON line per
(matrix, k) on stdout, a table on stderr. Nothing is asserted: the times
depend on the machine; the ratios, measured in the same run, are what
counts.

    python bench/bench_pca.py               # real maps + 16384 x 1024 synthetic, k = 5 10 20
    python bench/bench_pca.py --quick       # a 2000 x 300 synthetic matrix only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import machine_info, settle, use_shared_data  # noqa: E402

REAL = ("espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy", "bruker_50x50_SEM-EDS_AlAgCu.bcf",
        "renishaw_streamline_Raman_45x49x394.wdf", "nanonis_STS_grid_30x30x200.3ds")


def synthetic(shape: tuple[int, int], rank: int, seed: int) -> np.ndarray:
    """Poisson counts of a rank-``rank`` non-negative mean, ~50 counts per
    entry: a few strong axes over a flat noise spectrum, as in real maps."""
    rng = np.random.default_rng(seed)
    W = rng.gamma(1.0, 1.0, (shape[0], rank))
    H = rng.random((rank, shape[1])) ** 4
    mean = W @ H
    return rng.poisson(50.0 * mean / mean.mean()).astype(np.float64)


def real_matrices() -> dict[str, np.ndarray]:
    folder = use_shared_data()
    if folder is None or not (folder / "real").is_dir():
        print("# no reference data (UNMIX_DATA or ../shared/data): synthetic only",
              file=sys.stderr)
        return {}
    import warnings

    import unmix.io

    out = {}
    for name in REAL:
        path = folder / "real" / name
        if not path.exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = unmix.io.read(path)
        out[name.split("_")[0] + "_" + name.split("_")[1]] = np.ascontiguousarray(
            image.X, dtype=np.float64)
    return out


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        settle()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def exact_variances(X: np.ndarray) -> np.ndarray:
    """All explained variances (ddof 1), from the covariance's eigenvalues."""
    Xc = X - X.mean(axis=0)
    if X.shape[1] <= X.shape[0]:
        w = np.linalg.eigvalsh(Xc.T @ Xc)
    else:
        w = np.linalg.eigvalsh(Xc @ Xc.T)
    return np.clip(w[::-1], 0.0, None) / (X.shape[0] - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-real", action="store_true", help="the synthetic matrix only")
    args = parser.parse_args()

    import unmix
    from sklearn.decomposition import PCA

    if args.quick:
        matrices = {"synthetic_2000x300": synthetic((2000, 300), 6, 0)}
    else:
        matrices = {} if args.no_real else real_matrices()
        matrices["synthetic_16384x1024"] = synthetic((16384, 1024), 8, 0)
    machine = machine_info(("unmix", "numpy", "scikit-learn"))
    print(f"{'matrix':22s} {'shape':>12s} {'k':>3s} {'unmix s':>8s} {'method':>10s} "
          f"{'skl rand':>9s} {'skl auto':>9s} {'rand/unmix':>10s} {'auto/unmix':>10s} "
          f"{'err unmix':>9s} {'err rand':>9s} {'err auto':>9s}", file=sys.stderr)
    for name, X in matrices.items():
        exact = exact_variances(X)
        for k in args.k:
            if k > min(X.shape) // 2:
                continue
            t_unmix, ours = best_time(lambda: unmix.pca(X, k), args.repeats)
            t_rand, rand = best_time(
                lambda: (lambda p: (p, p.fit_transform(X)))(
                    PCA(k, svd_solver="randomized", random_state=0))[0], args.repeats)
            t_auto, auto = best_time(
                lambda: (lambda p: (p, p.fit_transform(X)))(
                    PCA(k, svd_solver="auto", random_state=0))[0], args.repeats)

            def err(ev: np.ndarray) -> float:
                return float(np.max(np.abs(ev - exact[:k]) / exact[:k]))

            record = {
                "matrix": name, "shape": list(X.shape), "k": k,
                "unmix_sec": t_unmix, "unmix_method": ours.method,
                "sklearn_randomized_sec": t_rand, "sklearn_auto_sec": t_auto,
                "sklearn_auto_solver": auto._fit_svd_solver,
                "ratio_randomized_to_unmix": t_rand / t_unmix,
                "ratio_auto_to_unmix": t_auto / t_unmix,
                "ev_relerr_unmix": err(ours.explained_variance),
                "ev_relerr_sklearn_randomized": err(rand.explained_variance_),
                "ev_relerr_sklearn_auto": err(auto.explained_variance_),
                "machine": machine,
            }
            print(json.dumps(record), flush=True)
            print(f"{name:22s} {'x'.join(map(str, X.shape)):>12s} {k:3d} {t_unmix:8.3f} "
                  f"{ours.method:>10s} {t_rand:9.3f} {t_auto:9.3f} "
                  f"{record['ratio_randomized_to_unmix']:10.2f} "
                  f"{record['ratio_auto_to_unmix']:10.2f} {record['ev_relerr_unmix']:9.1e} "
                  f"{record['ev_relerr_sklearn_randomized']:9.1e} "
                  f"{record['ev_relerr_sklearn_auto']:9.1e}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
