"""Unmixing quality on real and physics-based data, default pipeline first.

    python bench/real_data.py               # everything (~25 min on 2 cores, SmoothNMF cached)
    python bench/real_data.py --quick       # Samson, USGS, the espm cases at 1000 counts/px
    python bench/real_data.py --only samson,usgs,espm,real
    python bench/real_data.py --no-smoothnmf   # skip espm's own SmoothNMF (its own venv)

What each part measures (every unmix row is the public API, nothing
private):

- **samson**: the real Samson image (../shared/data/samson.mat), mean
  spectral angle (SAD, degrees, Hungarian matching) to the reference
  endmembers and abundance RMSE (rows summing to one) for the default
  ``unmix.unmix(image, 3)`` over 5 seeds, every documented setting
  (``sum_to_one=True``, ``sum_to_one=False``, ``smooth_W="auto"``), plain
  ``unmix.nmf`` from the same SPA start and scikit-learn's NMF at its
  defaults.
- **usgs**: mixtures of USGS library spectra on the two shared abundance
  maps, white Gaussian noise at 30 and 20 dB, Poisson counts (20 per entry),
  and the same maps with endmember variability (each pixel's endmember a
  random convex combination of the library spectra of its mineral family;
  truth: the family mean), the case where the minimum-volume weight has to
  set itself from the data.
- **espm**: STEM-EDS spectrum images simulated by espm (its own virtual
  environment, ``bench/espmlib.py``): particles in a matrix and a grain
  boundary, with and without pure pixels, and a mixture that fills the
  interior of the simplex, at 10, 100 and 1000 counts per pixel; espm's own
  constrained NMF (``SmoothNMF``, its documented settings) as a peer; and
  the noise floor, given half of the truth (the SAD of spectra fitted to
  the true abundances, the RMSE of fractions fitted with the true spectra):
  what no blind method without a model of the spectra or the maps beats.
- **real**: the measured files in ../shared/data/real (no ground truth):
  the default pipeline writes a report per file to
  ``bench/results/real/<file>/`` for a person to look at, and the script
  checks what can be checked: no component present nowhere, no component
  concentrated in a handful of pixels, and for EDS the file's elements'
  main X-ray lines (energies from exSpy, in espm's environment) each the
  strongest in some component.

Targets (issue 14) are printed with PASS/MISS at the end. Results go to
``bench/results/real_data.json`` (one record per row).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import espmlib  # noqa: E402
from benchlib import use_shared_data  # noqa: E402
import unmix  # noqa: E402
import unmix.metrics as metrics  # noqa: E402
from unmix import datasets  # noqa: E402

use_shared_data()
RESULTS = HERE / "results"
SEEDS = range(5)
PARTS = ("samson", "usgs", "espm", "real")

#: k for the real files (what is known of them, ../shared/data/real/README.md).
REAL_K = {
    "espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy": 3,
    "bruker_50x50_SEM-EDS_AlAgCu.bcf": 3,
    "bruker_30x30_SEM-EDS_silicate.bcf": 4,
    "renishaw_streamline_Raman_45x49x394.wdf": 3,
}
#: Elements of the real EDS files whose lines the check looks for (the
#: espm file's README list; the Bruker headers' own lists).
REAL_ELEMENTS = {
    "espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy": ("Mg", "Al", "Si", "Ca", "Fe"),
    "bruker_50x50_SEM-EDS_AlAgCu.bcf": ("Al", "Ag", "Cu"),
    "bruker_30x30_SEM-EDS_silicate.bcf": ("Mg", "Al", "Si", "K", "Ca", "Ti", "Fe"),
}


# ---------------------------------------------------------------------------
# Scoring and the table
# ---------------------------------------------------------------------------


class Table:
    """Rows of (dataset, method, scores), printed as they come and kept."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, dataset: str, method: str, **scores: Any) -> dict[str, Any]:
        row = {"dataset": dataset, "method": method, **scores}
        self.rows.append(row)
        shown = "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in scores.items() if not isinstance(v, (list, dict)))
        print(f"{dataset:28s} {method:34s} {shown}", flush=True)
        return row


