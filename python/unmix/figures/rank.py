"""The rank selection figure: the spectrum test that decided and the NMF
diagnostics against k."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ._layout import target, width_inches

if TYPE_CHECKING:  # pragma: no cover
    from ..rank import RankSelection

__all__ = ["plot_rank"]


def plot_rank(selection: "RankSelection", fig: Any = None,
              figsize: Optional[tuple[float, float]] = None) -> Any:
    """The spectrum test that decided (singular values squared over the
    noise floor, against component index) and the NMF diagnostics against
    k, the recommended k marked; the reason, wrapped, as the title."""
    fig = target(fig, figsize or (15, 8))
    axes = fig.subplots(2, 4).ravel()
    ks = selection.ks
    k_rec = selection.recommended

    def curve(ax: Any, y: np.ndarray, title: str, ylabel: str, log: bool = False) -> None:
        y = np.asarray(y, dtype=np.float64)
        ok = np.isfinite(y)
        ax.plot(ks[ok], y[ok], marker="o", color="C0")
        positive = y[ok & (y > 0)]
        # Log only where the values span decades: within one, the ticks
        # would read "6 x 10^-1" and a linear axis shows more.
        if log and positive.size and positive.max() > 10 * positive.min():
            ax.set_yscale("log")
        ax.axvline(k_rec, color="C3", ls="--", lw=1.0)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("k")
        ax.set_ylabel(ylabel)
        ax.set_xticks(ks)

    # Where a value was not tested, its floor is that of the last test: the
    # floor hardly changes from one test to the next.
    floor = np.where(np.isfinite(selection.noise_floor), selection.noise_floor,
                     selection.noise_level)
    relative = selection.threshold / selection.noise_level
    ax = axes[0]
    index = np.arange(1, selection.spectrum.size + 1)
    ratio = selection.spectrum / floor
    ax.plot(index, ratio, marker="o", color="C0")
    # The values that decide sit within a few per cent of 1, too close to
    # read off a log axis: written next to their points.
    for n, i in enumerate(np.flatnonzero(np.isfinite(selection.noise_floor))):
        # Neighbours alternate above and below their points: side by side
        # the numbers run into each other.
        ax.annotate(f"{ratio[i]:.3f}", (index[i], ratio[i]), textcoords="offset points",
                    xytext=(4, 4 if n % 2 == 0 else -11), fontsize="x-small")
    ax.axhline(relative, color="C1", ls=":", label=f"threshold {relative:.4g}")
    ax.axhline(1.0, color="0.5", ls=":", label="noise floor")
    ax.axvline(k_rec, color="C3", ls="--", lw=1.0)
    if np.any(selection.spectrum > 0):
        ax.set_yscale("log")
    ax.set_title(f"spectrum: {selection.signal_rank} above the noise", fontsize="medium")
    ax.set_xlabel("component i")
    ax.set_ylabel("s_i² / noise floor")
    ax.set_xticks(index)
    ax.legend(fontsize="small")
    gain = selection.gain / selection.noise_level
    curve(axes[1], np.where(gain > 0, gain, np.nan), "NMF gain per component", "gain / noise floor",
          log=True)
    axes[1].axhline(relative, color="C1", ls=":", label="threshold")
    axes[1].axhline(1.0, color="0.5", ls=":", label="noise floor")
    axes[1].legend(fontsize="small")
    curve(axes[2], selection.rel_error, "relative error", "||X - WH|| / ||X||", log=True)
    curve(axes[3], selection.stability, "stability across restarts", "mean SAD (deg)")
    curve(axes[4], selection.pca_cumulative, "PCA cumulative explained variance", "ratio")
    curve(axes[5], np.where(selection.n_reappearing >= 0, selection.n_reappearing, np.nan),
          "endmembers of k-1 reappearing", "count")
    axes[5].yaxis.get_major_locator().set_params(integer=True)
    curve(axes[6], selection.bic, "BIC-like criterion", "BIC")
    axes[7].set_axis_off()
    # The reason is one long line: wrapped to the figure's width (about 11
    # characters per inch at the medium font), or the title runs off both
    # sides of the picture.
    width = width_inches(fig)
    reason = textwrap.fill(selection.reason, width=max(40, int(width * 11)))
    fig.suptitle(f"rank selection: recommended k = {k_rec} ({selection.noise.model} noise)"
                 f"\n{reason}", fontsize="medium")
    return fig
