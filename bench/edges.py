"""Edge-preserving smoothness of the abundances: the default fit against
the two-step fit with ``smooth_W="auto"`` on ``unmix.graphs.edge_aware``
(its default graph) and on the uniform pixel grid, and three variants of
the pipeline.

    python bench/edges.py [--only espm,usgs,samson] [--cases particles_pure_N100,...]
                          [--out bench/results/edges.jsonl] [--no-variants]

Rows (one JSON line each in ``--out``; a table at the end):

- ``default``: ``unmix.unmix(image, k)``;
- ``smooth edge``: ``unmix.unmix(image, k, smooth_W="auto")`` (the default
  graph, edge-aware); ``smooth uniform``: the same with ``graph_W =
  graphs.grid(shape, 8)``;
- variants (a replica of the pipeline's steps, ``unmix.nmf`` on the
  prepared matrix): ``edge x1, H strict`` the abundance step on the
  endmembers of the strict refinement (the default's) instead of those of
  the scaled fit; ``filtered H + edge x1`` the endmembers fitted on the
  data averaged over the edge-aware graph (each pixel with its
  neighbours, weights S), then the abundance step on the data themselves;
  ``joint edge x1`` the smoothness in the endmember step too.

Scores: mean spectral angle (SAD, degrees) and abundance RMSE (rows
normalized) after the Hungarian matching; ``rmse_band`` / ``rmse_in`` the
RMSE on the pixels within one step of a true abundance change above 0.1
(the edges) and elsewhere; ``min_max`` the smallest largest fraction of a
component (< 0.01: a component died).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import espmlib  # noqa: E402
import unmix  # noqa: E402
from unmix import datasets, fractions, graphs, metrics  # noqa: E402
from unmix.noise import choose  # noqa: E402
from unmix.preprocess import AUTO_SMOOTH_W, noise_variance  # noqa: E402
from unmix.workflow import _express, _refine_strict, _restart_seeds, _seed_sequence  # noqa: E402

TOL, MAX_ITER = 1e-7, 3000


def band_mask(A: np.ndarray, shape: tuple[int, ...], threshold: float = 0.1) -> np.ndarray:
    """Pixels with a grid neighbour whose true abundances differ by more
    than ``threshold`` (L1)."""
    G = graphs.grid(shape, 8).tocoo()
    d = np.abs(A[G.row] - A[G.col]).sum(axis=1)
    m = np.zeros(A.shape[0])
    np.maximum.at(m, G.row, d)
    return m > threshold


def scores(E_true: np.ndarray, A_true: np.ndarray, E: np.ndarray, F: np.ndarray,
           band: np.ndarray) -> dict[str, float]:
    sad = metrics.spectral_angles(E_true, E)
    F = np.asarray(F, dtype=np.float64).reshape(A_true.shape[0], -1)
    out = {"sad": float(sad.mean),
           "rmse": float(metrics.abundance_rmse(A_true, F, sad, sum_to_one=True)),
           "min_max": float(F.max(axis=0).min())}
    Fa = F[:, np.asarray(sad.order)]
    Fa = Fa / np.maximum(Fa.sum(axis=1, keepdims=True), 1e-300)
    err = (Fa - A_true) ** 2
    if band.any() and (~band).any():
        out["rmse_band"] = float(np.sqrt(err[band].mean()))
        out["rmse_in"] = float(np.sqrt(err[~band].mean()))
    return out


def edge_graph(prep: Any, shape: tuple[int, ...], k: int) -> tuple[Any, dict]:
    return graphs.edge_aware(shape, prep.M, prep.channel_noise(), k, return_info=True)


class Replica:
    """The pipeline's steps on the prepared matrix (one restart, SPA start),
    for the variants the public options do not offer."""

    def __init__(self, X: np.ndarray, shape: tuple[int, ...], k: int, noise_model: str,
                 seed: int = 0) -> None:
        self.X, self.shape, self.k, self.nm = X, shape, k, noise_model
        self.seed = _restart_seeds(_seed_sequence(seed), 1)[0]
        t0 = time.perf_counter()
        prep = fractions.prepare(X, noise_model, k, True)
        lam, info = fractions.minvol_weight(prep.M[prep.keep], k, prep.noise[prep.keep])
        self.prep, self.lam, self.excess = prep, lam, info["excess_share"]
        self.opts = dict(sum_to_one=prep.targets, tol=TOL, max_iter=MAX_ITER, minvol_H=lam)
        self.r = unmix.nmf(prep.M, k, init="spa", random_state=self.seed, **self.opts)
        self.out = _express(self.r, prep, "scaled", None)
        self.seconds = time.perf_counter() - t0
        self.sigma2 = noise_variance(prep.M, k)

    def strict_H(self) -> Any:
        """The strict refinement's endmembers in the scaled matrix's space
        (None when the fit's fractions are "signal")."""
        if self.out[4] != "material":
            return None
        _, _, out = _refine_strict(self.X, self.k, self.prep, self.out, self.nm, self.opts,
                                   self.seed, {"minvol_H": self.lam})
        H = out[1] * self.prep.columns
        return H / H.sum(axis=1, keepdims=True)

    def filtered_H(self, S: Any) -> np.ndarray:
        """Endmembers fitted on the data averaged over the graph (I + S)."""
        n = self.prep.M.shape[0]
        A = sp.identity(n, format="csr") + S
        A = sp.diags(1.0 / np.asarray(A.sum(axis=1)).ravel()) @ A
        Mf = A @ self.prep.M
        nf = np.asarray(A.multiply(A) @ self.prep.noise).ravel()
        keep = self.prep.keep
        lam, _ = fractions.minvol_weight(Mf[keep], self.k, nf[keep])
        opts = dict(self.opts, minvol_H=lam)
        return unmix.nmf(Mf, self.k, init="spa", random_state=self.seed, **opts).H

    def joint(self, S: Any, factor: float) -> tuple[np.ndarray, np.ndarray]:
        sw = factor * AUTO_SMOOTH_W * self.sigma2
        r = unmix.nmf(self.prep.M, self.k, init="spa", random_state=self.seed, smooth_W=sw,
                      graph_W=S, **self.opts)
        out = _express(r, self.prep, "scaled", None)
        return out[1], out[0]

    def abundances(self, H: np.ndarray, S: Any, factor: float) -> tuple[np.ndarray, np.ndarray]:
        sw = factor * AUTO_SMOOTH_W * self.sigma2
        r = unmix.nmf(self.prep.M, self.k, fixed_H=H, random_state=self.seed, smooth_W=sw,
                      graph_W=S, sum_to_one=self.prep.targets, tol=TOL, max_iter=MAX_ITER)
        out = _express(r, self.prep, "scaled", None)
        return out[1], out[0]


def run_case(name: str, image: Any, E_true: np.ndarray, A_true: np.ndarray, out: Any,
             variants: bool) -> list[dict[str, Any]]:
    k = E_true.shape[0]
    shape = tuple(image.spatial_shape)
    X = np.asarray(image.X, dtype=np.float64)
    band = band_mask(A_true, shape)
    nm = choose(image.X, image.metadata).model
    records: list[dict[str, Any]] = []

    def emit(setting: str, E: Any, F: Any, seconds: float, **extra: Any) -> None:
        rec = {"case": name, "setting": setting, "seconds": seconds,
               **scores(E_true, A_true, E, F, band), **extra}
        records.append(rec)
        out.write(json.dumps(rec) + "\n")
        out.flush()
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in rec.items())
        print(shown, flush=True)

    t0 = time.perf_counter()
    u = unmix.unmix(image, k, random_state=0)
    emit("default", u.endmembers, u.abundances, time.perf_counter() - t0,
         excess=u.params["weights"].get("excess_share"), events=len(u.events))
    for setting, graph in (("smooth edge", {}), ("smooth uniform", {"graph_W": graphs.grid(shape, 8)})):
        t0 = time.perf_counter()
        u = unmix.unmix(image, k, random_state=0, smooth_W="auto", **graph)
        emit(setting, u.endmembers, u.abundances, time.perf_counter() - t0,
             graph=u.params["graph_W"] if isinstance(u.params["graph_W"], str) else "grid 8")
    if not variants:
        return records
    prep = fractions.prepare(X, nm, k, True)
    t0 = time.perf_counter()
    S, info = edge_graph(prep, shape, k)
    t_graph = time.perf_counter() - t0
    rep = Replica(X, shape, k, nm)
    t0 = time.perf_counter()
    Hs = rep.strict_H()
    if Hs is not None:
        E, F = rep.abundances(Hs, S, 1.0)
        emit("edge x1, H strict", E, F, rep.seconds + t_graph + time.perf_counter() - t0)
    t0 = time.perf_counter()
    E, F = rep.abundances(rep.filtered_H(S), S, 1.0)
    emit("filtered H + edge x1", E, F, rep.seconds + t_graph + time.perf_counter() - t0)
    t0 = time.perf_counter()
    E, F = rep.joint(S, 1.0)
    emit("joint edge x1", E, F, t_graph + time.perf_counter() - t0)
    return records


