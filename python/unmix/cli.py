"""The ``unmix`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import __version__
from ._nmf import nmf
from ._validation import SOLVERS


def _spectral_angles(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Angle in degrees between each true spectrum and its best match
    (one-to-one, Hungarian assignment)."""
    from scipy.optimize import linear_sum_assignment

    t = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    f = found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-300)
    angles = np.degrees(np.arccos(np.clip(t @ f.T, -1.0, 1.0)))
    rows, cols = linear_sum_assignment(angles)
    return angles[rows, cols]


def demo(args: argparse.Namespace) -> int:
    from .datasets import tof_sims_like

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    data = tof_sims_like(seed=args.seed)
    n_pixels, n_channels = data.X.shape
    print(f"unmix {__version__} demo: ToF-SIMS-like image {data.spatial_shape[0]} x "
          f"{data.spatial_shape[1]} pixels x {n_channels} mass channels, "
          f"{data.endmembers.shape[0]} components, Poisson counts (seed {args.seed})")
    start = time.perf_counter()
    result = nmf(data.X, args.k, solver=args.solver, random_state=args.seed,
                 max_iter=args.max_iter, verbose=args.progress)
    seconds = time.perf_counter() - start
    angles = _spectral_angles(data.endmembers, result.H)
    np.save(out / "W.npy", result.W)
    np.save(out / "H.npy", result.H)
    summary = {
        "version": __version__,
        "data": {"spatial_shape": list(data.spatial_shape), "n_channels": n_channels,
                 "n_components_true": int(data.endmembers.shape[0]), "seed": args.seed},
        "solver": args.solver,
        "n_components": args.k,
        "n_iter": result.n_iter,
        "stop_reason": result.stop_reason,
        "rel_error": float(result.rel_error[-1]),
        "objective": result.objective.tolist(),
        "spectral_angle_deg": angles.tolist(),
        "seconds": seconds,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"  solver {args.solver}: {result.n_iter} iterations ({result.stop_reason}), "
          f"{seconds:.2f} s, relative error {result.rel_error[-1]:.4f}")
    print(f"  endmembers vs truth: spectral angle {np.mean(angles):.2f} deg on average "
          f"(worst {np.max(angles):.2f} deg)")
    print(f"  wrote W.npy (abundances {result.W.shape}), H.npy (spectra {result.H.shape}), "
          f"summary.json to {out.resolve()}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="unmix", description=__doc__)
    parser.add_argument("--version", action="version", version=f"unmix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="unmix a built-in synthetic ToF-SIMS image and score it",
                       description="Generates a ToF-SIMS-like image from a seed, factors "
                                   "it and writes the factors and a summary.")
    p.add_argument("-o", "--output", default="unmix-demo", help="output folder (default: %(default)s)")
    p.add_argument("-k", type=int, default=4, help="number of components (default: %(default)s)")
    p.add_argument("--solver", choices=SOLVERS, default="bpp", help="default: %(default)s")
    p.add_argument("--max-iter", type=int, default=500, help="default: %(default)s")
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, TypeError, OSError) as err:
        print(f"unmix {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
