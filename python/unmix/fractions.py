"""Abundances that are fractions: the model behind :func:`unmix.unmix`'s
default fit.

Real spectral images rarely have pixel totals that composition alone
explains: illumination and topography scale reflectance, thickness scales
X-ray counts. The *scaled sum-to-one* model lets every pixel have its own
intensity:

.. math::

    x_i \\approx \\tau_i \\sum_j f_{ij} e_j, \\qquad f_{ij} \\ge 0,\\ \\sum_j f_{ij} = 1,

with :math:`f_i` the fractions, :math:`e_j` the endmember spectra in the
data's units and :math:`\\tau_i` the intensity (1 where the pixel is as
bright as its composition predicts). It is fitted on the pixels divided by
their totals (each pixel a point of the simplex its endmembers span,
whatever its brightness) with every row of the abundances on the simplex,
plus a minimum-volume term weighted from the data (:func:`minvol_weight`),
which keeps the endmembers at the extremes of the data cloud where real
data spread beyond the simplex of their mean endmembers, and is zero where
the noise explains the residual.

Every pixel counts the same there, whatever its noise: weighting the
pixels by their likelihood (dark pixels less) was measured too, and let the
endmembers drift further from the truth on Samson, the synthetic mixtures
and their variability variants (bench/real_data.py's data), because the
dark pixels hold the shape of dark endmembers.

For counts, the channels are first weighted by one over the square root of
their mean (Keenan & Kotula's scaling, with the weight of nearly empty
channels capped at that of the median channel so that single counts there
do not dominate), which makes the Poisson noise about uniform.

:func:`physical` turns the fit into fractions, intensities and endmembers
in the data's units, and decides which fractions the data support
(see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls

from ._validation import block_step
from .noise import regression_variance

__all__ = ["MINVOL_EXCESS", "CONSISTENT_CHI2", "DEAD_FRACTION", "Prepared",
           "Physical", "dead_components", "minvol_weight", "physical", "prepare"]

#: minvol_weight: the weight of the volume term per unit of the residual
#: energy that the noise does not explain (the "excess": endmember
#: variability, nonlinear mixing, components beyond k), which is what pushes
#: a least-squares simplex outwards.
MINVOL_EXCESS = 0.5
#: physical: pixel intensities whose spread around one is at most this many
#: times what the noise of the pixel totals gives (a chi-square per pixel)
#: are taken as constant, and the fractions as those of the material.
CONSISTENT_CHI2 = 4.0
#: dead_components: a component whose largest fraction is below this is
#: present nowhere.
DEAD_FRACTION = 0.01


def _rows(X: Any) -> Any:
    """(start, float64 row block) of X, ~8 MB at a time."""
    step = block_step(X.shape[1])
    for i in range(0, X.shape[0], step):
        B = X[i:i + step]
        yield i, (B.toarray() if sp.issparse(B) else np.asarray(B, dtype=np.float64))


@dataclass(frozen=True)
class Prepared:
    """The matrix a fit sees, ``M = diag(rows) X diag(columns)``, and what
    it needs to go back to the data.

    Attributes
    ----------
    M : ndarray (n_pixels, n_channels), float64
        The weighted data. For the scaled model every pixel is divided by
        its weighted total (rows of M sum to one, pixels with no signal are
        zero); for the others the rows are weighted for the noise only.
    rows, columns : ndarray
        The weights: ``columns`` is 1 for Gaussian noise and
        ``1 / sqrt(max(mean count, median mean count))`` for counts;
        ``rows`` is one over the weighted total (scaled model), one
        (Gaussian) or one over the square root of the pixel's mean count
        (Poisson, Keenan & Kotula).
    targets : ndarray (n_pixels,)
        The row sums of W on M that sum-to-one means: ``rows`` (a pixel's
        fractions sum to one in the data's units), zero for pixels with no
        signal.
    keep : ndarray of bool (n_pixels,)
        The pixels with signal.
    noise : ndarray (n_pixels,)
        The expected noise energy of each row of M.
    noise_source : str
        How ``noise`` was estimated.
    totals : ndarray (n_pixels,)
        X's own pixel totals.
    relative_total_noise : ndarray (n_pixels,)
        The relative standard deviation of each pixel's total that the noise
        alone gives (for the constant-intensity test of :func:`physical`).
    counts : bool
        Whether the noise model is Poisson.
    column_means : ndarray (n_channels,)
        X's mean per channel (a count per pixel for counts).
    """

    M: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    targets: np.ndarray
    keep: np.ndarray
    noise: np.ndarray
    noise_source: str
    totals: np.ndarray
    relative_total_noise: np.ndarray
    counts: bool = False
    column_means: np.ndarray = None  # type: ignore[assignment]

    def channel_noise(self) -> Any:
        """The noise of M as :func:`unmix.graphs.edge_aware` takes it: for
        counts, a function of channel weights g giving
        ``Σ_c var(M_ic) g_c`` per pixel (the counts are
        their own variance: ``var(M_ic) = rows_i columns_c M_ic``); else
        the noise energy of each row, white over the channels."""
        if self.counts:
            return lambda g: self.rows * (self.M @ (self.columns * g))
        return self.noise

    def to_data(self, W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors of M back in the data's units: ``X ≈ W' H'``."""
        return self.abundances_to_data(W), self.spectra_to_data(H)

    def abundances_to_data(self, W: np.ndarray) -> np.ndarray:
        """W of a fit of M in the data's units (zero rows without signal)."""
        r = np.where(self.rows > 0, self.rows, 1.0)
        return np.where(self.keep[:, None], W / r[:, None], 0.0)

    def spectra_to_data(self, H: np.ndarray) -> np.ndarray:
        """H of a fit of M in the data's units."""
        c = np.where(self.columns > 0, self.columns, 1.0)
        return np.where(self.columns > 0, H / c, 0.0)


def prepare(X: Any, noise_model: str, k: int, scaled: bool,
            columns: Optional[np.ndarray] = None) -> Prepared:
    """The weighted matrix of a fit of X (n_pixels, n_channels), non-negative:
    channels weighted for the noise model (or by ``columns``, those of an
    earlier fit, for new data), pixels divided by their totals when
    ``scaled`` (see the module)."""
    n, p = X.shape
    counts = noise_model == "poisson"
    column_means = np.zeros(p)
    totals = np.zeros(n)
    for i, B in _rows(X):
        column_means += B.sum(axis=0)
        totals[i:i + B.shape[0]] = B.sum(axis=1)
    column_means /= max(n, 1)
    if columns is not None:
        columns = np.asarray(columns, dtype=np.float64)
    elif counts:
        positive = column_means[column_means > 0]
        floor = float(np.median(positive)) if positive.size else 1.0
        columns = np.where(column_means > 0, 1.0 / np.sqrt(np.maximum(column_means, floor)), 0.0)
    else:
        columns = np.ones(p)
    M = np.empty((n, p))
    weighted = np.zeros(n)  # the pixels' weighted totals
    variance = np.zeros(n)  # Poisson: the noise energy of each weighted row
    for i, B in _rows(X):
        Z = B * columns
        M[i:i + B.shape[0]] = Z
        weighted[i:i + B.shape[0]] = Z.sum(axis=1)
        if counts:
            variance[i:i + B.shape[0]] = (B * columns**2).sum(axis=1)
    keep = weighted > 0
    if scaled:
        rows = np.where(keep, 1.0 / np.where(keep, weighted, 1.0), 0.0)
    elif counts:
        rows = np.where(totals > 0, 1.0 / np.sqrt(np.maximum(totals / p, 1e-300)), 0.0)
    else:
        rows = np.ones(n)
    M *= rows[:, None]
    if counts:
        noise = variance * rows**2
        source = "Poisson (the counts' own variance)"
        relative = np.where(totals > 0, 1.0 / np.sqrt(np.maximum(totals, 1e-300)), np.inf)
    else:
        sigma2 = regression_variance(X) if keep.sum() > 3 * p else None
        source = "regression of every channel on the others (HySime)"
        if sigma2 is None:
            from .preprocess import noise_variance

            sigma2 = noise_variance(X, k) if min(n, p) > k + 1 else 0.0
            source = f"the residual of the best rank-{k} approximation"
        noise = sigma2 * p * rows**2
        with np.errstate(divide="ignore"):
            relative = np.where(totals > 0, np.sqrt(max(sigma2, 0.0) * p) / np.abs(totals), np.inf)
    targets = np.where(keep, rows, 0.0) if not scaled else keep.astype(np.float64)
    return Prepared(M=M, rows=rows, columns=columns, targets=targets, keep=keep, noise=noise,
                    noise_source=source, totals=totals, relative_total_noise=relative,
                    counts=counts, column_means=column_means)


def _energies(Y: np.ndarray, k: int, noise: np.ndarray) -> tuple[float, float, float]:
    """(excess, residual, noise) energies of the rank-k fit of Y."""
    from .preprocess import noise_variance

    N, C = Y.shape
    if min(N, C) <= k + 1:
        return 0.0, 0.0, 0.0
    dof = float(N - k) * float(C - k)
    residual = noise_variance(Y, k) * dof
    noise_energy = float(np.sum(noise)) * dof / (float(N) * float(C))
    return max(residual - noise_energy, 0.0), residual, noise_energy


def minvol_weight(Y: np.ndarray, k: int, noise: np.ndarray) -> tuple[float, dict[str, float]]:
    r"""The minimum-volume weight for fitting Y (N × C) with k components,
    given the expected noise energy of each row:

    .. math::

        \lambda = \kappa\,\max(0,\ R_k - \nu)

    with :math:`R_k = \|Y - Y_k\|_F^2` the residual of the best rank-k
    approximation, :math:`\nu = \sum_i \mathrm{noise}_i (N-k)(C-k)/(NC)` the
    part of it the noise explains and :data:`MINVOL_EXCESS`
    :math:`\kappa = 0.5`. The excess is structure a linear k-component
    model cannot hold (endmember variability, nonlinear mixing, components
    beyond k); it spreads the data beyond the simplex of the mean
    endmembers and biases a least-squares simplex outwards, which the
    volume term counters in proportion. Where the noise explains the
    residual the weight is zero: a volume term there also shrinks the
    endmembers of minority phases, which few pixels hold in place (measured
    on the real STEM-EDS map of ``bench/real_data.py``: its third phase, a
    few small Ca-perovskite grains, merges with the others under any
    noise-proportional weight). Both are energies of Y, so the weight
    follows the data's scale. Measured in ``bench/real_data.py``: Samson
    (excess 76 % of the residual) 2.3° mean spectral angle against 8.0°
    without the term; synthetic mixtures with endmember variability 2.5°
    against 7-8°.

    Returns
    -------
    weight : float
    info : dict
        ``excess_share`` (share of :math:`R_k` the noise does not explain),
        ``residual_energy`` and ``noise_energy``.
    """
    excess, residual, noise_energy = _energies(Y, k, noise)
    return float(MINVOL_EXCESS * excess), {
        "excess_share": excess / residual if residual > 0 else 0.0,
        "residual_energy": residual, "noise_energy": noise_energy}


@dataclass(frozen=True)
class Physical:
    """The fit in the data's units (see :func:`physical`).

    ``X[i] ≈ intensity[i] * fractions[i] @ endmembers`` for every pixel.
    ``fractions`` rows sum to one (zero rows where a pixel has no signal);
    ``convention`` is "material" or "signal"; ``chi2`` the statistic that
    chose it; ``endmembers * scales[:, None]`` are the fit's spectra in the
    data's units (:meth:`Prepared.to_data`).
    """

    fractions: np.ndarray
    endmembers: np.ndarray
    intensity: np.ndarray
    convention: str
    chi2: float
    scales: np.ndarray  # endmembers[j] * scales[j] is the fit's spectrum in the data's units


def physical(W: np.ndarray, H: np.ndarray, prep: Prepared) -> Physical:
    r"""Fractions, intensities and endmembers in the data's units from a
    scaled sum-to-one fit ``M ≈ W H`` of :func:`prepare`'s matrix.

    In the data's units ``X ≈ W' E`` (:meth:`Prepared.to_data`), each
    endmember up to one scale. Those scales decide what "fraction" means:

    - *material* fractions, when the intensities are constant: the scales
      ``u`` that bring every pixel's intensity :math:`\tau_i = W'_i u`
      closest to one (least squares, ``u >= 0``). When the spread of
      :math:`\tau` around one is within what the noise of the pixel totals
      gives (mean chi-square per pixel at most :data:`CONSISTENT_CHI2`), the
      pixel totals are explained by composition alone, the scales are those
      of the pure materials and the fractions are theirs (espm's
      simulations, linear mixtures);
    - *signal* fractions otherwise (illumination, shading or thickness
      varies): each endmember scaled to the mean pixel total, so that
      ``fractions[i, j]`` is the share of pixel i's signal (reflected light,
      counts) that component j gives, and ``intensity`` is the pixel's total
      relative to the mean.
    """
    keep = prep.keep
    Wd, E = prep.to_data(W, H)
    k = W.shape[1]
    u = nnls(Wd[keep], np.ones(int(keep.sum())))[0] if keep.any() else np.ones(k)
    tau = Wd @ u
    rel = prep.relative_total_noise[keep]
    ok = np.isfinite(rel) & (rel > 0)
    chi2 = float(np.mean((tau[keep][ok] - 1.0) ** 2 / rel[ok] ** 2)) if ok.any() else 0.0
    if np.all(u > 0) and chi2 <= CONSISTENT_CHI2:
        scales, convention = u, "material"
    else:
        mean_total = float(np.mean(prep.totals[keep])) if keep.any() else 1.0
        sums = E.sum(axis=1)
        scales = np.where(sums > 0, sums / mean_total, 1.0)
        convention = "signal"
    F = Wd * scales
    intensity = F.sum(axis=1)
    fractions = np.zeros_like(F)
    fractions[keep] = F[keep] / np.where(intensity[keep] > 0, intensity[keep], 1.0)[:, None]
    return Physical(fractions=fractions, endmembers=E / scales[:, None], intensity=intensity,
                    convention=convention, chi2=chi2, scales=scales)


def dead_components(fractions: np.ndarray, threshold: Optional[float] = None) -> list[int]:
    """The components whose largest fraction is below ``threshold``
    (:data:`DEAD_FRACTION`): present nowhere in the image."""
    limit = DEAD_FRACTION if threshold is None else threshold
    if fractions.size == 0:
        return []
    return [int(j) for j in np.flatnonzero(fractions.max(axis=0) < limit)]
