"""The spectrum test of unmix.select_rank on images of known rank, and on the
real files of the shared data.

    python bench/rank_selection.py              # simulated images, ~1 min
    python bench/rank_selection.py --stability  # + select_rank over seeds 0-3 x n_init 1-3
    python bench/rank_selection.py --real       # + the real files in shared/data/real

Simulated (seeded, known rank): EDS-like Poisson counts
(tests/python/eds_sim.py: particles of 3 or 2 phases, pure or mixed, and a
boundary; 30-1000 counts per pixel, 40 x 40 x 400), ToF-SIMS-like Poisson
counts (unmix.datasets.tof_sims_like, 4 components, 64 x 64 x 256, 20-2000
counts per pixel, 2 seeds; 3 components, 24 x 24 x 96), USGS mixtures
(unmix.datasets.usgs_mixture, 3 minerals, white noise at 20/30/40 dB and
Poisson counts at 50 per entry; needs shared/data) and Gaussian test images
of rank 3, 5 and 8 (24 x 24 x 64, 1 % white noise); Samson (real, 3
reference endmembers) for comparison.

For each image one line: the noise model chosen, the true and the counted
rank, and in Tracy-Widom standard deviations of the largest noise value
(``(s² - floor) / sd``; the threshold is at ``rank.MARGIN_SD``) the last
true component and the first value past the true rank. The summary gives
the range of the latter and the smallest of the former: the margins the
select_rank docstring quotes. ``--real`` adds, per real file, the counted
rank, the values over the floor and, for counts, the simulated floor over
the white (Marchenko-Pastur) one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import unmix
import unmix.io
from unmix import datasets, preprocess, rank
from unmix.image import SpectralImage
from unmix.noise import choose

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from eds_sim import simulate  # noqa: E402
from benchlib import use_shared_data  # noqa: E402

use_shared_data()


def clear_image(k: int, seed: int) -> SpectralImage:
    """Rank k: one Gaussian peak per endmember on a flat background,
    Dirichlet(0.5) abundances, 1 % white noise (as tests/python/test_rank.py)."""
    rng = np.random.default_rng(seed)
    channels = np.arange(64)
    centres = np.linspace(4, 59, k) + rng.uniform(-1, 1, k)
    E = np.stack([np.exp(-0.5 * ((channels - c) / 2.0) ** 2) for c in centres]) + 0.02
    A = rng.dirichlet(np.full(k, 0.5), size=24 * 24)
    X = A @ E
    X = np.clip(X + rng.normal(0.0, 0.01 * X.mean(), X.shape), 0.0, None)
    return SpectralImage(X.reshape(24, 24, 64))


def images() -> list[tuple[str, int, SpectralImage]]:
    out = [(f"gaussian rank {k}", k, clear_image(k, k)) for k in (3, 5, 8)]
    try:
        for snr in (20, 30, 40):
            out.append((f"usgs {snr} dB", 3, datasets.usgs_mixture(snr_db=snr, seed=0).image()))
        out.append(("usgs Poisson 50/entry", 3,
                    datasets.usgs_mixture(poisson=True, counts=50, seed=0).image()))
        out.append(("samson (real)", 3, datasets.load_samson().image()))
    except FileNotFoundError as err:
        print(f"# no USGS/Samson: {err}", file=sys.stderr)
    for dose in (20, 100, 500, 2000):
        for seed in (0, 1):
            out.append((f"tof {dose}/px seed {seed}", 4, datasets.tof_sims_like(
                spatial_shape=(64, 64), n_channels=256, counts_per_pixel=dose,
                seed=seed).image()))
    out.append(("tof 24x24x96", 3, datasets.tof_sims_like(
        spatial_shape=(24, 24), n_channels=96, n_components=3, seed=0).image()))
    for dose in (30, 100, 300, 1000):
        for kind, k in (("particles", 3), ("particles", 2), ("boundary", 2)):
            for pure in (True, False):
                X = simulate(kind, k=k, pure=pure, dose=dose, seed=1).X
                out.append((f"eds {kind} {k} {'pure' if pure else 'mixed'} {dose}/px", k,
                            SpectralImage(X)))
    return out


def spectrum_test(image: SpectralImage, kmax: int, noise: str = "auto"):
    model = choose(image.X, image.metadata, noise)
    if model.model == "poisson":
        scaled, scaling = preprocess.poisson_scale(image)
        return model, rank._test_spectrum(scaled.X, kmax, image, scaling)
    return model, rank._test_spectrum(image.X, kmax)


def sds(test) -> np.ndarray:
    """(s² - floor) / sd, in Tracy-Widom standard deviations."""
    return (test.sv2 - test.floor) / ((test.threshold - test.floor) / rank.MARGIN_SD)


def simulated() -> None:
    noise_z, signal_z = [], []
    print(f"{'image':34s} {'noise':8s} true counted {'z(s_k)':>10s} {'z(s_k+1)':>9s}")
    for name, k, image in images():
        model, test = spectrum_test(image, k + 3)
        z = sds(test)
        print(f"{name:34s} {model.model:8s} {k:4d} {test.signal_rank:7d} {z[k - 1]:10.1f} "
              f"{z[k]:9.2f}", flush=True)
        if "real" not in name:
            noise_z.append(z[k])
            signal_z.append(z[k - 1])
    print(f"# simulated: first value past the true rank {min(noise_z):+.2f} to "
          f"{max(noise_z):+.2f} sd, weakest true component {min(signal_z):.0f} sd "
          f"(threshold {rank.MARGIN_SD:g})")


def stability() -> None:
    for name, k, image in images():
        if not name.startswith(("eds particles 3 mixed 100", "tof 100/px seed 0",
                                "usgs 30 dB", "gaussian rank 5")):
            continue
        start = time.perf_counter()
        got = [unmix.select_rank(image, range(2, k + 3), n_init=n_init, random_state=seed,
                                 sum_to_one=False).recommended
               for seed in range(4) for n_init in (1, 2, 3)]
        print(f"{name:34s} true {k}: seeds 0-3 x n_init 1-3 -> {' '.join(map(str, got))} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


def real() -> None:
    folder = datasets.data_folder() / "real"
    for name in ("espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy",
                 "bruker_30x30_SEM-EDS_silicate.bcf", "bruker_50x50_SEM-EDS_AlAgCu.bcf"):
        image = unmix.io.read(folder / name)
        model, test = spectrum_test(image, 10)
        ratios = " ".join(f"{v:.4g}" for v in (test.sv2 / test.floor)[1:test.last + 1])
        line = f"{name[:34]:34s} {model.model:8s} counted {test.signal_rank:2d}; s²/floor {ratios}"
        if model.model == "poisson":
            white = spectrum_test(preprocess.poisson_scale(image)[0], 10, "gaussian")[1]
            line += (f"; floor / white floor {test.floor[1] / white.floor[1]:.4f} "
                     f"(white counts {white.signal_rank})")
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stability", action="store_true")
    parser.add_argument("--real", action="store_true")
    args = parser.parse_args()
    simulated()
    if args.stability:
        stability()
    if args.real:
        real()


if __name__ == "__main__":
    main()
