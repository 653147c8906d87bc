"""Per-pixel maps: abundances, intensity, residual (and PCA scores).

Every map has its own colour scale and colour bar: a weak component on a
scale shared with a strong one would be a dark square. Maps are drawn in
the file's spatial units with a scale bar (:mod:`.calibration`); a line
scan is drawn as curves, a volume as its middle slice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from . import calibration
from ._layout import check_count, colour, grid, line_scan, shares, slice_view, target

if TYPE_CHECKING:  # pragma: no cover
    from ..workflow import Unmixing

__all__ = ["abundances_figure", "intensity_figure", "residual_figure"]


def limits(values: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """The colour limits of one map: its own range from 0 (or symmetric
    about 0)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if symmetric:
        v = float(np.abs(finite).max()) or 1.0
        return -v, v
    lo, hi = float(min(finite.min(), 0.0)), float(finite.max())
    return lo, (hi if hi > lo else lo + 1.0)


def draw_maps(fig: Any, maps: np.ndarray, titles: Sequence[str], metadata: Any, *,
              cmap: str, symmetric: bool = False, label: str = "") -> list[Any]:
    """Images of ``maps`` (rows, cols, m) in a grid, each on its own colour
    scale with its own colour bar (labelled ``label`` on the last of each
    row), in calibrated axes with a scale bar. Returns the image axes."""
    m = maps.shape[-1]
    shape = maps.shape[:2]
    axes_cal = calibration.spatial_axes(metadata, 2)
    nrows, ncols = grid(m)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    box = calibration.extent(axes_cal, shape)
    for i, ax in enumerate(axes):
        if i >= m:
            ax.set_axis_off()
            continue
        lo, hi = limits(maps[..., i], symmetric)
        image = ax.imshow(maps[..., i], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest",
                          extent=box)
        ax.set_title(titles[i], fontsize="medium")
        row, col = divmod(i, ncols)
        calibration.calibrate(ax, axes_cal, xlabel=row == nrows - 1 or i + ncols >= m,
                              ylabel=col == 0)
        calibration.add_scale_bar(ax, axes_cal, shape)
        # An inset follows the image's box (square pixels leave the axes
        # taller or wider than the image): the bar is as tall as the map.
        bar = fig.colorbar(image, cax=ax.inset_axes([1.04, 0.0, 0.05, 1.0]))
        bar.ax.tick_params(labelsize="x-small")
        if label and (col == ncols - 1 or i == m - 1):
            bar.set_label(label, fontsize="small")
    return list(axes[:m])


def draw_per_pixel(fig: Any, values: np.ndarray, spatial: tuple[int, ...], titles: Sequence[str],
                   metadata: Any, *, cmap: str, ylabel: str, symmetric: bool = False,
                   colours: Optional[Sequence[str]] = None) -> str:
    """Per-pixel ``values`` (*spatial, m): curves for a line scan, maps
    otherwise (the middle slice of a volume). Returns the slice note."""
    shown, note = slice_view(values, spatial)
    if len(spatial) == 1:
        axis = calibration.spatial_axes(metadata, 1)[0]
        line_scan(fig, shown, titles, ylabel, colours, xlabel=axis.label(),
                  x=axis.positions(shown.shape[0]))
    else:
        draw_maps(fig, shown, titles, metadata, cmap=cmap, symmetric=symmetric, label=ylabel)
    return note


def _size(m: int, spatial: tuple[int, ...]) -> tuple[float, float]:
    if len(spatial) == 1:
        return (7, 4)
    nrows, ncols = grid(m)
    rows, cols = (spatial[-2], spatial[-1])
    aspect = min(max(rows / max(cols, 1), 0.4), 2.5)
    return (3.3 * ncols + 0.4, (2.6 * aspect + 0.7) * nrows + 0.7)


def _abundance_label(unmixing: "Unmixing") -> str:
    return "abundance" if unmixing.params.get("model", "plain") == "plain" else "fraction"


def abundances_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "viridis",
                      max_maps: Optional[int] = None) -> Any:
    """The abundance maps, each on its own colour scale with its own colour
    bar, in the file's spatial units with a scale bar (curves for a line
    scan, the middle slice of a volume)."""
    k = unmixing.n_components
    m = check_count(max_maps, k, "max_maps")
    spatial = unmixing.image.spatial_shape
    share = shares(np.asarray(unmixing.abundances))
    titles = [f"#{i + 1} ({100 * share[i]:.1f} %)" for i in range(m)]
    fig = target(fig, _size(m, spatial))
    note = draw_per_pixel(fig, np.asarray(unmixing.abundances)[..., :m], spatial, titles,
                          unmixing.image.metadata, cmap=cmap,
                          ylabel=_abundance_label(unmixing),
                          colours=[colour(i) for i in range(m)])
    shown = "" if m == k else f", first {m} of {k}"
    scale = "" if len(spatial) == 1 else ", each on its own scale"
    fig.suptitle(f"{_abundance_label(unmixing)} maps{shown}{scale}{note}")
    return fig


def intensity_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "gray") -> Any:
    """The per-pixel intensity of the scaled sum-to-one model (illumination,
    thickness relative to what the composition gives)."""
    return _one_map(unmixing, unmixing.intensity, fig, cmap, "intensity",
                    f"intensity ({unmixing.params.get('fractions', '')} fractions)")


def residual_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "magma") -> Any:
    """The per-pixel residual norm ``||x - w H||``."""
    return _one_map(unmixing, unmixing.residual, fig, cmap, "||x - wH||",
                    f"residual, relative error {unmixing.rel_error:.3g}")


def _one_map(unmixing: "Unmixing", values: Any, fig: Any, cmap: str, ylabel: str,
             title: str) -> Any:
    """One per-pixel quantity as a calibrated map (a curve for a line scan)."""
    spatial = unmixing.image.spatial_shape
    fig = target(fig, _size(1, spatial))
    note = draw_per_pixel(fig, np.asarray(values)[..., None], spatial, [""],
                          unmixing.image.metadata, cmap=cmap, ylabel=ylabel, colours=["k"])
    fig.suptitle(title + note)
    return fig
