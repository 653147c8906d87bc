"""The endmember spectra, in the data's units, with element markers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import lines as _lines
from ._layout import channel_label, colour, shares, target, width_inches

if TYPE_CHECKING:  # pragma: no cover
    from ..workflow import Unmixing

__all__ = ["data_spectra", "spectra_figure"]

#: Channels below this energy hold the detector's zero-energy (strobe)
#: peak in EDS: drawn, but not allowed to set the y-range.
ZERO_PEAK = {"keV": 0.15, "eV": 150.0}


def _renormalize(H: np.ndarray, normalize: Optional[str]) -> np.ndarray:
    if normalize == "max":
        s = H.max(axis=1)
    elif normalize == "sum":
        s = H.sum(axis=1)
    elif normalize is None:
        return H
    else:
        s = np.linalg.norm(H, axis=1)
    return H / np.where(s > 0, s, 1.0)[:, None]


def _poisson_scaled(image: Any) -> bool:
    steps = image.metadata.get("preprocessing", []) if isinstance(image.metadata, dict) else []
    return any(isinstance(s, dict) and s.get("step") == "poisson_scale" for s in steps)


def data_spectra(unmixing: "Unmixing", scaling: Any = None) -> tuple[np.ndarray, str]:
    """The endmember spectra as the figures draw them, and what their values
    are.

    The fraction models' endmembers are already in the data's units (the
    fit's channel weights are undone): counts per pixel of a pure pixel.
    ``scaling`` is the :class:`unmix.preprocess.PoissonScaling` of an
    image scaled by :func:`unmix.preprocess.poisson_scale` before the fit:
    the spectra are then taken back to the counts of the data as read (for
    the fraction models at the scaled image's mean pixel intensity).

    Returns
    -------
    spectra : ndarray, shape (k, channels)
    label : str
        The y-axis label.
    """
    params = unmixing.params
    H = np.asarray(unmixing.endmembers, dtype=np.float64)
    plain = params.get("model", "plain") == "plain"
    if scaling is not None:
        channel = np.asarray(getattr(scaling, "channel_scale", None), dtype=np.float64)
        pixel = np.asarray(getattr(scaling, "pixel_scale", None), dtype=np.float64)
        if channel.shape != (H.shape[1],) or pixel.shape != tuple(unmixing.image.spatial_shape):
            raise ValueError(
                f"scaling must be the PoissonScaling of the unmixed image (channel_scale of "
                f"shape ({H.shape[1]},), pixel_scale of shape {unmixing.image.spatial_shape}), "
                f"got {scaling!r}")
        H = H * channel
        if plain:
            H = _renormalize(H, params.get("normalize"))
        else:
            # x = sqrt(g) * intensity * sum_j f_j H_j sqrt(h): a pure pixel
            # of the mean sqrt(g) * intensity.
            H = H * float(np.mean(pixel * np.asarray(unmixing.intensity, dtype=np.float64)))
    elif _poisson_scaled(unmixing.image):
        return H, "Poisson-scaled data units (not counts)"
    if plain:
        norm = params.get("normalize")
        return H, "intensity" + (f" (normalized: {norm})" if norm else "")
    unit = "counts" if params.get("noise") == "poisson" or scaling is not None else "data units"
    at = (", mean intensity" if params.get("fractions") == "signal" or scaling is not None
          else "")
    return H, f"{unit} per pixel (pure{at})"


def _limits(x: np.ndarray, spectra: np.ndarray, unit: str, eds: bool,
            headroom: float) -> Optional[tuple[float, float]]:
    """y-limits from the channels that matter: without EDS's zero-energy
    peak, room at the top for the markers' labels."""
    keep = np.isfinite(x)
    if eds and unit in ZERO_PEAK:
        above = keep & (x >= ZERO_PEAK[unit])
        keep = above if above.any() else keep
    values = spectra[:, keep]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = min(float(values.min()), 0.0), float(values.max())
    if hi <= lo:
        return None
    return lo, lo + (hi - lo) * 1.04 / max(1.0 - headroom, 0.3)


def draw_spectra(ax: Any, x: np.ndarray, spectra: np.ndarray, labels: list[str], *,
                 unit: str, metadata: Any, elements: Any, lines: Any,
                 size_px: tuple[float, float]) -> list[_lines.Marker]:
    """Curves of ``spectra`` (k, channels) on ``ax`` with the element
    markers; returns the markers drawn."""
    for i, spectrum in enumerate(spectra):
        ax.plot(x, spectrum, color=colour(i), lw=1.0, label=labels[i])
    numeric = np.asarray(x).dtype.kind in "biuf" and np.size(x) > 1
    if numeric:
        ax.set_xlim(float(np.nanmin(x)), float(np.nanmax(x)))
    found = (_lines.markers(metadata, unit, x, elements=elements, lines=lines)
             if numeric else [])
    headroom = _lines.draw(ax, found, size_px=size_px)
    kind = _lines.signal_kind(metadata, unit)
    if numeric:
        ylim = _limits(np.asarray(x, dtype=np.float64), spectra, unit, kind == "eds", headroom)
        if ylim is not None:
            ax.set_ylim(*ylim)
    ax.set_xlabel(channel_label(unit))
    return found


def spectra_figure(unmixing: "Unmixing", fig: Any = None, *, elements: Any = None,
                   lines: Any = None, scaling: Any = None) -> Any:
    """The endmember spectra against the channel axis, in the data's units
    (:func:`data_spectra`), the element lines marked.

    Parameters
    ----------
    unmixing : Unmixing
    fig : matplotlib Figure or SubFigure, optional
        Where to draw; a new Figure when None.
    elements : list of str or str, optional
        Element symbols whose main lines to mark ("Fe,Pt" or ["Fe", "Pt"]).
        Needs eXSpy; without it the spectra have no markers.
    lines : list of str or str, optional
        Single X-ray lines to mark ("Fe_Kb"). When neither ``elements``
        nor ``lines`` is given, the image's ``metadata["elements"]`` and
        ``metadata["xray_lines"]`` (as :func:`unmix.io.read` fills them).
    scaling : PoissonScaling, optional
        What :func:`unmix.preprocess.poisson_scale` returned, when the
        image was scaled before the fit: the spectra are drawn in counts.

    Returns
    -------
    matplotlib Figure or SubFigure
    """
    fig = target(fig, (8, 4))
    ax = fig.subplots()
    spectra, ylabel = data_spectra(unmixing, scaling)
    share = shares(np.asarray(unmixing.abundances))
    labels = [f"#{i + 1} ({100 * share[i]:.1f} %)" for i in range(unmixing.n_components)]
    dpi = fig.dpi
    size = (0.72 * width_inches(fig) * dpi, 0.7 * fig.bbox.height)
    draw_spectra(ax, unmixing.channels, spectra, labels, unit=unmixing.channel_unit,
                 metadata=unmixing.image.metadata, elements=elements, lines=lines, size_px=size)
    ax.set_ylabel(ylabel)
    if unmixing.n_components <= 12:
        ax.legend(fontsize="small", title="share of\nabundance", title_fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.suptitle(f"endmember spectra (k = {unmixing.n_components})")
    return fig
