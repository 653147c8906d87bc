"""Unmixing quality against ground truth: unmix and scikit-learn side by side.

    python bench/quality.py                 # every dataset and setting, ~1 min
    python bench/quality.py --data DIR      # where shared/data is (default: found upwards)

For each dataset — the real Samson image and USGS-library mixtures built on
the reference abundance maps at 30 and 20 dB SNR — and each setting, prints
one JSON line: mean spectral angle (SAD, degrees, after Hungarian matching),
abundance RMSE (rows normalized to sum to one), relative reconstruction
error and seconds, then a Markdown table. scikit-learn's NMF runs with its
defaults (best of 3 seeds by reconstruction error), as a user would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

import unmix
import unmix.graphs as graphs
import unmix.metrics as metrics
from unmix import datasets


def datasets_to_run(folder):
    yield "samson", datasets.load_samson(folder)
    for maps in ("abundance_spatial_3em.mat", "abundance_squares_3em.mat"):
        for snr in (30, 20):
            yield f"usgs_{maps.split('_')[1]}_{snr}dB", datasets.usgs_mixture(maps, snr_db=snr, seed=0,
                                                                              folder=folder)


def settings(ref):
    grid = graphs.grid(ref.spatial_shape, connectivity=8)
    return {
        "unmix bpp, nndsvda": dict(),
        "unmix bpp, init=spa": dict(init="spa"),
        "unmix bpp, init=vca": dict(init="vca", random_state=0),
        "unmix bpp, init=spa, sum_to_one": dict(init="spa", sum_to_one=True),
        "unmix bpp, init=spa, sum_to_one, smooth_W=0.01": dict(init="spa", sum_to_one=True,
                                                                graph_W=grid, smooth_W=0.01),
    }


def score(ref, W, H, X):
    sad = metrics.spectral_angles(ref.endmembers, H)
    return {"sad_deg": float(sad.mean), "abundance_rmse": float(metrics.abundance_rmse(ref.abundances, W, sad)),
            "rel_error": float(metrics.reconstruction_error(X, W, H))}


def sklearn_best(X, k):
    from sklearn.decomposition import NMF

    best = None
    for seed in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = NMF(k, random_state=seed, max_iter=1000)
            W = model.fit_transform(X)
        if best is None or model.reconstruction_err_ < best[0]:
            best = (model.reconstruction_err_, W, model.components_)
    return best[1], best[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the shared/data folder")
    args = ap.parse_args()
    rows = []
    for name, ref in datasets_to_run(args.data):
        X, k = ref.X, ref.endmembers.shape[0]
        t = time.perf_counter()
        W, H = sklearn_best(X, k)
        rows.append({"dataset": name, "method": "scikit-learn NMF (best of 3)",
                     "seconds": time.perf_counter() - t, **score(ref, W, H, X)})
        print(json.dumps(rows[-1]), flush=True)
        for label, kw in settings(ref).items():
            t = time.perf_counter()
            r = unmix.nmf(X, k, **kw)
            rows.append({"dataset": name, "method": label, "seconds": time.perf_counter() - t,
                         "n_iter": r.n_iter, **score(ref, r.W, r.H, X)})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| dataset | method | SAD (deg) | abundance RMSE | rel. error | s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['method']} | {r['sad_deg']:.2f} | {r['abundance_rmse']:.4f} "
              f"| {r['rel_error']:.4f} | {r['seconds']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
