"""STEM-EDS spectrum images with exact ground truth from espm, and espm's
own constrained NMF (SmoothNMF) on them.

Run this script with the python of the espm virtual environment
(bench/.venv-espm, which ``espmlib.espm_python()`` creates): espm 1.1.3 pins
an old HyperSpy, so it never shares an environment with unmix, and the main
environment never imports this file. Subcommands::

    python espm_cases.py generate --out DIR [--seed S]
    python espm_cases.py smoothnmf --case DIR/particles_pure_N100.npz --out RESULT.npz

``generate`` writes one compressed ``.npz`` per case and dose, then
``DIR/cases.json`` (the manifest, written last: its presence means the set
is complete). espm's model: X = Poisson(N * A @ (diag(d) D)), D the phase
spectra normalized to sum 1, d the phase densities, A (pixels x k) fractions
summing to one, N the nominal counts per pixel (``dose``). So
E[X] = abundances @ spectra exactly, with ``spectra = N diag(d) D`` (espm's
``sample["GW"]``) and ``abundances = sample["H_flat"]``.

Cases (each at N = 10, 100, 1000):

* ``particles_pure`` / ``particles_mixed``: espm's built-in particle system
  (two particle phases in a matrix phase, 80 x 80 pixels, 1980 channels),
  sphere maps with particle centres at concentration 1.0 (pure pixels) or
  espm's own 0.5 (no pure particle pixel).
* ``boundary_pure`` / ``boundary_mixed``: espm's built-in grain boundary
  (Sr segregation; two phases whose spectra differ only by Sr, ~11 degrees
  apart), 60 x 120 pixels instead of espm's 100 x 400, espm's 3746 channels,
  a gaussian ripple peaking at 1.0 or at 0.6.
* ``interior``: the particle phases mixed by smooth random maps that fill
  the simplex without reaching its corners (every abundance <= 0.8) but come
  close to every edge (each abundance ~0 somewhere): no pure pixel, the case
  where minimum-volume methods are identifiable and pixel-picking is not.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # hyperspy's GUI hooks

DOSES = (10, 100, 1000)
MANIFEST = "cases.json"

# Maps: (system, map kind, map parameters). The two variants of a system
# share their map seed, so they differ only in the concentration maximum.
FAMILIES = {
    "particles_pure": ("particles", "spheres", {"radius": 20, "conc_max": 1.0}),
    "particles_mixed": ("particles", "spheres", {"radius": 20, "conc_max": 0.5}),
    "boundary_pure": ("boundary", "ripple", {"width": 10, "conc_max": 1.0}),
    "boundary_mixed": ("boundary", "ripple", {"width": 10, "conc_max": 0.6}),
    "interior": ("particles", "interior", {"sigma": 8.0, "beta": 3.0, "cap": 0.8}),
}
SHAPES = {"particles": (80, 80), "boundary": (60, 120)}
MAP_KINDS = ("spheres", "ripple", "interior")
PURE_LEVEL = 0.99

# SmoothNMF as espm documents it: the regularization values, simplex_H,
# normalize and epsilon_reg of the example notebook that SmoothNMF's
# docstring sends users to (notebooks/toy-ML.ipynb: lambda_L=2, mu=0.05,
# epsilon_reg=1, simplex_H=True, normalize=True, tol=1e-6), the physical model
# as G as in espm's EDXS notebook (notebooks/api.ipynb: G = spim.model after
# spim.build_G(), which is EDXS(...).generate_g_matr("bremsstrahlung",
# ignored_elements=["Cu"], elements=...)), espm's default init (None, i.e.
# scikit-learn's nndsvda) with a fixed random_state. max_iter = 500, between
# the notebooks' 200 (toy) and 1000 (EDXS), is a time cap: one iteration
# costs 1-3 s on these images (espm evaluates the KL loss every iteration);
# the record says whether tol or max_iter stopped it.
SMOOTHNMF_SETTINGS = {
    "lambda_L": 2.0,
    "mu": 0.05,
    "epsilon_reg": 1.0,
    "simplex_H": True,
    "simplex_W": False,
    "normalize": True,
    "tol": 1e-6,
    "max_iter": 500,
    "init": None,
    "random_state": 0,
    "verbose": 0,
}
G_SETTINGS = {"g_type": "bremsstrahlung", "ignored_elements": ["Cu"]}


# --- generate ------------------------------------------------------------------

def case_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for np.random.seed (espm's generator) derived from the
    user seed and the case's indices, so that every case is reproducible
    on its own and independent of the others."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def system_phases(system: str):
    """espm's built-in phase spectra (k x channels, rows summing to 1), the
    dictionaries they come from and the EDXS model parameters."""
    from espm.datasets import built_in_EDXS_datasets as builtin
    from espm.models.generate_EDXS_phases import generate_modular_phases

    phases_dict = getattr(builtin, f"{system}_phases_dict")
    misc_dict = getattr(builtin, f"{system}_misc_dict")
    # deepcopy: generate_modular_phases writes into the dictionaries it is
    # given (it adds "elements_dict" and "scale" to espm's module-level
    # brstlg_pars), which would leak into the next call.
    phases = generate_modular_phases(**copy.deepcopy(phases_dict))
    return phases, copy.deepcopy(phases_dict), list(misc_dict["densities"])


def symbols(elements) -> list[str]:
    """Element symbols of espm element keys (atomic numbers as strings or
    symbols)."""
    from espm.conf import NUMBER_PERIODIC_TABLE

    table = json.loads(Path(NUMBER_PERIODIC_TABLE).read_text())["table"]
    return [table[str(e)]["symbol"] if str(e).isdigit() else str(e) for e in elements]


def checked(abundance, k: int, expected_max: dict[int, float]) -> np.ndarray:
    """The weights of an espm Abundance, after checking that every phase was
    added: Abundance.check_add_weights only prints a message and drops the
    phase when the concentrations would exceed one."""
    weights = abundance.weights
    for phase, level in expected_max.items():
        if not np.isclose(weights[:, :, phase].max(), level):
            raise RuntimeError(f"espm dropped phase {phase} of {k} (overlapping maps?)")
    return weights


def sphere_maps(shape, k, radius, conc_max, rng):
    """Sphere maps of espm's Abundance, one particle per non-matrix phase,
    centres drawn from rng so that no two particles overlap (with
    conc_max = 1 an overlap would exceed one)."""
    from espm.weights.abundance import Abundance

    centres: list[np.ndarray] = []
    while len(centres) < k - 1:
        c = rng.integers(radius // 2, np.array(shape) - radius // 2)
        if all(np.hypot(*(c - o)) > 2 * radius for o in centres):
            centres.append(c)
    a = Abundance(tuple(shape), k)
    for phase, c in enumerate(centres, start=1):
        a.add_sphere(tuple(int(v) for v in c), radius, conc_max, phase)
    weights = checked(a, k, {p: conc_max for p in range(1, k)})
    return weights, {"centres": [c.tolist() for c in centres]}


def ripple_maps(shape, width, conc_max, rng):
    """espm's gaussian ripple (a grain boundary across the image) at a
    column drawn from the middle half of the image."""
    from espm.weights.abundance import Abundance

    centre = int(rng.integers(shape[1] // 4, 3 * shape[1] // 4))
    a = Abundance(tuple(shape), 2)
    a.add_gaussian_ripple(centre, width, conc_max, 1)
    return checked(a, 2, {1: conc_max}), {"centre_column": centre}


def capped_simplex(V: np.ndarray, cap: float) -> np.ndarray:
    """Euclidean projection of every row of V onto {a : sum(a) = 1,
    0 <= a <= cap}: a = clip(v - tau, 0, cap), tau found by bisection."""
    lo = (V.min(axis=1) - cap)[:, None]
    hi = V.max(axis=1)[:, None]
    for _ in range(100):
        tau = 0.5 * (lo + hi)
        over = np.clip(V - tau, 0.0, cap).sum(axis=1, keepdims=True) > 1.0
        lo = np.where(over, tau, lo)
        hi = np.where(over, hi, tau)
    return np.clip(V - 0.5 * (lo + hi), 0.0, cap)


def interior_maps(shape, k, sigma, beta, cap, rng):
    """Smooth random maps filling the simplex except its corners: a softmax
    of k smooth gaussian fields (spread so that every phase comes close to
    zero somewhere) projected onto the simplex capped at ``cap``."""
    from scipy.ndimage import gaussian_filter

    fields = np.stack([gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
                       for _ in range(k)], axis=-1)
    fields /= fields.std(axis=(0, 1))
    E = np.exp(beta * (fields - fields.max(axis=-1, keepdims=True)))
    A = capped_simplex((E / E.sum(axis=-1, keepdims=True)).reshape(-1, k), cap)
    geometry = {"min_per_phase": A.min(axis=0).tolist(), "max_per_phase": A.max(axis=0).tolist(),
                "fraction_within_0.05_of_each_edge": (A < 0.05).mean(axis=0).tolist()}
    return A.reshape(*shape, k), geometry


def make_maps(kind, shape, k, params, rng):
    if kind == "spheres":
        return sphere_maps(shape, k, params["radius"], params["conc_max"], rng)
    if kind == "ripple":
        return ripple_maps(shape, params["width"], params["conc_max"], rng)
    return interior_maps(shape, k, params["sigma"], params["beta"], params["cap"], rng)


def generate(out: Path, seed: int) -> None:
    import importlib.metadata

    from espm.datasets.base import generate_spim_sample
    from espm.models import EDXS

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    systems = {s: system_phases(s) for s in SHAPES}
    manifest = {"seed": seed, "espm": importlib.metadata.version("espm"), "cases": []}
    for f, (name, (system, kind, map_params)) in enumerate(FAMILIES.items()):
        phases, phases_dict, densities = systems[system]
        k, shape = phases.shape[0], SHAPES[system]
        model_params = phases_dict["model_params"]
        energy = EDXS(**copy.deepcopy(model_params)).x  # espm's channel energies (keV)
        # The map's seed depends on its kind only: the pure and mixed
        # variants of a system get the same particle centres / boundary.
        rng = np.random.default_rng(case_seed(seed, 1000 + MAP_KINDS.index(kind)))
        weights, map_info = make_maps(kind, shape, k, map_params, rng)
        elements = [" ".join(symbols(d.keys())) for d in phases_dict["elts_dicts"]]
        pure = bool(np.all(weights.reshape(-1, k).max(axis=0) >= PURE_LEVEL))
        for d, dose in enumerate(DOSES):
            t0 = time.perf_counter()
            poisson_seed = case_seed(seed, f, d)
            misc = {"N": dose, "densities": densities, "model": "EDXS", "shape_2d": list(shape)}
            sample = generate_spim_sample(phases, weights, copy.deepcopy(model_params), misc,
                                          seed=poisson_seed)
            X = sample["X"]
            X = X.astype(np.uint16 if X.max() < 2**16 else np.int64)
            params = {"family": name, "system": system, "map": kind, "map_params": map_params,
                      "map_info": map_info, "seed": seed, "poisson_seed": poisson_seed,
                      "densities": densities, "model_params": model_params,
                      "elts_dicts": phases_dict["elts_dicts"],
                      "brstlg_pars": phases_dict["brstlg_pars"], "scales": phases_dict["scales"],
                      "mean_counts_per_pixel": float(X.sum() / (X.shape[0] * X.shape[1])),
                      "espm": manifest["espm"]}
            path = out / f"{name}_N{dose}.npz"
            np.savez_compressed(path, X=X, spectra=np.asarray(sample["GW"], np.float64),
                                abundances=weights, energy=energy, elements=np.array(elements),
                                name=name, dose=dose, pure=pure, params=json.dumps(params))
            seconds = time.perf_counter() - t0
            manifest["cases"].append({"file": path.name, "name": name, "dose": dose,
                                      "pure": pure, "shape": list(X.shape), "seconds": seconds})
            print(f"{path.name}: {X.shape[0]} x {X.shape[1]} x {X.shape[2]}, k = {k}, "
                  f"pure = {pure}, {params['mean_counts_per_pixel']:.1f} counts/pixel, "
                  f"{seconds:.1f} s", flush=True)
    manifest["seconds"] = time.perf_counter() - start
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    print(f"generated {len(manifest['cases'])} cases in {manifest['seconds']:.1f} s")


# --- smoothnmf -----------------------------------------------------------------

def edxs_model(params: dict, elements: list[str]):
    """espm's EDXS physical model with its G matrix, built as
    EDSespm.build_G() builds it from a spectrum image's metadata (energy
    axis, beam energy, detector, sample thickness and density: the values
    the simulation used, which espm stores in the simulated signal's
    metadata)."""
    from espm.models import EDXS

    model = EDXS(**copy.deepcopy(params["model_params"]))
    model.generate_g_matr(**G_SETTINGS, elements=elements, elements_dict={})
    if model.G is None:
        raise ValueError("espm built no G (no element line in the energy range)")
    return model


def smoothnmf(case_path: Path, out: Path) -> None:
    """Run SmoothNMF on a case and write its factors in our convention.

    espm factorizes X_espm (channels x pixels) ~ G W H with G (channels x m)
    the EDXS model, W (m x k), H (k x pixels); with ``simplex_H`` every
    column of H (one pixel) sums to one, and with ``normalize`` espm divides
    X by a scalar before fitting and W by the same scalar after, so G @ W is
    in counts. Our convention X (pixels x channels) ~ abundances @ spectra
    with abundance rows summing to one is the transpose, hence::

        spectra    = (G_ @ W_).T   (k x channels, counts per pixel of the pure
                                    phase: the return value of fit_transform)
        abundances = H_.T          (pixels x k, rows sum to one)

    where G_ is espm's final G (the bremsstrahlung columns are refitted
    during the iterations). Without G (fallback) G_ is the identity.
    """
    from espm.estimators import SmoothNMF

    with np.load(case_path, allow_pickle=False) as f:
        X, params = f["X"], json.loads(str(f["params"]))
        k = int(f["spectra"].shape[0])
        elements = sorted({e for phase in f["elements"] for e in str(phase).split()})
    ny, nx, C = X.shape
    Xe = np.ascontiguousarray(X.reshape(-1, C).T, dtype=np.float64)
    settings = dict(SMOOTHNMF_SETTINGS, n_components=k, shape_2d=[ny, nx])
    try:
        G, g_note = edxs_model(params, elements), f"EDXS model, {G_SETTINGS}"
    except Exception as exc:  # espm's model builder raises several types
        G, g_note = None, f"no G (EDXS model failed: {type(exc).__name__}: {exc})"
    log = io.StringIO()
    load_before = os.getloadavg()[0]  # other work on the machine slows espm
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):  # espm prints its stopping reason
        est = SmoothNMF(G=G, **{**settings, "shape_2d": (ny, nx)})
        GW = est.fit_transform(Xe)
    seconds = time.perf_counter() - t0
    H = est.H_
    messages = [line for line in log.getvalue().splitlines() if line.strip()]
    record = {"settings": settings, "G": g_note, "elements": elements,
              "G_columns": None if G is None else int(est.G_.shape[1]),
              "n_iter": int(est.n_iter_), "seconds": seconds,
              "loadavg_1min": [load_before, os.getloadavg()[0]],
              "stop": messages[-2:] if messages else [],
              "max_abs_row_sum_error": float(np.abs(H.sum(axis=0) - 1).max())}
    np.savez_compressed(out, spectra=np.ascontiguousarray(GW.T), abundances=np.ascontiguousarray(H.T),
                        seconds=seconds, record=json.dumps(record))
    print(json.dumps(record))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the cases and their manifest")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("smoothnmf", help="run espm's SmoothNMF on one case")
    s.add_argument("--case", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "generate":
        generate(args.out, args.seed)
    else:
        smoothnmf(args.case, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
