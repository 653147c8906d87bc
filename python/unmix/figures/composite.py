"""A colour composite: up to three components' maps in one picture, each
in its own colour, the way a microscopist overlays element maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from . import calibration
from ._layout import line_scan, shares, slice_view, target

if TYPE_CHECKING:  # pragma: no cover
    from ..workflow import Unmixing

__all__ = ["COMPOSITE_COLOURS", "composite_figure", "composite_image"]

#: The colours of the composite's components, by their number: additive
#: primaries, so that where components mix their colours add (red and
#: green make yellow). Two components get magenta and green, which stay
#: apart for red-green colour blindness.
COMPOSITE_COLOURS = {
    1: ((1.0, 1.0, 1.0),),
    2: ((1.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    3: ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
}

#: Each map is stretched from the first to the second percentile of its
#: values: a few hot pixels would otherwise leave the rest dark, and a
#: component present everywhere would tint the whole picture.
_PERCENTILES = (1.0, 99.5)


def composite_image(maps: np.ndarray) -> tuple[np.ndarray, tuple[tuple[float, ...], ...]]:
    """An RGB image (rows, cols, 3) in [0, 1] from ``maps`` (rows, cols, m),
    m from 1 to 3: each map stretched to [0, 1] (its 1st percentile is 0,
    its 99.5th 1) times its colour of :data:`COMPOSITE_COLOURS`, summed.
    Returns the image and the colours."""
    maps = np.asarray(maps, dtype=np.float64)
    m = maps.shape[-1]
    if maps.ndim != 3 or m not in COMPOSITE_COLOURS:
        raise ValueError(f"maps must have shape (rows, cols, m) with m from 1 to 3, got shape "
                         f"{maps.shape}")
    colours = COMPOSITE_COLOURS[m]
    rgb = np.zeros(maps.shape[:2] + (3,))
    for j in range(m):
        values = np.nan_to_num(maps[..., j], nan=0.0)
        lo, hi = (np.percentile(values, _PERCENTILES) if values.size else (0.0, 0.0))
        if hi <= lo:  # (nearly) constant: its range, or nothing
            lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
        if hi <= lo:
            continue
        rgb += np.clip((values - lo) / (hi - lo), 0.0, 1.0)[..., None] * np.asarray(colours[j])
    return np.clip(rgb, 0.0, 1.0), colours


def _components(components: Any, k: int) -> list[int]:
    if components is None:
        return list(range(min(k, 3)))
    if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
        raise TypeError(f"components must be a sequence of 1 to 3 component indices or None, "
                        f"got {components!r}")
    out = list(components)
    if not 1 <= len(out) <= 3 or len(set(out)) != len(out) or not all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < k
            for c in out):
        raise ValueError(f"components must be 1 to 3 distinct indices from 0 to {k - 1}, "
                         f"got {components!r}")
    return [int(c) for c in out]


def composite_figure(unmixing: "Unmixing", fig: Any = None, *,
                     components: Optional[Sequence[int]] = None) -> Any:
    """The main components (by default the three most abundant) in one
    colour picture, a legend naming each colour's component; curves in the
    same colours for a line scan, the middle slice of a volume.

    Parameters
    ----------
    unmixing : Unmixing
    fig : matplotlib Figure or SubFigure, optional
    components : sequence of int, optional
        1 to 3 component indices (0 is the first, "#1"), in the order red,
        green, blue (magenta, green for two).

    Returns
    -------
    matplotlib Figure or SubFigure
    """
    from matplotlib.patches import Patch

    chosen = _components(components, unmixing.n_components)
    spatial = unmixing.image.spatial_shape
    metadata = unmixing.image.metadata
    share = shares(np.asarray(unmixing.abundances))
    names = [f"#{c + 1} ({100 * share[c]:.1f} %)" for c in chosen]
    values, note = slice_view(np.asarray(unmixing.abundances)[..., chosen], spatial)
    colours = COMPOSITE_COLOURS[len(chosen)]
    # White would vanish on the white background of a line scan's axes.
    curve_colours = [c if c != (1.0, 1.0, 1.0) else (0.0, 0.0, 0.0) for c in colours]
    if len(spatial) == 1:
        fig = target(fig, (7, 4))
        axis = calibration.spatial_axes(metadata, 1)[0]
        line_scan(fig, values, names, "fraction", curve_colours, xlabel=axis.label(),
                  x=axis.positions(values.shape[0]))
    else:
        rows, cols = values.shape[:2]
        aspect = min(max(rows / max(cols, 1), 0.4), 2.5)
        fig = target(fig, (6.0, 3.9 * aspect + 0.8))
        ax = fig.subplots()
        rgb, _ = composite_image(values)
        axes_cal = calibration.spatial_axes(metadata, 2)
        ax.imshow(rgb, interpolation="nearest", extent=calibration.extent(axes_cal, (rows, cols)))
        calibration.calibrate(ax, axes_cal)
        calibration.add_scale_bar(ax, axes_cal, (rows, cols))
        ax.legend(handles=[Patch(facecolor=c, edgecolor="0.3", label=n)
                           for c, n in zip(colours, names)],
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize="small", title="component", title_fontsize="small")
    fig.suptitle(f"colour composite of components {', '.join(f'#{c + 1}' for c in chosen)}"
                 f"{note}")
    return fig
