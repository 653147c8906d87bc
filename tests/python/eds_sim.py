"""A small seeded EDS-like spectrum-image simulator for the tests.

Our own simple physics, small enough for fast tests (40 x 40 pixels x 400
channels by default), shaped like the espm STEM-EDS cases of the benchmark
(bench/espm_cases.py) without needing espm:

* continuum: Kramers' law, counts ~ (E0 - E) / E, times a detector and
  absorption efficiency that rolls off at low energy, exp(-(E_c / E)^2);
* characteristic lines: gaussians at made-up line energies with relative
  intensities, times the same efficiency, their width growing with energy
  as an SDD detector's (FWHM = 65 eV + 1 % of E);
* each phase: lines plus a fraction of continuum, normalized to sum 1, times
  the dose (counts per pixel);
* maps: "particles" (matrix + round particles whose abundance peaks at their
  centre, as espm's spheres) or "boundary" (a gaussian ripple across the
  image); ``pure=False`` keeps the particles / boundary below 0.5 / 0.6;
* X: Poisson counts of abundances @ spectra.

``python eds_sim.py ESPM_CASE.npz OUT.png`` plots the mean spectrum of a
simulated image next to an espm case's (a check that both look alike).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

E0_KEV = 200.0  # beam energy of a STEM
CUTOFF_KEV = 0.3  # low-energy roll-off of detector window + sample absorption
# Made-up phases: (line energy keV, relative intensity) and continuum fraction.
PHASES = (
    ([(0.52, 0.6), (1.25, 0.5), (1.74, 1.0), (6.40, 0.7), (7.06, 0.1)], 0.5),  # matrix
    ([(0.93, 0.4), (1.01, 0.3), (8.05, 1.0), (8.90, 0.15)], 0.45),
    ([(2.01, 1.0), (2.29, 0.4), (4.51, 0.8), (4.93, 0.12)], 0.55),
)


@dataclass(frozen=True)
class Simulation:
    """``X`` (ny, nx, channels) integer counts; ``spectra`` (k, channels)
    counts per pixel of each pure phase; ``abundances`` (ny, nx, k)
    fractions summing to one; E[X] = abundances @ spectra; ``energy`` keV."""

    X: np.ndarray
    spectra: np.ndarray
    abundances: np.ndarray
    energy: np.ndarray


def phase_spectra(energy: np.ndarray, k: int) -> np.ndarray:
    """The first k phases on the energy axis, rows summing to one."""
    efficiency = np.exp(-((CUTOFF_KEV / energy) ** 2))
    continuum = (E0_KEV - energy) / energy * efficiency
    rows = []
    for lines, background in PHASES[:k]:
        peaks = np.zeros_like(energy)
        for e, intensity in lines:
            sigma = (0.065 + 0.01 * e) / 2.355
            peaks += intensity * np.exp(-0.5 * ((energy - e) / sigma) ** 2) * np.exp(
                -((CUTOFF_KEV / e) ** 2))
        rows.append((1 - background) * peaks / peaks.sum()
                    + background * continuum / continuum.sum())
    return np.array(rows)


def particle_maps(shape, k: int, conc_max: float, rng: np.random.Generator) -> np.ndarray:
    """k-1 non-overlapping round particles (abundance 2 sqrt(r^2 - d^2),
    scaled to conc_max at the centre) in a matrix (phase 0, the rest)."""
    radius = min(shape) // 5
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    centres: list[np.ndarray] = []
    while len(centres) < k - 1:
        c = rng.integers(radius, np.array(shape) - radius)
        if all(np.hypot(*(c - o)) > 2 * radius for o in centres):
            centres.append(c)
    A = np.zeros((*shape, k))
    for phase, (cy, cx) in enumerate(centres, start=1):
        dome = np.sqrt(np.clip(radius**2 - (yy - cy) ** 2 - (xx - cx) ** 2, 0, None))
        A[:, :, phase] = conc_max * dome / dome.max()
    A[:, :, 0] = 1 - A[:, :, 1:].sum(axis=2)
    return A


def boundary_maps(shape, conc_max: float, rng: np.random.Generator) -> np.ndarray:
    """A vertical boundary (gaussian ripple, FWHM shape[1] / 8) of phase 1
    peaking at conc_max, in phase 0."""
    centre = rng.integers(shape[1] // 4, 3 * shape[1] // 4)
    sigma = shape[1] / 8 / 2.355
    ripple = conc_max * np.exp(-0.5 * ((np.arange(shape[1]) - centre) / sigma) ** 2)
    A = np.zeros((*shape, 2))
    A[:, :, 1] = ripple
    A[:, :, 0] = 1 - ripple
    return A


def simulate(kind: str = "particles", shape=(40, 40), n_channels: int = 400, dose: float = 100,
             k: int = 3, pure: bool = True, seed: int = 0) -> Simulation:
    """A seeded EDS spectrum image: ``kind`` "particles" (k phases, 2 or 3)
    or "boundary" (2 phases), 0.2-10.2 keV over ``n_channels``, ``dose``
    counts per pixel."""
    rng = np.random.default_rng(seed)
    energy = np.linspace(0.2, 10.2, n_channels, endpoint=False)
    if kind == "particles":
        A = particle_maps(tuple(shape), k, 1.0 if pure else 0.5, rng)
    elif kind == "boundary":
        A = boundary_maps(tuple(shape), 1.0 if pure else 0.6, rng)
    else:
        raise ValueError(f"kind must be 'particles' or 'boundary', got {kind!r}")
    spectra = dose * phase_spectra(energy, A.shape[2])
    X = rng.poisson(A @ spectra)
    return Simulation(X, spectra, A, energy)


def compare(espm_case: str, png: str) -> None:
    """Mean spectrum per pixel (counts per keV) of an espm case and of a
    simulation at the same dose, linear and logarithmic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.load(espm_case, allow_pickle=False) as f:
        ours = simulate(dose=float(f["dose"]))
        curves = [(f"espm: {f['name']}, N = {f['dose']}", f["energy"], f["X"]),
                  ("eds_sim: particles", ours.energy, ours.X)]
        fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        for label, energy, X in curves:
            per_kev = X.reshape(-1, X.shape[-1]).mean(axis=0) / np.diff(energy).mean()
            for ax in axes:
                ax.plot(energy, per_kev, lw=0.8, label=label)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("energy (keV)")
    for ax in axes:
        ax.set_ylabel("counts / pixel / keV")
        ax.set_xlim(0, 12)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    compare(*sys.argv[1:3])
