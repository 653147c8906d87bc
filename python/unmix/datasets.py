"""Built-in data generated from a seed (nothing is downloaded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class SyntheticImage:
    """A spectral image with its ground truth.

    ``X`` is (n_pixels, n_channels) in C order (pixels in row-major order of
    ``spatial_shape``); ``abundances`` (n_pixels, k) sum to one per pixel;
    ``endmembers`` (k, n_channels) sum to one each; ``X ≈ counts · A E``.
    """

    X: np.ndarray
    abundances: np.ndarray
    endmembers: np.ndarray
    spatial_shape: tuple[int, ...]
    channels: np.ndarray
    channel_unit: str


def tof_sims_like(
    spatial_shape: tuple[int, int] = (128, 128),
    n_channels: int = 512,
    n_components: int = 4,
    counts_per_pixel: float = 2000.0,
    seed: int = 0,
) -> SyntheticImage:
    """A ToF-SIMS-like image: smooth chemical domains, peaky mass spectra and
    Poisson counting noise.

    Each component's spectrum is a few dozen Gaussian peaks at random mass
    channels (shared peaks give the overlap real spectra have); each
    abundance map is a smoothed random field, sharpened and normalized so the
    maps sum to one per pixel with extended, nearly pure domains.
    """
    rng = np.random.default_rng(seed)
    channels = np.linspace(1.0, 512.0, n_channels)
    E = np.zeros((n_components, n_channels))
    shared = rng.uniform(channels[0], channels[-1], size=8)
    for c in range(n_components):
        centres = np.concatenate([rng.uniform(channels[0], channels[-1], size=30), shared])
        heights = rng.gamma(0.7, 1.0, size=centres.size)
        widths = rng.uniform(0.4, 1.2, size=centres.size)
        for m, h, w in zip(centres, heights, widths):
            E[c] += h * np.exp(-0.5 * ((channels - m) / w) ** 2)
        E[c] += 0.002 * E[c].max()  # a small continuous background
        E[c] /= E[c].sum()

    fields = np.stack(
        [gaussian_filter(rng.standard_normal(spatial_shape), sigma=spatial_shape[0] / 12,
                         mode="wrap") for _ in range(n_components)],
        axis=-1,
    )
    fields /= fields.std()
    A = np.exp(4.0 * fields)
    A /= A.sum(axis=-1, keepdims=True)
    A = A.reshape(-1, n_components)

    X = rng.poisson(counts_per_pixel * (A @ E)).astype(np.float64)
    return SyntheticImage(X, A, E, tuple(spatial_shape), channels, "m/z")