def espm_cases(only: Any) -> Any:
    for p in sorted(glob.glob(str(espmlib.cases_dir(0) / "*.npz"))):
        c = espmlib.load_case(Path(p))
        if only and c.label not in only:
            continue
        image = unmix.SpectralImage(c.X, channels=c.energy, channel_unit="keV")
        yield f"espm {c.label}", image, c.spectra, c.abundances.reshape(-1, c.k)


def usgs_cases(only: Any) -> Any:
    from real_data import variability_mixture

    for f in ("abundance_spatial_3em.mat", "abundance_squares_3em.mat"):
        tag = f.split("_")[1]
        for label, make in ((f"usgs {tag} 30 dB", lambda: datasets.usgs_mixture(f, snr_db=30, seed=1)),
                            (f"usgs {tag} 20 dB", lambda: datasets.usgs_mixture(f, snr_db=20, seed=1)),
                            (f"usgs {tag} Poisson 20/entry",
                             lambda: datasets.usgs_mixture(f, poisson=True, counts=20, seed=2))):
            if only and label not in only:
                continue
            d = make()
            yield label, d.image(), d.endmembers, d.abundances
        label = f"usgs {tag} variability 30 dB"
        if not only or label in only:
            image, E, A = variability_mixture(f, 30)
            yield label, image, E, A


def samson_cases(only: Any) -> Any:
    if only and "samson" not in only:
        return
    s = datasets.load_samson()
    yield "samson", s.image(), s.endmembers, s.abundances


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="espm,usgs,samson")
    parser.add_argument("--cases", default="", help="comma-separated case names")
    parser.add_argument("--out", default=str(HERE / "results" / "edges.jsonl"))
    parser.add_argument("--no-variants", action="store_true")
    args = parser.parse_args(argv)

    only = {c.strip() for c in args.cases.split(",") if c.strip()}
    parts = {"espm": espm_cases, "usgs": usgs_cases, "samson": samson_cases}
    records: list[dict[str, Any]] = []
    with open(args.out, "a") as out:
        for part in args.only.split(","):
            for name, image, E, A in parts[part](only):
                records += run_case(name, image, E, A, out,
                                    variants=not args.no_variants and part == "espm")
    print("\n| case | setting | SAD | RMSE | RMSE at edges | smallest max fraction | s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in records:
        print(f"| {r['case']} | {r['setting']} | {r['sad']:.2f} | {r['rmse']:.3f} | "
              f"{r.get('rmse_band', float('nan')):.3f} | {r['min_max']:.2f} | {r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
