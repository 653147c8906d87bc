"""What every figure shares: where it draws, grids of panels, slices of
volumes, colours and the argument checks of the figure functions."""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

import numpy as np


def new_figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def target(fig: Any, figsize: tuple[float, float]) -> Any:
    """The Figure or SubFigure to draw into: the given one, or a new Figure."""
    if fig is None:
        return new_figure(figsize)
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(f"fig must be a matplotlib Figure or SubFigure or None, got {fig!r}")
    return fig


def width_inches(fig: Any) -> float:
    """The width of a Figure or SubFigure in inches (a SubFigure has no
    size of its own: its share of the root figure's)."""
    root = fig
    while not hasattr(root, "get_size_inches"):
        root = root.figure
    return float(fig.bbox.width / root.dpi)


def slice_view(values: np.ndarray, spatial_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """At most 2 spatial axes of per-pixel ``values`` (*spatial, ...): the
    middle slice along the leading axes of a volume, and a note saying so."""
    nd = len(spatial_shape)
    if nd <= 2:
        return values, ""
    index = tuple(s // 2 for s in spatial_shape[:nd - 2])
    where = ", ".join(f"axis {a} at {i} of {s}"
                      for a, (i, s) in enumerate(zip(index, spatial_shape)))
    return values[index], f"\nmiddle slice: {where}"


def channel_label(unit: str) -> str:
    return unit if unit else "channel"


def colour(i: int) -> str:
    return f"C{i % 10}"


def grid(k: int) -> tuple[int, int]:
    ncols = min(k, 4) if k <= 8 else math.ceil(math.sqrt(k))
    return math.ceil(k / ncols), ncols


def check_count(value: Any, k: int, name: str) -> int:
    """A positive integer or None (all ``k``), capped at ``k``."""
    if value is None:
        return k
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return min(int(value), k)


def shares(abundances: np.ndarray) -> np.ndarray:
    """Each component's share of the total abundance."""
    k = abundances.shape[-1]
    totals = abundances.reshape(-1, k).sum(axis=0, dtype=np.float64)
    s = totals.sum()
    return totals / s if s > 0 else np.zeros_like(totals)


def line_scan(fig: Any, curves: np.ndarray, labels: Sequence[str], ylabel: str,
              colours: Optional[Sequence[str]] = None, xlabel: str = "position (pixel)",
              x: Optional[np.ndarray] = None) -> Any:
    """Per-pixel values of a line scan (pixels, m) as curves on one axes."""
    ax = fig.subplots()
    x = np.arange(curves.shape[0]) if x is None else x
    for i in range(curves.shape[1]):
        ax.plot(x, curves[:, i], color=colours[i] if colours else None, label=labels[i])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if 1 < curves.shape[1] <= 12:
        ax.legend(fontsize="small")
    return ax
