"""Unmixing quality against ground truth: unmix and scikit-learn side by side.

    python bench/quality.py                 # every dataset and setting, ~100 s CPU
    python bench/quality.py --quick         # the synthetic mixtures only, ~1 min
    python bench/quality.py --sweep gaussian   # weights over seeds x maps x SNR x starts, ~3 min
    python bench/quality.py --sweep poisson    # KL vs Frobenius over maps x counts x seeds, ~5 min
    python bench/quality.py --data DIR      # where shared/data is (default: found upwards)

Datasets: the real Samson image; mixtures of USGS-library spectra on the two
reference abundance maps (50 x 50 "spatial", 70 x 70 "squares") with white
Gaussian noise at 30 and 20 dB SNR; and the same mixtures as Poisson counts,
50 expected counts per pixel and channel on average (``usgs_mixture(...,
poisson=True, counts=50)``, about 17.6 dB).

For each dataset and setting one JSON line: mean spectral angle (SAD,
degrees, after Hungarian matching), abundance RMSE as the literature reports
it (rows normalized to sum to one), the scale-matched abundance RMSE
(``rmse_matched``: each component first rescaled by the least-squares scale
of its spectrum on the true one, which is fair to an unconstrained NMF whose
components come out at arbitrary scales), the relative reconstruction error
and seconds; then a Markdown table and the summary lines.

Every unmix setting of one block starts from the same factors: the SPA start
(endmembers = the pixels SPA picks, abundances = their NNLS fit, both floored
at 1e-3 of their maximum so that multiplicative updates can move every entry),
given to scikit-learn as ``init="custom"`` too; or ``init="random"`` with the
same seed. scikit-learn's NMF also runs with its defaults (best of 3 seeds by
reconstruction error), as a user would.

The weights are scale-free (``relative_smoothness``, ``relative_minvol``):
both are multiples of the noise variance per entry, estimated from the
differences of neighbouring pixels (``noise_variance``), so the same numbers
work at any data scale and SNR. The recommended constrained fit
(``constrained_unmix``) is sum-to-one + minimum volume for the endmembers,
then the abundances re-fitted with the endmembers held fixed, sum-to-one +
spatial smoothness: jointly with free endmembers the smoothness term of a
sum-to-one model has a direction of descent that costs no fit (contract every
abundance towards the mean, expand the endmembers by the inverse map) and the
fit drifts along it (the "sum_to_one + smooth" rows show it).

Where sum-to-one does not hold, none of this helps: Samson's pixel totals
vary tenfold (shading, dark water), and every sum_to_one fit there is worse
than plain NMF from the same start (SAD 6 deg plain, 9 deg sum_to_one at the
default tolerance, 23-24 deg converged).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import warnings
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp

import unmix
import unmix.graphs as graphs
import unmix.metrics as metrics
from unmix import datasets
from unmix._nmf import _fit  # the W-only half of nmf (update_H=False); see constrained_unmix
from unmix.endmembers import abundances_from_endmembers, spa, vca

MAPS = ("abundance_spatial_3em.mat", "abundance_squares_3em.mat")

#: Scale-free weights of the recommended fit (see the helpers below).
MINVOL = 0.01     # minimum-volume weight, relative (relative_minvol)
SMOOTH = 30.0     # 1 / tau^2 of the abundance smoothness on graphs.grid(shape, 8)
TOL = 1e-7        # tolerance of the constrained fits (run to convergence)
COUNTS = 50.0     # mean counts per entry of the Poisson variant


# ---------------------------------------------------------------------------
# Scale-free weights: helpers that can move into the library as they are
# ---------------------------------------------------------------------------


def noise_variance(X: np.ndarray, spatial_shape: tuple[int, ...]) -> float:
    """Noise variance per entry, from the image alone: the median over
    4-neighbour pixel pairs of ``||x_i - x_j||^2 / (2 n_channels)``.

    Neighbouring pixels have nearly the same signal except across edges,
    which the median ignores; unbiased for white noise when most pairs lie
    inside smooth regions (here within 5 % of the true variance)."""
    G = graphs.grid(spatial_shape, 4).tocoo()
    keep = G.row < G.col
    d2 = np.einsum("ij,ij->i", X[G.row[keep]] - X[G.col[keep]], X[G.row[keep]] - X[G.col[keep]])
    return float(np.median(d2) / (2 * X.shape[1]))


def relative_smoothness(X: np.ndarray, spatial_shape: tuple[int, ...],
                        strength: float = SMOOTH) -> float:
    """``smooth_W`` for abundances on the simplex: ``strength * sigma^2``.

    With sum-to-one abundances, ``1/(2 sigma^2) ||X - WH||^2 + 1/(2 tau^2)
    sum_edges ||w_i - w_j||^2`` is the negative log-posterior of Gaussian
    noise and Gaussian abundance steps of size tau between neighbours: the
    weight of ``½ smooth_W tr(Wᵀ L W)`` beside ``½ ||X - WH||^2`` is
    ``sigma^2 / tau^2``. ``strength = 1/tau^2`` is dimensionless (abundances
    are fractions), so it does not depend on the data's units, its scale or
    its SNR; the noise variance does, and sets the weight."""
    return strength * noise_variance(X, spatial_shape)


def relative_minvol(X: np.ndarray, spatial_shape: tuple[int, ...],
                    strength: float = MINVOL) -> float:
    """``minvol_H`` as ``strength * n_pixels * n_channels * sigma^2``: a
    multiple of the expected residual ``||X - WH||^2`` at the noise level.

    Scaling the data by s scales the fit term by s^2 and shifts
    ``log det(H Hᵀ + δI)`` by a constant (δ follows the start's scale), so a
    weight proportional to s^2 keeps the minimizer; with the noise in the
    weight, the volume term gives way to the fit as the data get cleaner.
    (Leplat, Gillis & Ang 2020 divide by ``|log det|`` of the start too,
    which is not scale-free: it changes by k log s^2.)"""
    return strength * X.size * noise_variance(X, spatial_shape)


def edge_aware_grid(X: np.ndarray, spatial_shape: tuple[int, ...],
                    connectivity: int = 8) -> sp.csr_matrix:
    """``graphs.grid`` with weights ``exp(-||x_i - x_j||^2 / median)``: pairs
    across an edge of the image barely pull on each other."""
    G = graphs.grid(spatial_shape, connectivity).tocoo()
    diff = X[G.row] - X[G.col]
    d2 = np.einsum("ij,ij->i", diff, diff)
    w = np.exp(-d2 / np.median(d2))
    return sp.csr_matrix((w, (G.row, G.col)), shape=G.shape)


def pixel_start(X: np.ndarray, k: int, method: str = "spa", seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """The pixel-picking start of ``init="spa"``/``"vca"``, both factors
    floored at 1e-3 of their maximum (the library floors W only, so with
    ``solver="mu"`` a zero of a picked pixel's spectrum stays zero)."""
    rows = spa(X, k, normalize=True) if method == "spa" else vca(X, k, random_state=seed)
    H = np.array(X[rows], dtype=np.float64)
    W = abundances_from_endmembers(X, H)
    return np.maximum(W, 1e-3 * W.max()), np.maximum(H, 1e-3 * H.max())


def constrained_unmix(X: np.ndarray, k: int, spatial_shape: tuple[int, ...], *,
                      minvol: float = MINVOL, smooth: float = SMOOTH, graph: Any = None,
                      **start: Any) -> Any:
    """The recommended constrained fit, from the start given in ``start``
    (``init=...``/``random_state=...`` or ``init="custom", W=..., H=...``):

    1. endmembers: ``sum_to_one=True``, ``minvol_H = relative_minvol(...)``,
       run to convergence (``tol=1e-7``: the majorized volume term takes
       small steps, and the default ``tol=1e-5`` stops it half-way, at a
       point that depends on the start and the data);
    2. :func:`smooth_abundances` with those endmembers held fixed.

    Returns the step-2 result (its ``n_iter`` is the sum of both steps)."""
    r1 = unmix.nmf(X, k, sum_to_one=True, minvol_H=relative_minvol(X, spatial_shape, minvol),
                   tol=TOL, max_iter=3000, **start)
    if not smooth:
        return r1
    r2 = smooth_abundances(X, r1.H, spatial_shape, smooth, graph, W=r1.W)
    return dataclasses.replace(r2, n_iter=r1.n_iter + r2.n_iter)


def smooth_abundances(X: np.ndarray, H: np.ndarray, spatial_shape: tuple[int, ...],
                      smooth: float = SMOOTH, graph: Any = None, W: Optional[np.ndarray] = None
                      ) -> Any:
    """Abundances for fixed endmembers ``H``: ``sum_to_one=True``, ``graph_W
    = graph`` (default ``graphs.grid(shape, 8)``), ``smooth_W =
    relative_smoothness(..., smooth)``, from ``W`` (default: NNLS on H).

    This calls the private W-only half of ``nmf`` (``update_H=False``): the
    public API cannot yet hold every endmember fixed (``fixed_H`` needs
    ``n_known < n_components``; ``NMF.transform`` ignores ``graph_W``)."""
    k = H.shape[0]
    W0 = np.maximum(abundances_from_endmembers(X, H), 1e-6) if W is None else np.array(W)
    G = graphs.grid(spatial_shape, 8) if graph is None else graph
    return _fit(X, k, solver="bpp", init="custom", W=W0, H=np.array(H), sum_to_one=True,
                graph_W=G, smooth_W=relative_smoothness(X, spatial_shape, smooth),
                max_iter=1000, tol=TOL, update_H=False)


# ---------------------------------------------------------------------------
# Scoring and the runs
# ---------------------------------------------------------------------------


def score(ref, W, H, X) -> dict[str, float]:
    sad = metrics.spectral_angles(ref.endmembers, H)
    return {"sad_deg": float(sad.mean),
            "abundance_rmse": float(metrics.abundance_rmse(ref.abundances, W, sad)),
            "rmse_matched": float(metrics.abundance_rmse(ref.abundances, W, sad,
                                                         endmembers=(ref.endmembers, H))),
            "rel_error": float(metrics.reconstruction_error(X, W, H))}


def sklearn_nmf(X, k, W=None, H=None, beta_loss="frobenius", max_iter=1000):
    """scikit-learn's NMF: with its defaults, best of 3 seeds by
    reconstruction error; or from the given start (init="custom")."""
    from sklearn.decomposition import NMF

    best = None
    starts = [(s, None) for s in range(3)] if W is None else [(0, (W, H))]
    for seed, start in starts:
        kw = dict(beta_loss=beta_loss, max_iter=max_iter, random_state=seed)
        if beta_loss != "frobenius":
            kw.update(solver="mu", tol=1e-6)
        model = NMF(k, init="custom" if start else None, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if start:
                Wf = model.fit_transform(X, W=start[0].copy(), H=start[1].copy())
            else:
                Wf = model.fit_transform(X)
        if best is None or model.reconstruction_err_ < best[0]:
            best = (model.reconstruction_err_, Wf, model.components_)
    return best[1], best[2]


def gaussian_settings(X, k, shape):
    """(label, kind, callable) for one image: every unmix setting from the
    SPA start, scikit-learn from the same start and with its defaults, and
    the plain/recommended pair from init="random"."""
    W0, H0 = pixel_start(X, k, "spa")
    spa_start = dict(init="custom", W=W0, H=H0)
    grid = graphs.grid(shape, 8)
    rand = dict(init="random", random_state=0)
    stage1: dict[str, Any] = {}

    def minvol_spa():
        stage1["spa"] = constrained_unmix(X, k, shape, smooth=0, **spa_start)
        return stage1["spa"]

    def recommended_spa():  # step 2 of constrained_unmix on the step-1 result just timed
        r = smooth_abundances(X, stage1["spa"].H, shape, W=stage1["spa"].W)
        return dataclasses.replace(r, n_iter=stage1["spa"].n_iter + r.n_iter)

    return [
        ("scikit-learn NMF, defaults (best of 3)", "sklearn", lambda: sklearn_nmf(X, k)),
        ("scikit-learn NMF, SPA start", "sklearn", lambda: sklearn_nmf(X, k, W0, H0)),
        ("unmix, nndsvda (default)", "unmix", lambda: unmix.nmf(X, k)),
        ("unmix, SPA start: plain", "plain_spa", lambda: unmix.nmf(X, k, **spa_start)),
        ("unmix, SPA start: sum_to_one", "unmix",
         lambda: unmix.nmf(X, k, sum_to_one=True, **spa_start)),
        ("unmix, SPA start: sum_to_one + smooth_W=0.01 (raw)", "s2o_smooth_raw",
         lambda: unmix.nmf(X, k, sum_to_one=True, graph_W=grid, smooth_W=0.01, **spa_start)),
        (f"unmix, SPA start: sum_to_one + smooth (relative {SMOOTH:g}), joint", "s2o_smooth_spa",
         lambda: unmix.nmf(X, k, sum_to_one=True, graph_W=grid,
                           smooth_W=relative_smoothness(X, shape), **spa_start)),
        (f"unmix, SPA start: sum_to_one + minvol (relative {MINVOL:g})", "minvol_spa", minvol_spa),
        (f"unmix, SPA start: recommended = the above, then smooth (relative {SMOOTH:g}) with H "
         "fixed", "recommended_spa", recommended_spa),
        ("unmix, random start: plain", "plain_random", lambda: unmix.nmf(X, k, **rand)),
        ("unmix, random start: recommended", "recommended_random",
         lambda: constrained_unmix(X, k, shape, **rand)),
    ]


def poisson_settings(X, k, shape):
    """Frobenius against KL from one start, the floored SPA start, with the
    same solver (MU) and budget; BPP (Frobenius) and scikit-learn beside."""
    W0, H0 = pixel_start(X, k, "spa")
    start = dict(init="custom", W=W0, H=H0)
    mu = dict(solver="mu", max_iter=500, tol=1e-6)
    return [
        ("scikit-learn NMF, defaults (best of 3)", "sklearn", lambda: sklearn_nmf(X, k)),
        ("scikit-learn NMF, KL (mu), SPA start", "sklearn",
         lambda: sklearn_nmf(X, k, W0, H0, beta_loss="kullback-leibler", max_iter=500)),
        ("unmix, SPA start: Frobenius (bpp)", "frobenius_bpp", lambda: unmix.nmf(X, k, **start)),
        ("unmix, SPA start: Frobenius (mu)", "frobenius_mu", lambda: unmix.nmf(X, k, **mu, **start)),
        ("unmix, SPA start: KL (mu)", "kl_mu", lambda: unmix.nmf(X, k, loss="kl", **mu, **start)),
    ]


def datasets_to_run(folder, quick=False):
    if not quick:
        yield "samson", "gaussian", datasets.load_samson(folder)
    for maps in MAPS:
        for snr in (30, 20):
            yield (f"usgs_{maps.split('_')[1]}_{snr}dB", "gaussian",
                   datasets.usgs_mixture(maps, snr_db=snr, seed=0, folder=folder))
    for maps in MAPS if not quick else MAPS[:1]:
        yield (f"usgs_{maps.split('_')[1]}_poisson{COUNTS:g}", "poisson",
               datasets.usgs_mixture(maps, poisson=True, counts=COUNTS, seed=0, folder=folder))


def run(folder, quick=False) -> list[dict[str, Any]]:
    rows = []
    for name, kind, ref in datasets_to_run(folder, quick):
        X, k = ref.X, ref.endmembers.shape[0]
        settings = (gaussian_settings if kind == "gaussian" else poisson_settings)(
            X, k, ref.spatial_shape)
        for label, key, fit in settings:
            t = time.perf_counter()
            out = fit()
            seconds = time.perf_counter() - t
            if key == "recommended_spa":  # its step 1 is the minvol_spa fit just before
                seconds += rows[-1]["seconds"]
            W, H = (out.W, out.H) if hasattr(out, "W") else out
            row = {"dataset": name, "method": label, "key": key, "seconds": seconds,
                   **score(ref, W, H, X)}
            if hasattr(out, "n_iter"):
                row["n_iter"] = int(out.n_iter)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _find(rows, dataset, key):
    return next(r for r in rows if r["dataset"] == dataset and r["key"] == key)


def summary(rows) -> list[str]:
    """The claims of the issue, as reductions of the scale-matched RMSE."""
    lines = []
    names = sorted({r["dataset"] for r in rows})
    for new, old, what in (
            ("recommended_spa", "plain_spa", "recommended vs plain NMF, same SPA start"),
            ("recommended_random", "plain_random", "recommended vs plain NMF, same random start"),
            ("minvol_spa", "plain_spa", "sum_to_one + minvol alone vs plain, SPA start"),
            ("s2o_smooth_spa", "plain_spa", "sum_to_one + smooth (joint) vs plain, SPA start"),
            ("s2o_smooth_raw", "plain_spa", "sum_to_one + smooth_W=0.01 (raw) vs plain, SPA start")):
        parts = []
        for d in names:
            if not d.startswith("usgs") or "poisson" in d:
                continue
            a, b = _find(rows, d, new), _find(rows, d, old)
            parts.append(f"{d.removeprefix('usgs_')} {100 * (a['rmse_matched'] / b['rmse_matched'] - 1):+.0f}%")
        lines.append(f"RMSE change, {what}: " + ", ".join(parts))
    for d in names:
        if "poisson" not in d:
            continue
        kl, fro, bpp = (_find(rows, d, key) for key in ("kl_mu", "frobenius_mu", "frobenius_bpp"))
        lines.append(
            f"{d}: KL vs Frobenius (mu, same start): SAD {kl['sad_deg']:.2f} vs "
            f"{fro['sad_deg']:.2f} deg, RMSE {kl['rmse_matched']:.4f} vs {fro['rmse_matched']:.4f} "
            f"({100 * (kl['rmse_matched'] / fro['rmse_matched'] - 1):+.0f}%); Frobenius (bpp): "
            f"SAD {bpp['sad_deg']:.2f}, RMSE {bpp['rmse_matched']:.4f}")
    return lines


def sweep(folder, seeds=3) -> None:
    """Robustness of the scale-free weights: maps x SNR x noise seeds x
    starts, one set of weights, no per-file tuning. Prints the change of the
    scale-matched RMSE against plain NMF from the same start."""
    variants = ["s2o+smooth joint", "minvol 0.005", "minvol 0.01", "minvol 0.02",
                "rec. grid 10", "rec. grid 30", "rec. grid 100", "rec. edge-aware 1000"]

    def fits(X, k, sh, st):
        yield unmix.nmf(X, k, sum_to_one=True, graph_W=graphs.grid(sh, 8),
                        smooth_W=relative_smoothness(X, sh), **st)
        stage1 = {}
        for m in (0.005, 0.01, 0.02):
            stage1[m] = constrained_unmix(X, k, sh, minvol=m, smooth=0, **st)
            yield stage1[m]
        for c in (10, 30, 100):
            yield smooth_abundances(X, stage1[0.01].H, sh, c, W=stage1[0.01].W)
        yield smooth_abundances(X, stage1[0.01].H, sh, 1000, edge_aware_grid(X, sh),
                                W=stage1[0.01].W)

    changes: dict[str, list[float]] = {v: [] for v in variants}
    print("| map | SNR | seed | start | plain RMSE | " + " | ".join(variants) + " |")
    print("|---|---|---|---|---|" + "---|" * len(variants))
    for maps in MAPS:
        for snr in (30, 20):
            for seed in range(seeds):
                ref = datasets.usgs_mixture(maps, snr_db=snr, seed=seed, folder=folder)
                X, k, sh = ref.X, 3, ref.spatial_shape
                for start_name in ("spa", "vca", "random"):
                    if start_name == "random":
                        st: dict[str, Any] = dict(init="random", random_state=seed)
                    else:
                        W0, H0 = pixel_start(X, k, start_name, seed)
                        st = dict(init="custom", W=W0, H=H0)
                    plain = score(ref, *_wh(unmix.nmf(X, k, **st)), X)["rmse_matched"]
                    cells = []
                    for v, fit in zip(variants, fits(X, k, sh, st)):
                        got = score(ref, *_wh(fit), X)["rmse_matched"]
                        changes[v].append(100 * (got / plain - 1))
                        cells.append(f"{changes[v][-1]:+.0f}%")
                    print(f"| {maps.split('_')[1]} | {snr} | {seed} | {start_name} | {plain:.4f} | "
                          + " | ".join(cells) + " |", flush=True)
    print("\n| variant | worst | median | best |\n|---|---|---|---|")
    for v, c in changes.items():
        print(f"| {v} | {max(c):+.0f}% | {statistics.median(c):+.0f}% | {min(c):+.0f}% |")


def sweep_poisson(folder, seeds=3, counts=(10, 20, 50)) -> None:
    """KL against Frobenius on Poisson counts: maps x mean counts x seeds,
    from the floored SPA start, MU for both (max_iter=500, tol=1e-6), BPP
    (Frobenius) beside."""
    print("| map | counts | seed | SAD fro-mu / fro-bpp / kl-mu | RMSE fro-mu / fro-bpp / kl-mu |")
    print("|---|---|---|---|---|")
    wins = {"sad": 0, "rmse": 0, "sad_bpp": 0, "rmse_bpp": 0, "n": 0}
    for maps in MAPS:
        for c in counts:
            for seed in range(seeds):
                ref = datasets.usgs_mixture(maps, poisson=True, counts=c, seed=seed, folder=folder)
                X = ref.X
                W0, H0 = pixel_start(X, 3, "spa")
                st = dict(init="custom", W=W0, H=H0)
                mu = dict(solver="mu", max_iter=500, tol=1e-6)
                fm = score(ref, *_wh(unmix.nmf(X, 3, **mu, **st)), X)
                fb = score(ref, *_wh(unmix.nmf(X, 3, **st)), X)
                kl = score(ref, *_wh(unmix.nmf(X, 3, loss="kl", **mu, **st)), X)
                wins["n"] += 1
                wins["sad"] += kl["sad_deg"] < fm["sad_deg"]
                wins["rmse"] += kl["rmse_matched"] < fm["rmse_matched"]
                wins["sad_bpp"] += kl["sad_deg"] < fb["sad_deg"]
                wins["rmse_bpp"] += kl["rmse_matched"] < fb["rmse_matched"]
                print(f"| {maps.split('_')[1]} | {c} | {seed} | {fm['sad_deg']:.2f} / "
                      f"{fb['sad_deg']:.2f} / {kl['sad_deg']:.2f} | {fm['rmse_matched']:.4f} / "
                      f"{fb['rmse_matched']:.4f} / {kl['rmse_matched']:.4f} |", flush=True)
    n = wins["n"]
    print(f"\nKL better than Frobenius-MU: SAD {wins['sad']}/{n}, RMSE {wins['rmse']}/{n}; "
          f"than Frobenius-BPP: SAD {wins['sad_bpp']}/{n}, RMSE {wins['rmse_bpp']}/{n}")


def _wh(r):
    return r.W, r.H


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the shared/data folder")
    ap.add_argument("--quick", action="store_true", help="synthetic mixtures only, one Poisson map")
    ap.add_argument("--sweep", choices=("gaussian", "poisson"), default=None,
                    help="a robustness sweep instead: the scale-free weights over maps x SNR x "
                         "seeds x starts, or KL against Frobenius over maps x counts x seeds")
    ap.add_argument("--seeds", type=int, default=3, help="noise seeds of the sweep")
    args = ap.parse_args(argv)
    if args.sweep:
        (sweep if args.sweep == "gaussian" else sweep_poisson)(args.data, args.seeds)
        return 0
    t0 = time.perf_counter()
    rows = run(args.data, args.quick)
    print("\n| dataset | method | SAD (deg) | RMSE | RMSE (scale-matched) | rel. error | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['method']} | {r['sad_deg']:.2f} | {r['abundance_rmse']:.4f} "
              f"| {r['rmse_matched']:.4f} | {r['rel_error']:.4f} | {r['seconds']:.2f} |")
    print()
    for line in summary(rows):
        print("summary:", line)
    print(f"summary: total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
