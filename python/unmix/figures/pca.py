"""Figures of a PCA: principal axes, score maps, scree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ._layout import check_count, colour, grid, new_figure, target, width_inches
from .maps import draw_per_pixel
from .spectra import draw_spectra

if TYPE_CHECKING:  # pragma: no cover
    from ..workflow import PCAResult

__all__ = ["pca_components_figure", "pca_scores_figure", "plot_pca", "scree_figure"]


def pca_components_figure(result: "PCAResult", fig: Any = None, *, max_components: int = 6,
                          elements: Any = None, lines: Any = None) -> Any:
    """The first principal axes against the channel axis, the element
    lines marked (``elements``, ``lines`` as in
    :func:`unmix.figures.spectra_figure`)."""
    fig = target(fig, (8, 4))
    m = check_count(max_components, result.n_components, "max_components")
    ax = fig.subplots()
    ax.axhline(0.0, color="0.6", lw=0.8)
    labels = [f"PC{i + 1} ({100 * result.explained_variance_ratio[i]:.1f} %)" for i in range(m)]
    size = (0.72 * width_inches(fig) * fig.dpi, 0.7 * fig.bbox.height)
    draw_spectra(ax, result.channels, np.asarray(result.components[:m]), labels,
                 unit=result.channel_unit, metadata=result.image.metadata, elements=elements,
                 lines=lines, size_px=size)
    ax.set_ylabel("loading")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.suptitle("principal components" + ("" if m == result.n_components
                                           else f" (first {m} of {result.n_components})"))
    return fig


def pca_scores_figure(result: "PCAResult", fig: Any = None, *, cmap: str = "RdBu_r",
                      max_maps: Optional[int] = 6) -> Any:
    """Score maps, each on its own symmetric colour scale (later components
    are weaker, and one shared scale would hide them)."""
    m = check_count(max_maps, result.n_components, "max_maps")
    spatial = result.image.spatial_shape
    if len(spatial) == 1:
        fig = target(fig, (7, 4))
    else:
        nrows, ncols = grid(m)
        fig = target(fig, (3.3 * ncols + 0.4, 3.0 * nrows + 0.6))
    note = draw_per_pixel(fig, np.asarray(result.scores)[..., :m], spatial,
                          [f"PC{i + 1}" for i in range(m)], result.image.metadata, cmap=cmap,
                          ylabel="score", symmetric=True, colours=[colour(i) for i in range(m)])
    fig.suptitle("scores, each on its own scale" + note)
    return fig


def scree_figure(result: "PCAResult", fig: Any = None) -> Any:
    """Explained variance ratio per component (log) and cumulative."""
    fig = target(fig, (6, 4))
    ax = fig.subplots()
    x = np.arange(1, result.n_components + 1)
    ratio = result.explained_variance_ratio
    ax.plot(x, ratio, marker="o", ms=3, color="C0", label="per component")
    if np.any(ratio > 0):
        ax.set_yscale("log")
    ax.set_xlabel("component")
    ax.set_ylabel("explained variance ratio", color="C0")
    twin = ax.twinx()
    twin.plot(x, np.cumsum(ratio), color="C1", label="cumulative")
    twin.set_ylim(0, 1.02)
    twin.set_ylabel("cumulative", color="C1")
    fig.suptitle("scree")
    return fig


def plot_pca(result: "PCAResult", *, max_maps: Optional[int] = 6,
             figsize: Optional[tuple[float, float]] = None, elements: Any = None,
             lines: Any = None) -> Any:
    """Components, scree and score maps in one figure."""
    m = check_count(max_maps, result.n_components, "max_maps")
    nrows, _ = grid(m)
    fig = new_figure(figsize or (13, 6.5 + 2.8 * nrows))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.5 + 0.75 * nrows])
    left, right = top.subfigures(1, 2, width_ratios=[1.6, 1.0])
    pca_components_figure(result, left, elements=elements, lines=lines)
    scree_figure(result, right)
    pca_scores_figure(result, bottom, max_maps=max_maps)
    return fig