def truth_scores(E_true: np.ndarray, A_true: np.ndarray, H: np.ndarray,
                 A: np.ndarray) -> dict[str, float]:
    """SAD (deg), the angle of every true endmember and the abundance RMSE
    with rows normalized to one (the literature's), after the optimal
    matching."""
    sad = metrics.spectral_angles(E_true, H)
    A = np.asarray(A, dtype=np.float64).reshape(A_true.shape[0], -1)
    return {"sad": float(sad.mean),
            "rmse": float(metrics.abundance_rmse(A_true, A, sad, sum_to_one=True)),
            "angles": "/".join(f"{a:.1f}" for a in sad.angles)}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def sklearn_nmf(X: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's NMF at its defaults, as a user runs it (max_iter raised
    so that it converges; its warnings silenced)."""
    import warnings

    from sklearn.decomposition import NMF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NMF(k, random_state=seed, max_iter=1000)
        W = model.fit_transform(np.asarray(X, dtype=np.float64))
    return model.components_, W


def compare(table: Table, dataset: str, image: Any, E: np.ndarray, A: np.ndarray,
            settings: dict[str, dict[str, Any]], seeds: Any = (0,), baselines: bool = True) -> None:
    """The default pipeline and the documented settings (unmix.unmix), plain
    unmix.nmf and scikit-learn on one image with ground truth."""
    k = E.shape[0]
    X = image.X
    for name, options in settings.items():
        for seed in seeds:
            u, seconds = timed(lambda: unmix.unmix(image, k, random_state=seed, **options))
            scores = truth_scores(E, A, u.endmembers, u.abundances)
            table.add(dataset, name + (f" seed {seed}" if len(seeds) > 1 else ""), **scores,
                      seconds=seconds, fractions=u.params["fractions"] or "-",
                      intensity_chi2=u.params["intensity_chi2"], noise=u.params["noise"],
                      events=len(u.events))
    if not baselines:
        return
    r, seconds = timed(lambda: unmix.nmf(X, k, init="spa", random_state=0))
    table.add(dataset, "unmix.nmf (plain, SPA start)", **truth_scores(E, A, r.H, r.W),
              seconds=seconds)
    (H, W), seconds = timed(lambda: sklearn_nmf(X, k))
    table.add(dataset, "scikit-learn NMF (defaults)", **truth_scores(E, A, H, W), seconds=seconds)


SETTINGS = {
    "unmix.unmix (default)": {},
    "sum_to_one=True (strict)": {"sum_to_one": True},
    "sum_to_one=False (plain)": {"sum_to_one": False},
    'smooth_W="auto"': {"smooth_W": "auto"},
}


# ---------------------------------------------------------------------------
# The parts
# ---------------------------------------------------------------------------


def part_samson(table: Table, quick: bool) -> None:
    s = datasets.load_samson()
    compare(table, "samson", s.image(), s.endmembers, s.abundances,
            {"unmix.unmix (default)": {}}, seeds=SEEDS, baselines=False)
    compare(table, "samson", s.image(), s.endmembers, s.abundances,
            {k: v for k, v in SETTINGS.items() if k != "unmix.unmix (default)"})


def variability_mixture(abundance_file: str, snr_db: float, seed: int = 7) -> Any:
    """The USGS maps with endmember variability (see the module)."""
    lib = datasets.usgs_library()
    families = [[i for i, n in enumerate(lib.names) if n.startswith(p)]
                for p in ("Alunite", "Hematite GDS69", "Nontronite")]
    base = datasets.usgs_mixture(abundance_file, snr_db=None)
    A = base.abundances
    rng = np.random.default_rng(seed)
    Y = np.zeros((A.shape[0], lib.spectra.shape[1]))
    for j, fam in enumerate(families):
        Y += A[:, [j]] * (rng.dirichlet(np.ones(len(fam)), size=A.shape[0]) @ lib.spectra[fam])
    sigma = np.sqrt(np.mean(Y**2) / 10 ** (snr_db / 10))
    X = np.maximum(Y + rng.normal(0.0, sigma, Y.shape), 0.0)
    E = np.array([lib.spectra[f].mean(axis=0) for f in families])
    image = unmix.SpectralImage.from_matrix(X, base.spatial_shape)
    return image, E, A


def part_usgs(table: Table, quick: bool) -> None:
    for f in ("abundance_spatial_3em.mat", "abundance_squares_3em.mat"):
        tag = f.split("_")[1]
        for snr in (30, 20):
            d = datasets.usgs_mixture(f, snr_db=snr, seed=1)
            compare(table, f"usgs {tag} {snr} dB", d.image(), d.endmembers, d.abundances,
                    SETTINGS if not quick else {"unmix.unmix (default)": {}})
        d = datasets.usgs_mixture(f, poisson=True, counts=20, seed=2)
        compare(table, f"usgs {tag} Poisson 20/entry", d.image(), d.endmembers, d.abundances,
                SETTINGS if not quick else {"unmix.unmix (default)": {}})
        image, E, A = variability_mixture(f, 30)
        compare(table, f"usgs {tag} variability 30 dB", image, E, A,
                SETTINGS if not quick else {"unmix.unmix (default)": {}})


def part_espm(table: Table, quick: bool, smoothnmf: bool) -> None:
    python = espmlib.espm_python()
    paths = espmlib.generate_cases(python=python)
    for path in paths:
        case = espmlib.load_case(path)
        if quick and case.dose < 1000:
            continue
        dataset = f"espm {case.label}{'' if case.pure else ' (no pure px)'}"
        image = unmix.SpectralImage(case.X, channels=case.energy, channel_unit="keV")
        X = image.X.astype(np.float64)
        u, seconds = timed(lambda: unmix.unmix(image, case.k, random_state=0))
        table.add(dataset, "unmix.unmix (default)",
                  **espm_scores(case, u.endmembers, u.abundances), seconds=seconds,
                  fractions=u.params["fractions"], noise=u.params["noise"], events=len(u.events))
        table.add(dataset, "noise floor (truth-aided)", **noise_floor(case, image))
        u, seconds = timed(lambda: unmix.unmix(image, case.k, random_state=0, loss="kl"))
        table.add(dataset, 'unmix.unmix(loss="kl")',
                  **espm_scores(case, u.endmembers, u.abundances), seconds=seconds)
        r, seconds = timed(lambda: unmix.nmf(X, case.k, init="spa", random_state=0))
        table.add(dataset, "unmix.nmf (plain, SPA start)", **espm_scores(case, r.H, r.W),
                  seconds=seconds)
        (H, W), seconds = timed(lambda: sklearn_nmf(X, case.k))
        table.add(dataset, "scikit-learn NMF (defaults)", **espm_scores(case, H, W),
                  seconds=seconds)
        if smoothnmf:
            try:
                peer = espmlib.run_smoothnmf(path, python=python)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                print(f"# SmoothNMF failed on {case.label}: {str(err).splitlines()[-1]}")
                continue
            table.add(dataset, "espm SmoothNMF (peer)",
                      **espm_scores(case, peer.spectra, peer.abundances), seconds=peer.seconds)


def noise_floor(case: Any, image: Any) -> dict[str, float]:
    """What the Poisson noise alone leaves, given half of the truth: the
    SAD of the spectra fitted by least squares to the true abundances, and
    the RMSE of the fractions fitted with the true spectra held (unit
    sums, the default's noise weights). A blind method with no model of
    the spectra (espm's SmoothNMF has one) or of the maps (smoothness) is
    not expected below either."""
    X = case.X.reshape(-1, case.X.shape[-1]).astype(np.float64)
    A = case.abundances.reshape(-1, case.k)
    H = np.maximum(np.linalg.lstsq(A, X, rcond=None)[0], 0.0)
    u = unmix.unmix(image, case.k, fixed_H=case.spectra, sum_to_one=True, random_state=0)
    return {"sad": espm_scores(case, H, A)["sad"],
            "rmse": espm_scores(case, u.endmembers, u.abundances)["rmse"]}


def espm_scores(case: Any, H: np.ndarray, A: np.ndarray) -> dict[str, float]:
    s = espmlib.score(case, H, A)
    return {"sad": float(s["sad"]), "rmse": float(s["rmse_normalized"])}


def line_energies(elements: set[str]) -> dict[str, float]:
    """keV of each element's strongest X-ray line with its energy above
    0.5 keV, from exSpy's database (espm's environment has exSpy)."""
    code = ("import json, sys, exspy\n"
            "out = {}\n"
            "for el in sys.argv[1:]:\n"
            "    lines = exspy.material.elements[el].Atomic_properties.Xray_lines.as_dictionary()\n"
            "    good = [(v['weight'], v['energy (keV)']) for v in lines.values()\n"
            "            if v['energy (keV)'] > 0.5]\n"
            "    out[el] = max(good)[1]\n"
            "print(json.dumps(out))\n")
    run = subprocess.run([espmlib.espm_python(), "-c", code, *sorted(elements)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed")
    return json.loads(run.stdout.strip().splitlines()[-1])


def part_real(table: Table, quick: bool) -> None:
    import unmix.io

    folder = datasets.data_folder() / "real"
    try:
        energies = line_energies(set().union(*REAL_ELEMENTS.values()))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print(f"# no line energies (exSpy in espm's environment): {err}; element checks skipped")
        energies = {}
    for name, k in REAL_K.items():
        path = folder / name
        if not path.exists():
            print(f"# {name}: not in {folder}, skipped")
            continue
        image = unmix.io.read(path)
        u, seconds = timed(lambda: unmix.unmix(image, k, random_state=0))
        out = RESULTS / "real" / path.stem
        u.save(out)
        checks = real_checks(u, REAL_ELEMENTS.get(name, ()), energies)
        table.add(f"real {path.stem[:24]}", "unmix.unmix (default)", seconds=seconds,
                  noise=u.params["noise"], fractions=u.params["fractions"],
                  checks="ok" if all(checks.values()) else "FAILED: " + ", ".join(
                      c for c, ok in checks.items() if not ok), report=str(out / "report.html"),
                  **{"check " + c: ok for c, ok in checks.items()})


def real_checks(u: Any, elements: tuple[str, ...], energies: dict[str, float]) -> dict[str, bool]:
    """What can be checked without ground truth (see the module)."""
    A = u.abundances.reshape(-1, u.n_components)
    out = {"no dead component": not any("present nowhere" in e for e in u.events)}
    # A component worth its name covers more than a handful of pixels: the
    # pixels holding half of its total mass are at least 0.5 % of the image.
    spread = []
    for j in range(u.n_components):
        col = np.sort(A[:, j])[::-1]
        half = np.searchsorted(np.cumsum(col), 0.5 * col.sum()) + 1
        spread.append(half >= max(3, 0.005 * len(col)))
    out["no single-pixel component"] = all(spread)
    for el in elements:
        if el not in energies:
            continue
        channel = int(np.argmin(np.abs(u.channels - energies[el])))
        window = slice(max(channel - 3, 0), channel + 4)
        # The line stands above its surroundings in the component that
        # carries it most: a peak, not the continuum.
        peaks = [float(h[window].max() / max(np.median(h[max(channel - 40, 0):channel + 40]), 1e-12))
                 for h in u.endmembers]
        out[f"{el} line {energies[el]:.2f} keV a peak"] = max(peaks) > 2.0
    return out


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, PASS/MISS with the numbers."""
    lines = []

    def rows_of(prefix: str, method: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["dataset"].startswith(prefix) and r["method"].startswith(method)]

    samson = rows_of("samson", "unmix.unmix (default)")
    if samson:
        sad = max(r["sad"] for r in samson)
        rmse = max(r["rmse"] for r in samson)
        ok = sad <= 3.0 and rmse <= 0.10
        lines.append(f"{'PASS' if ok else 'MISS'} Samson default, {len(samson)} seeds: worst SAD "
                     f"{sad:.2f} deg (<= 3), worst RMSE {rmse:.3f} (<= 0.10)")
    for ds in sorted({r["dataset"] for r in rows if r["dataset"].startswith("espm")}):
        dose = int(ds.split("_N")[1].split()[0])
        if dose < 100:
            continue
        ours = rows_of(ds, "unmix.unmix (default)")[0]
        peers = [r for r in rows if r["dataset"] == ds and (
            r["method"].startswith("scikit-learn") or r["method"].startswith("espm"))]
        beaten = all(ours["sad"] < p["sad"] and ours["rmse"] < p["rmse"] for p in peers)
        ok = ours["sad"] <= 3.0 and ours["rmse"] <= 0.05 and beaten
        floor = rows_of(ds, "noise floor")
        lines.append(f"{'PASS' if ok else 'MISS'} {ds}: SAD {ours['sad']:.2f} (<= 3), RMSE "
                     f"{ours['rmse']:.3f} (<= 0.05), better than "
                     + (", ".join(f"{p['method'].split(' (')[0]} {p['sad']:.2f}/{p['rmse']:.3f}"
                                  for p in peers) or "no peer run")
                     + (f"; noise floor {floor[0]['sad']:.2f}/{floor[0]['rmse']:.3f}"
                        if floor else ""))
    for ds in sorted({r["dataset"] for r in rows if not r["dataset"].startswith("real")}):
        plain = [r for r in rows if r["dataset"] == ds and r["method"].startswith("unmix.nmf")]
        if not plain:
            continue
        documented = [r for r in rows if r["dataset"] == ds and r["method"] in SETTINGS
                      and r["method"] != "sum_to_one=False (plain)"]
        worse = [f"{r['method']} {r['sad']:.2f}/{r['rmse']:.3f}" for r in documented
                 if r["sad"] > plain[0]["sad"] + 0.05 or r["rmse"] > plain[0]["rmse"] + 0.005]
        lines.append(f"{'PASS' if not worse else 'MISS'} {ds}: no documented setting worse than "
                     f"plain NMF ({plain[0]['sad']:.2f} deg / {plain[0]['rmse']:.3f})"
                     + (f"; worse: {worse}" if worse else ""))
    for r in rows:
        if r["dataset"].startswith("real"):
            lines.append(f"{'PASS' if r['checks'] == 'ok' else 'MISS'} {r['dataset']}: "
                         f"{r['checks']} ({r['report']})")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer settings and espm doses")
    p.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: " + ", ".join(PARTS))
    p.add_argument("--no-smoothnmf", action="store_true", help="do not run espm's SmoothNMF")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        p.error(f"--only takes {', '.join(PARTS)}, got {sorted(unknown)}")
    table = Table()
    start = time.perf_counter()
    for part in parts:
        print(f"\n## {part}", flush=True)
        if part == "samson":
            part_samson(table, args.quick)
        elif part == "usgs":
            part_usgs(table, args.quick)
        elif part == "espm":
            part_espm(table, args.quick, not args.no_smoothnmf)
        else:
            part_real(table, args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "real_data.json").write_text("\n".join(json.dumps(r, default=str) for r in table.rows))
    print(f"\n## targets ({time.perf_counter() - start:.0f} s in all)")
    for line in targets(table.rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
