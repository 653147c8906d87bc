"""The espm STEM-EDS cases from the main environment: espm's virtual
environment, the cases it generates, espm's SmoothNMF on them, and the
scores against their exact ground truth.

espm (the EPFL STEM-EDX simulator, 1.1.3) pins an old HyperSpy, so it runs
in its own virtual environment (bench/.venv-espm, created on first use) and
``espm_cases.py`` is run there as a subprocess; only ``.npz`` files cross
over. This module needs numpy and the standard library; ``score`` imports
unmix, ``main`` unmix and scikit-learn, when called.

    python bench/espmlib.py [--seed S] [--cases particles_pure_N100 ...]

generates the cases (once; cached under bench/results/espm_cases/), runs
SmoothNMF on each (cached too) and two plain baselines, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from benchlib import venv_python

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".venv-espm"
ESPM_REQUIREMENTS = ["espm==1.1.3"]
SCRIPT = HERE / "espm_cases.py"
CACHE = HERE / "results" / "espm_cases"  # bench/results/ is not in git
MANIFEST = "cases.json"  # written last by `espm_cases.py generate`
INSTALL_TIMEOUT_SEC = 1800  # espm brings HyperSpy, exspy, numba, scikit-image


def espm_python(venv: Path = DEFAULT_VENV, log: Callable[[str], Any] = print) -> str:
    """The python of espm's virtual environment, created and filled with
    ``pip install espm==1.1.3`` when it is missing; RuntimeError when that
    fails."""
    python, _, reason = venv_python(venv, "espm", ESPM_REQUIREMENTS, log, INSTALL_TIMEOUT_SEC)
    if python is None:
        raise RuntimeError(f"espm's environment {venv}: {reason}")
    return python


def _run(args: list[str], python: Optional[str], timeout: Optional[float]) -> str:
    """Run espm_cases.py with espm's python; its stdout, or RuntimeError
    with the end of its stderr."""
    cmd = [python or espm_python(), str(SCRIPT), *args]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")  # hyperspy's GUI hooks
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        tail = "\n".join(r.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed ({r.returncode}):\n{tail}")
    return r.stdout


def cases_dir(seed: int = 0) -> Path:
    """The default cache folder of the cases generated with ``seed``."""
    return CACHE / f"seed{seed}"


def generate_cases(out_dir: Optional[Path] = None, seed: int = 0, python: Optional[str] = None,
                   log: Callable[[str], Any] = print) -> list[Path]:
    """The case files (``.npz``) generated with ``seed`` in ``out_dir``
    (default ``cases_dir(seed)``), generated first when the folder has no
    complete set for that seed (about a minute)."""
    out = Path(out_dir) if out_dir is not None else cases_dir(seed)
    manifest = out / MANIFEST
    if manifest.exists():
        info = json.loads(manifest.read_text())
        paths = [out / c["file"] for c in info["cases"]]
        if info["seed"] == seed and all(p.exists() for p in paths):
            return paths
    log(f"# generating the espm cases (seed {seed}) in {out}")
    stdout = _run(["generate", "--out", str(out), "--seed", str(seed)], python, None)
    log(stdout.strip().splitlines()[-1])
    return [out / c["file"] for c in json.loads(manifest.read_text())["cases"]]


@dataclass(frozen=True)
class Case:
    """One espm case. ``X`` (ny, nx, channels) integer counts; ``spectra``
    (k, channels) the truth in counts per pixel of a pure phase (espm's GW);
    ``abundances`` (ny, nx, k) fractions summing to one; E[X] = abundances @
    spectra exactly. ``elements[i]`` the element symbols of phase i;
    ``dose`` espm's N (nominal counts per pixel, modulated by the phase
    densities); ``pure`` whether every phase has pixels of abundance >=
    0.99; ``shape`` the image shape (ny, nx); ``params`` everything else."""

    X: np.ndarray
    spectra: np.ndarray
    abundances: np.ndarray
    energy: np.ndarray
    elements: tuple[tuple[str, ...], ...]
    name: str
    dose: int
    pure: bool
    shape: tuple[int, int]
    params: dict[str, Any] = field(repr=False)
    path: Optional[Path] = None

    @property
    def k(self) -> int:
        return self.spectra.shape[0]

    @property
    def label(self) -> str:
        return f"{self.name}_N{self.dose}"


def load_case(path: Path) -> Case:
    with np.load(path, allow_pickle=False) as f:
        X = f["X"]
        return Case(X=X, spectra=f["spectra"], abundances=f["abundances"], energy=f["energy"],
                    elements=tuple(tuple(str(p).split()) for p in f["elements"]),
                    name=str(f["name"]), dose=int(f["dose"]), pure=bool(f["pure"]),
                    shape=(X.shape[0], X.shape[1]), params=json.loads(str(f["params"])),
                    path=Path(path))


@dataclass(frozen=True)
class SmoothNMFResult:
    """espm's SmoothNMF in our convention X (pixels x channels) ~
    abundances (pixels x k, rows summing to one) @ spectra (k x channels,
    counts); ``record`` the settings, iterations and stopping message."""

    spectra: np.ndarray
    abundances: np.ndarray
    seconds: float
    record: dict[str, Any]


def load_smoothnmf(path: Path) -> SmoothNMFResult:
    with np.load(path, allow_pickle=False) as f:
        return SmoothNMFResult(f["spectra"], f["abundances"], float(f["seconds"]),
                               json.loads(str(f["record"])))


def run_smoothnmf(case_path: Path, out_path: Optional[Path] = None, python: Optional[str] = None,
                  rerun: bool = False, timeout: Optional[float] = None) -> SmoothNMFResult:
    """espm's SmoothNMF on a case (``espm_cases.py smoothnmf``), written to
    ``out_path`` (default: ``smoothnmf/<case>.npz`` next to the case). A
    result newer than the case and than espm_cases.py is reused unless
    ``rerun``: one run takes minutes."""
    case_path = Path(case_path)
    out = Path(out_path) if out_path is not None else (
        case_path.parent / "smoothnmf" / case_path.name)
    fresh = out.exists() and out.stat().st_mtime >= max(case_path.stat().st_mtime,
                                                        SCRIPT.stat().st_mtime)
    if rerun or not fresh:
        out.parent.mkdir(parents=True, exist_ok=True)
        _run(["smoothnmf", "--case", str(case_path), "--out", str(out)], python, timeout)
    return load_smoothnmf(out)


def score(case: Case, spectra_est: Any, abundances_est: Any) -> dict[str, Any]:
    """Scores of estimated spectra (k_est x channels, any scale) and
    abundances ((pixels, k_est) or (ny, nx, k_est)) against the case's truth.

    ``sad``: mean spectral angle in degrees after the Hungarian matching
    (``sad_per_phase``, ``order``: the estimate matched to each true phase);
    the abundances are scored with that matching, as
    ``rmse``: taken as given; ``rmse_normalized``: every row divided by its
    sum first; ``rmse_scaled``: each matched column first multiplied by its
    spectrum's least-squares scale on the true spectrum, then rows
    normalized (the fair score of an unconstrained NMF, whose components
    come at arbitrary scales)."""
    from unmix import metrics

    sad = metrics.spectral_angles(case.spectra, spectra_est)
    A_true = case.abundances.reshape(-1, case.k)
    A_est = np.asarray(abundances_est, dtype=np.float64)
    A_est = A_est.reshape(A_true.shape[0], -1)
    return {
        "sad": sad.mean,
        "sad_per_phase": sad.angles.tolist(),
        "order": sad.order.tolist(),
        "rmse": metrics.abundance_rmse(A_true, A_est, sad, sum_to_one=False),
        "rmse_normalized": metrics.abundance_rmse(A_true, A_est, sad, sum_to_one=True),
        "rmse_scaled": metrics.abundance_rmse(A_true, A_est, sad, sum_to_one=True,
                                              endmembers=(case.spectra, spectra_est)),
    }


# --- the quick comparison ------------------------------------------------------------

def baselines(case: Case) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """(spectra, abundances, seconds) of plain unmix (SPA start) and plain
    scikit-learn NMF (NNDSVDa start) on the case: where the defaults stand."""
    import unmix
    from sklearn.decomposition import NMF

    X = case.X.reshape(-1, case.X.shape[-1]).astype(np.float64)
    out = {}
    t0 = time.perf_counter()
    r = unmix.nmf(X, case.k, init="spa", random_state=0)
    out["unmix"] = (r.H, r.W, time.perf_counter() - t0)
    t0 = time.perf_counter()
    sk = NMF(case.k, init="nndsvda", max_iter=1000)
    W = sk.fit_transform(X)
    out["sklearn"] = (sk.components_, W, time.perf_counter() - t0)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="espm cases: SmoothNMF and plain baselines")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="*", help="labels such as particles_pure_N100 (default all)")
    args = parser.parse_args(argv)
    python = espm_python()
    rows = []
    for path in generate_cases(seed=args.seed, python=python):
        case = load_case(path)
        if args.cases and case.label not in args.cases:
            continue
        sm = run_smoothnmf(path, python=python)
        row = {"case": case.name, "dose": case.dose, "pure": case.pure,
               "smoothnmf": {**score(case, sm.spectra, sm.abundances), "seconds": sm.seconds,
                             "n_iter": sm.record["n_iter"], "G": sm.record["G"]}}
        for name, (spectra, abundances, seconds) in baselines(case).items():
            row[name] = {**score(case, spectra, abundances), "seconds": seconds}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print("| case | dose | pure | SmoothNMF SAD | RMSE | s | unmix SAD | RMSE | RMSE norm. | "
          "RMSE scaled | sklearn SAD | RMSE | RMSE norm. | RMSE scaled |")
    print("|---" * 14 + "|")
    for r in rows:
        s, u, k = r["smoothnmf"], r["unmix"], r["sklearn"]
        print(f"| {r['case']} | {r['dose']} | {'yes' if r['pure'] else 'no'} | {s['sad']:.2f} | "
              f"{s['rmse']:.3f} | {s['seconds']:.0f} | "
              + " | ".join(f"{m['sad']:.2f} | {m['rmse']:.3f} | {m['rmse_normalized']:.3f} | "
                           f"{m['rmse_scaled']:.3f}" for m in (u, k)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
