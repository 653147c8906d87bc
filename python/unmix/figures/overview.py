"""All the figures of an unmixing in one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ._layout import check_count, grid, new_figure
from .composite import composite_figure
from .convergence import convergence_figure
from .maps import abundances_figure, residual_figure
from .spectra import spectra_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..workflow import Unmixing

__all__ = ["plot"]


def plot(unmixing: "Unmixing", *, cmap: str = "viridis", max_maps: Optional[int] = None,
         figsize: Optional[tuple[float, float]] = None, elements: Any = None,
         lines: Any = None, scaling: Any = None) -> "Figure":
    """Spectra, convergence, abundance maps, colour composite and residual
    in one figure.

    Parameters
    ----------
    unmixing : Unmixing
    cmap : str
        Colour map of the abundance maps.
    max_maps : int, optional
        Show only the first (most abundant) maps.
    figsize : (float, float), optional
    elements, lines, scaling
        As in :func:`unmix.figures.spectra_figure`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    m = check_count(max_maps, unmixing.n_components, "max_maps")
    nrows, ncols = grid(m)
    fig = new_figure(figsize or (max(14, 3.3 * ncols + 6), 4.5 + 3.0 * nrows + 0.8))
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.5, 3.0 * nrows + 0.8])
    left, right = top.subfigures(1, 2, width_ratios=[1.6, 1.0])
    spectra_figure(unmixing, left, elements=elements, lines=lines, scaling=scaling)
    convergence_figure(unmixing, right)
    maps, side = bottom.subfigures(1, 2, width_ratios=[3.3 * ncols + 0.4, 5.0])
    abundances_figure(unmixing, maps, cmap=cmap, max_maps=max_maps)
    if len(unmixing.image.spatial_shape) == 1:
        residual_figure(unmixing, side)
    else:
        upper, lower = side.subfigures(2, 1)
        composite_figure(unmixing, upper)
        residual_figure(unmixing, lower)
    return fig
