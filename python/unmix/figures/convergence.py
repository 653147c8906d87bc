"""The relative error of the best restart against iteration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._layout import target

if TYPE_CHECKING:  # pragma: no cover
    from ..workflow import Unmixing

__all__ = ["convergence_figure"]


def convergence_figure(unmixing: "Unmixing", fig: Any = None) -> Any:
    """Relative error against iteration (log scale) of the best restart."""
    fig = target(fig, (6, 4))
    ax = fig.subplots()
    rel = np.asarray(unmixing.result.rel_error, dtype=np.float64)
    ax.plot(np.arange(rel.size), rel, marker="." if rel.size <= 50 else None, color="C0")
    positive = rel[rel > 0]
    # A log axis where the error falls by decades; within one, its ticks
    # would read "8.75 x 10^-1" and a linear axis shows more.
    if positive.size and positive.max() > 10 * positive.min():
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("||X - WH|| / ||X||")
    r = unmixing.result
    fig.suptitle(f"convergence: {r.n_iter} iterations, stop: {r.stop_reason}")
    return fig
