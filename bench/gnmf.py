"""GNMF's clustering protocol: unmix's graph term against a reference GNMF.

    python bench/gnmf.py                      # digits (two scalings) + rotations, 10 runs each, ~10 min
    python bench/gnmf.py --quick              # digits only, 2 runs, ~1 min
    python bench/gnmf.py --mat COIL20.mat     # also a data set in Cai's .mat format (fea, gnd)
    python bench/gnmf.py --datasets digits-l2 --runs 20 --solvers bpp mu

Cai, He, Han & Huang, "Graph Regularized Nonnegative Matrix Factorization
for Data Representation", IEEE TPAMI 33(8), 2011 (GNMF). The paper factors
X (features x samples) ~ U V^T and minimizes

    O = ||X - U V^T||_F^2 + lambda tr(V^T L V),   L = D - S,

with the multiplicative updates

    V <- V * (X^T U + lambda S V) / (V U^T U + lambda D V)
    U <- U * (X V) / (U V^T V)

and, since O does not fix the scale of the factors, normalizes every column
of U to unit Euclidean norm (V scaled to keep U V^T) once the updates stop;
clustering is k-means on the rows of V. For samples in rows (our X, unmix's
orientation) V is unmix's W and U^T is unmix's H, and ``unmix.nmf(X, k,
graph_W=S, smooth_W=lambda)`` minimizes O halved, with the graph term at
rows of H of norm 1 / sqrt(n_features) (docs/solvers.rst, "The graph
term's scale"). The updates above do not keep U at unit norm: they keep V
near the scale of its random start and shrink U, so GNMF's lambda acts at
unit-norm U as lambda / ||u_j||^2, which the table's footnote reports.

The protocol, as Cai et al. ran it (their published demo: COIL20 NMI 0.744
for NMF, 0.876 for GNMF):

* data: every sample scaled to unit Euclidean norm ("digits-l2",
  "rotations", ``--mat``); "digits-unit" is scikit-learn's digits divided by
  16 (pixels in [0, 1]), the setting of the unmix issue;
* k = the number of classes; S the 5-nearest-neighbour graph with 0/1
  weights, symmetrized by "either is a neighbour of the other" (S = max(G,
  G^T)), Euclidean distances (``unmix.graphs.knn(X, 5, "binary")``);
  lambda = 100;
* reference GNMF ("ref GNMF", the updates above, our numpy code from the
  equations): U and V uniform random, U normalized; 10 such starts run 30
  iterations each, the one of lowest O goes on to 100 iterations in all
  (the reference implementation's defaults with the demo's maxIter = 100);
  lambda = 0 gives their NMF ("ref NMF");
* unmix: ``unmix.nmf(X, k, solver=..., graph_W=S, smooth_W=100,
  random_state=seed)`` with the library's defaults otherwise (init
  "nndsvda", tol 1e-5, max_iter 500); smooth_W = 0 for "unmix NMF";
* every representation is brought to the paper's scale (unit-norm basis,
  the samples' factor scaled to match) before k-means; "NMI raw" is k-means
  on unmix's W exactly as returned (no rescaling by the caller);
* k-means: scikit-learn's KMeans with 20 replicates (n_init=20; the demo's
  litekmeans 'Replicates', 20); NMI: sklearn's
  ``normalized_mutual_info_score`` (arithmetic normalization; Cai's own
  MutualInfo divides by the larger entropy, a little lower); accuracy: the
  best one-to-one map of clusters to classes (Hungarian);
* ``--runs`` runs with seeds 0, 1, ...: mean and standard deviation.

Data sets. Cai et al.'s image sets (COIL20, PIE, TDT2, ORL) are not shipped
by any Debian or PyPI package; give a copy in their .mat format with
``--mat``. Built in: scikit-learn's handwritten digits (1797 images of
8 x 8 pixels, 10 classes), in both scalings, and "rotations", a
COIL20-like set made from the two photographs scikit-learn ships: 20
round grey patches ("objects") turned through 360 degrees in 72 steps of 5
degrees, 32 x 32 pixels each, 1440 images — like COIL20's turntable
sequences, each class a closed one-dimensional manifold of poses. It is a
stand-in with the same structure, not COIL20: its figures are not the
paper's.

The KL variant of GNMF regularizes with a symmetric KL divergence between
rows of V, not with tr(V^T L V); unmix's ``loss="kl"`` keeps the Laplacian
term, so only the Frobenius form is compared here.

Prints one Markdown table per data set: mean NMI and accuracy, each as a
figure and as a ratio to ref NMF and to ref GNMF, iterations and seconds;
``--json`` also writes one JSON line per data set and method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

import unmix
import unmix.graphs

LAMBDA = 100.0
NEIGHBORS = 5


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Every sample scaled to unit Euclidean norm (Cai et al.'s normalization)."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def digits(scaling: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0 if scaling == "unit" else unit_rows(X)), y


def rotations(n_objects: int = 20, n_poses: int = 72, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The COIL20-like stand-in described in the module docstring."""
    from scipy.ndimage import rotate
    from sklearn.datasets import load_sample_images

    greys = [img.astype(float).mean(axis=2) / 255.0 for img in load_sample_images().images]
    side = 3 * size  # patches of 96 x 96, block-averaged to 32 x 32 after turning
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2.0
    disk = (xx**2 + yy**2) <= (side / 2.0) ** 2  # round, so turning brings no corners in
    candidates = []
    for g in greys:  # an even grid of patch centres over each photograph
        for r in np.linspace(side // 2, g.shape[0] - side // 2 - 1, 4).astype(int):
            for c in np.linspace(side // 2, g.shape[1] - side // 2 - 1, 6).astype(int):
                candidates.append(g[r - side // 2:r - side // 2 + side, c - side // 2:c - side // 2 + side])
    # The most textured ones: a plain patch (sky) is the same "object" at
    # every pose and as every other plain patch.
    contrast = [float(np.std(c[disk])) for c in candidates]
    patches = [candidates[i] for i in np.argsort(contrast)[::-1]]
    X, y = [], []
    for label, patch in enumerate(patches[:n_objects]):
        for t in range(n_poses):
            turned = rotate(patch, 360.0 * t / n_poses, reshape=False, order=1, mode="constant")
            turned = np.clip(turned, 0.0, None) * disk  # a black background, as COIL's
            X.append(turned.reshape(size, 3, size, 3).mean(axis=(1, 3)).ravel())
            y.append(label)
    return unit_rows(np.array(X)), np.array(y)


def from_mat(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A data set in Cai's format: ``fea`` (samples x features), ``gnd``."""
    from scipy.io import loadmat

    d = loadmat(path)
    X = np.asarray(d["fea"], dtype=float)
    X = X.toarray() if sp.issparse(X) else X
    return unit_rows(X), np.asarray(d["gnd"]).ravel()


# ---------------------------------------------------------------------------
# Reference GNMF (Frobenius form) from the paper's equations
# ---------------------------------------------------------------------------


def normalize_basis(V: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns of U to unit norm, V scaled to keep U V^T (zero columns kept)."""
    norms = np.linalg.norm(U, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    return V * norms, U / norms


def gnmf_objective(X: np.ndarray, V: np.ndarray, U: np.ndarray, lam: float, S: sp.spmatrix,
                   d: np.ndarray) -> float:
    fit = np.linalg.norm(X - V @ U.T) ** 2
    graph = np.sum(d[:, None] * V * V) - np.sum(V * (S @ V)) if lam > 0 else 0.0
    return float(fit + lam * graph)


def reference_gnmf(X: np.ndarray, k: int, S: sp.spmatrix, lam: float, seed: int, n_iter: int = 100,
                   n_starts: int = 10, start_iter: int = 30) -> tuple[np.ndarray, int, float]:
    """V (samples x k) of GNMF on X (samples x features), at unit-norm basis.

    The multiplicative updates of Cai et al. (V, then U, each iteration);
    n_starts random starts of start_iter iterations, the best by objective
    continued to n_iter iterations in all. Also the median of 1 / ||u_j||^2
    just before the final normalization: the factor by which lambda acts at
    unit-norm U (the updates keep V near the scale of its start and shrink
    U instead).
    """
    rng = np.random.default_rng(seed)
    n, m = X.shape
    d = np.asarray(S.sum(axis=1)).ravel()
    tiny = 1e-10  # the updates' guard against a zero denominator

    def iterate(V: np.ndarray, U: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(count):
            num = X @ U
            den = V @ (U.T @ U)
            if lam > 0:
                num += lam * (S @ V)
                den += lam * d[:, None] * V
            V = V * (num / np.maximum(den, tiny))
            U = U * ((X.T @ V) / np.maximum(U @ (V.T @ V), tiny))
        return V, U

    best = None
    for _ in range(n_starts):
        V, U = normalize_basis(rng.random((n, k)), rng.random((m, k)))
        V, U = iterate(V, U, start_iter)
        obj = gnmf_objective(X, V, U, lam, S, d)
        if best is None or obj < best[0]:
            best = (obj, V, U)
    V, U = iterate(best[1], best[2], n_iter - start_iter)
    factor = float(np.median(1.0 / np.maximum(np.sum(U * U, axis=0), 1e-300)))
    return normalize_basis(V, U)[0], n_iter, factor


# ---------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------


def accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    """Fraction right under the best one-to-one map of clusters to classes."""
    classes, clusters = np.unique(y), np.unique(labels)
    count = np.zeros((clusters.size, classes.size))
    for i, c in enumerate(clusters):
        for j, t in enumerate(classes):
            count[i, j] = np.sum((labels == c) & (y == t))
    rows, cols = linear_sum_assignment(-count)
    return float(count[rows, cols].sum() / y.size)


def cluster(V: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float]:
    labels = KMeans(n_clusters=np.unique(y).size, n_init=20, random_state=seed).fit_predict(V)
    return float(normalized_mutual_info_score(y, labels)), accuracy(y, labels)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------


def methods(solvers: list[str]) -> dict[str, Callable]:
    """name -> fit(X, k, S, seed) -> (V at the paper's scale, W as returned
    or None, n_iter, GNMF's effective factor on lambda or None)."""

    def ref(lam: float):
        def fit(X, k, S, seed):
            V, n_iter, factor = reference_gnmf(X, k, S, lam, seed)
            return V, None, n_iter, factor if lam > 0 else None
        return fit

    def ours(solver: str, lam: float):
        def fit(X, k, S, seed):
            graph = dict(graph_W=S, smooth_W=lam) if lam > 0 else {}
            r = unmix.nmf(X, k, solver=solver, random_state=seed, **graph)
            return normalize_basis(r.W, r.H.T)[0], r.W, r.n_iter, None
        return fit

    out = {"ref NMF": ref(0.0), "ref GNMF": ref(LAMBDA), "unmix NMF": ours("bpp", 0.0)}
    for solver in solvers:
        out[f"unmix graph {solver}"] = ours(solver, LAMBDA)
    return out


def run_dataset(name: str, X: np.ndarray, y: np.ndarray, runs: int, solvers: list[str]) -> list[dict]:
    k = np.unique(y).size
    S = unmix.graphs.knn(X, NEIGHBORS, weights="binary")
    rows = []
    for method, fit in methods(solvers).items():
        nmi, acc, raw, iters, secs, factors = [], [], [], [], [], []
        for seed in range(runs):
            t0 = time.perf_counter()
            V, W, n_iter, factor = fit(X, k, S, seed)
            if factor is not None:
                factors.append(factor)
            secs.append(time.perf_counter() - t0)
            iters.append(n_iter)
            a, b = cluster(V, y, seed)
            nmi.append(a)
            acc.append(b)
            if W is not None:
                raw.append(cluster(W, y, seed)[0])
        rows.append(dict(dataset=name, method=method, n_samples=X.shape[0], n_features=X.shape[1], k=k,
                         runs=runs, nmi=float(np.mean(nmi)), nmi_sd=float(np.std(nmi)),
                         acc=float(np.mean(acc)), acc_sd=float(np.std(acc)),
                         nmi_raw=float(np.mean(raw)) if raw else None,
                         lambda_factor=float(np.median(factors)) if factors else None,
                         n_iter=float(np.mean(iters)), seconds=float(np.mean(secs))))
        print(f"  {name}: {method} done", file=sys.stderr, flush=True)
    base = {r["method"]: r for r in rows}
    for r in rows:
        for ref in ("ref NMF", "ref GNMF"):
            key = ref.split()[1].lower()
            r[f"nmi_vs_{key}"] = r["nmi"] / base[ref]["nmi"]
            r[f"acc_vs_{key}"] = r["acc"] / base[ref]["acc"]
    return rows


def table(rows: list[dict]) -> str:
    r0 = rows[0]
    lines = [f"### {r0['dataset']} ({r0['n_samples']} x {r0['n_features']}, k = {r0['k']}, "
             f"{r0['runs']} runs, lambda = {LAMBDA:g}, {NEIGHBORS}-NN 0/1 graph)", "",
             "| method | NMI | NMI / ref NMF | NMI / ref GNMF | accuracy | acc / ref NMF | "
             "acc / ref GNMF | NMI raw | iterations | s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        raw = "" if r["nmi_raw"] is None else f"{r['nmi_raw']:.3f}"
        lines.append(f"| {r['method']} | {r['nmi']:.3f} ± {r['nmi_sd']:.3f} | {r['nmi_vs_nmf']:.3f} | "
                     f"{r['nmi_vs_gnmf']:.3f} | {r['acc']:.3f} ± {r['acc_sd']:.3f} | "
                     f"{r['acc_vs_nmf']:.3f} | {r['acc_vs_gnmf']:.3f} | {raw} | {r['n_iter']:.0f} | "
                     f"{r['seconds']:.2f} |")
    factor = next(r["lambda_factor"] for r in rows if r["method"] == "ref GNMF")
    lines += ["", f"ref GNMF's lambda acts at unit-norm basis as {factor:.3g} lambda (median "
                  f"1 / ||u_j||^2 before its final normalization); unmix's as n_features = "
                  f"{r0['n_features']} lambda."]
    return "\n".join(lines)


DATASETS = {
    "digits-unit": lambda: digits("unit"),
    "digits-l2": lambda: digits("l2"),
    "rotations": rotations,
}


def main(argv: "list[str] | None" = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    p.add_argument("--mat", nargs="*", default=[], help="data sets in Cai's .mat format (fea, gnd)")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--solvers", nargs="+", default=["bpp", "hals", "mu"])
    p.add_argument("--quick", action="store_true", help="digits-unit, 2 runs, bpp only")
    p.add_argument("--json", help="append one JSON line per data set and method to this file")
    a = p.parse_args(argv)
    if a.quick:
        a.datasets, a.runs, a.solvers = ["digits-unit"], 2, ["bpp"]
    sets = [(name, DATASETS[name]) for name in a.datasets]
    sets += [(path, lambda path=path: from_mat(path)) for path in a.mat]
    print(f"unmix {unmix.__version__}; {a.runs} runs per method\n")
    for name, load in sets:
        X, y = load()
        rows = run_dataset(name, X, y, a.runs, a.solvers)
        print(table(rows) + "\n", flush=True)
        if a.json:
            with open(a.json, "a") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
