"""Spatial calibration of maps: axes in the units of the file and a scale bar.

The readers of :mod:`unmix.io` put the pixel size in
``image.metadata["spatial_axes"]``: one dict per spatial axis with
``name``, ``units``, ``offset`` and ``scale``. Without it (or without
units) maps are drawn in pixels and carry no scale bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["Axis", "add_scale_bar", "nice_length", "scale_bar_label", "spatial_axes"]

# Lengths a scale bar may be written in, largest first, in metres.
_LENGTHS = (("km", 1e3), ("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9), ("pm", 1e-12))
_IN_METRES = dict(_LENGTHS) | {"um": 1e-6, "μm": 1e-6, "micron": 1e-6, "Å": 1e-10,
                               "A": 1e-10, "angstrom": 1e-10}


@dataclass(frozen=True)
class Axis:
    """One spatial axis: pixel ``i`` is at ``offset + i * scale`` ``units``."""

    name: str
    units: str
    offset: float
    scale: float

    @property
    def calibrated(self) -> bool:
        return bool(self.units)

    def label(self) -> str:
        if not self.calibrated:
            return f"{self.name or 'position'} (pixel)"
        return f"{self.name} ({self.units})" if self.name else self.units

    def edges(self, n: int) -> tuple[float, float]:
        """Where the first and last of ``n`` pixels end (pixel centres at
        the calibrated positions)."""
        return (self.offset - 0.5 * self.scale, self.offset + (n - 0.5) * self.scale)

    def positions(self, n: int) -> np.ndarray:
        return self.offset + self.scale * np.arange(n)


def _axis(entry: Any) -> Optional[Axis]:
    if not isinstance(entry, dict):
        return None
    units = str(entry.get("units") or "").strip()
    if units.lower() in ("<undefined>", "undefined", "none", "pixel", "pixels", "px"):
        units = ""
    try:
        scale = float(entry.get("scale", 1.0))
        offset = float(entry.get("offset", 0.0))
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(scale) and scale > 0 and math.isfinite(offset)):
        return None
    name = str(entry.get("name") or "").strip()
    if name.lower() in ("<undefined>", "undefined", "none"):
        name = ""
    return Axis(name, units, offset if units else 0.0, scale if units else 1.0)


def spatial_axes(metadata: Any, ndim: int) -> list[Axis]:
    """The last ``ndim`` spatial axes of an image (those a map shows) from
    its metadata, uncalibrated pixel axes where the metadata says nothing
    usable."""
    given = metadata.get("spatial_axes") if isinstance(metadata, dict) else None
    given = list(given) if isinstance(given, (list, tuple)) else []
    axes = [_axis(e) for e in given[-ndim:]] if len(given) >= ndim else []
    if len(axes) != ndim or any(a is None for a in axes):
        return [Axis("", "", 0.0, 1.0) for _ in range(ndim)]
    return axes  # type: ignore[return-value]


def nice_length(span: float, fraction: float = 0.2) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``fraction`` of
    ``span``: a scale bar length a reader takes in at a glance."""
    if not (span > 0 and math.isfinite(span)):
        raise ValueError(f"span must be positive and finite, got {span!r}")
    target = span * fraction
    power = 10.0 ** math.floor(math.log10(target))
    for step in (5.0, 2.0, 1.0):
        if step * power <= target * (1 + 1e-9):
            return step * power
    return power  # pragma: no cover (step 1 always fits)


def scale_bar_label(length: float, units: str) -> str:
    """``length`` written with the prefix that keeps the number between 1
    and 1000 where ``units`` is a length ("0.2 µm" becomes "200 nm")."""
    metres = _IN_METRES.get(units)
    if metres is None:
        return f"{length:g} {units}"
    value = length * metres
    for name, size in _LENGTHS:
        if value >= size * (1 - 1e-9):
            return f"{_round(value / size):g} {name}"
    name, size = _LENGTHS[-1]
    return f"{_round(value / size):g} {name}"


def _round(value: float) -> float:
    return float(f"{value:.6g}")  # no 199.99999999999997 from the unit conversion


def calibrate(ax: Any, axes: Sequence[Axis], *, xlabel: bool = True,
              ylabel: bool = True) -> None:
    """Ticks and labels of a map drawn with :func:`extent`."""
    from matplotlib.ticker import MaxNLocator

    row, col = axes
    # Few ticks: stage coordinates such as -8100 µm run into each other on
    # a small map.
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize="x-small", length=2)
    if xlabel:
        ax.set_xlabel(col.label(), fontsize="small")
    if ylabel:
        ax.set_ylabel(row.label(), fontsize="small")


def extent(axes: Sequence[Axis], shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """``imshow``'s extent for a map whose rows run along ``axes[0]`` and
    columns along ``axes[1]`` (first row at the top)."""
    row, col = axes
    x0, x1 = col.edges(shape[1])
    y0, y1 = row.edges(shape[0])
    return (x0, x1, y1, y0)


def add_scale_bar(ax: Any, axes: Sequence[Axis], shape: tuple[int, int]) -> Any:
    """A scale bar in the lower right corner of a calibrated map (drawn
    with :func:`extent`): a round length of about a fifth of the width,
    white on a dark box so that it reads on any colour map. None for an
    uncalibrated map."""
    col = axes[1]
    if not col.calibrated:
        return None
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_length(col.scale * shape[1])
    bar = AnchoredSizeBar(ax.transData, length, scale_bar_label(length, col.units),
                          "lower right", pad=0.3, borderpad=0.4, sep=2, color="white",
                          frameon=True, size_vertical=0, label_top=True,
                          fontproperties=FontProperties(size="x-small"))
    bar.patch.set(facecolor="black", alpha=0.55, edgecolor="none")
    # A line rather than a filled box: its height stays a few points at any
    # pixel size.
    bar.size_bar.get_children()[0].set(linewidth=2.0, edgecolor="white")
    ax.add_artist(bar)
    return bar
