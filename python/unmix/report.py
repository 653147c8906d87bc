"""Figures, files and a self-contained HTML report for the results of
:func:`unmix.unmix`, :func:`unmix.pca` and :func:`unmix.select_rank`.

Figures are :class:`matplotlib.figure.Figure` objects made directly, never
through pyplot: nothing touches matplotlib's global state or needs a GUI
backend, and the figures are garbage-collected like any object. Display one
in a notebook by leaving it as the cell's value.

Every file is written atomically: to a temporary name in the target folder,
then renamed over the final name, so a reader never sees a half-written
file and an interrupted save leaves the previous files intact.

Maps follow the image's spatial dimensions: a line scan (1 spatial axis) is
drawn as curves, a map (2) as images, and a volume (3 or more) as the middle
slice along its leading axes, which the titles state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ._files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .rank import RankSelection
    from .workflow import PCAResult, Unmixing

__all__ = [
    "abundances_figure", "convergence_figure", "plot", "plot_pca", "plot_rank",
    "residual_figure", "save", "save_pca", "save_rank", "spectra_figure",
]

_DPI = 100


# ---------------------------------------------------------------------------
# Figure helpers
# ---------------------------------------------------------------------------


def _figure(figsize: tuple[float, float]) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _target(fig: Any, figsize: tuple[float, float]) -> Any:
    """The Figure or SubFigure to draw into: the given one, or a new Figure."""
    if fig is None:
        return _figure(figsize)
    from matplotlib.figure import FigureBase

    if not isinstance(fig, FigureBase):
        raise TypeError(f"fig must be a matplotlib Figure or SubFigure or None, got {fig!r}")
    return fig


def _slice_view(values: np.ndarray, spatial_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """At most 2 spatial axes of per-pixel ``values`` (*spatial, ...): the
    middle slice along the leading axes of a volume, and a note saying so."""
    nd = len(spatial_shape)
    if nd <= 2:
        return values, ""
    index = tuple(s // 2 for s in spatial_shape[:nd - 2])
    where = ", ".join(f"axis {a} at {i} of {s}"
                      for a, (i, s) in enumerate(zip(index, spatial_shape)))
    return values[index], f"\nmiddle slice: {where}"


def _channel_label(unit: str) -> str:
    return unit if unit else "channel"


def _colour(i: int) -> str:
    return f"C{i % 10}"


def _grid(k: int) -> tuple[int, int]:
    ncols = min(k, 4) if k <= 8 else math.ceil(math.sqrt(k))
    return math.ceil(k / ncols), ncols


def _check_max_maps(max_maps: Any, k: int) -> int:
    if max_maps is None:
        return k
    if isinstance(max_maps, bool) or not isinstance(max_maps, numbers.Integral) or max_maps < 1:
        raise ValueError(f"max_maps must be a positive integer or None, got {max_maps!r}")
    return min(int(max_maps), k)


def _shares(unmixing: "Unmixing") -> np.ndarray:
    totals = unmixing.abundances.reshape(-1, unmixing.n_components).sum(axis=0,
                                                                       dtype=np.float64)
    s = totals.sum()
    return totals / s if s > 0 else np.zeros_like(totals)


def _maps_grid(fig: Any, maps: np.ndarray, titles: Sequence[str], *, cmap: str,
               shared: bool, symmetric: bool, label: str) -> None:
    """Images of ``maps`` (rows, cols, m) in a grid; one colour scale for all
    with one colourbar (``shared``), or one scale and colourbar per map."""
    m = maps.shape[-1]
    nrows, ncols = _grid(m)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()

    def limits(a: np.ndarray) -> tuple[float, float]:
        finite = a[np.isfinite(a)]
        if finite.size == 0:
            return 0.0, 1.0
        if symmetric:
            v = float(np.abs(finite).max()) or 1.0
            return -v, v
        lo, hi = float(min(finite.min(), 0.0)), float(finite.max())
        return lo, (hi if hi > lo else lo + 1.0)

    vmin, vmax = limits(maps)
    image = None
    for i, ax in enumerate(axes):
        if i >= m:
            ax.set_axis_off()
            continue
        lo, hi = (vmin, vmax) if shared else limits(maps[..., i])
        image = ax.imshow(maps[..., i], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(titles[i], fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
        if not shared:
            fig.colorbar(image, ax=ax, shrink=0.85)
    if shared and image is not None:
        fig.colorbar(image, ax=list(axes[:m]), shrink=0.85, label=label)


def _line_scan(fig: Any, curves: np.ndarray, labels: Sequence[str], ylabel: str,
               colours: Optional[Sequence[str]] = None) -> None:
    """Per-pixel values of a line scan (pixels, m) as curves on one axes."""
    ax = fig.subplots()
    x = np.arange(curves.shape[0])
    for i in range(curves.shape[1]):
        ax.plot(x, curves[:, i], color=colours[i] if colours else None, label=labels[i])
    ax.set_xlabel("position (pixel)")
    ax.set_ylabel(ylabel)
    if curves.shape[1] > 1 and curves.shape[1] <= 12:
        ax.legend(fontsize="small")


# ---------------------------------------------------------------------------
# Unmixing figures
# ---------------------------------------------------------------------------


def spectra_figure(unmixing: "Unmixing", fig: Any = None) -> Any:
    """The endmember spectra against the channel axis."""
    fig = _target(fig, (7, 4))
    ax = fig.subplots()
    shares = _shares(unmixing)
    for i, spectrum in enumerate(unmixing.endmembers):
        ax.plot(unmixing.channels, spectrum, color=_colour(i), lw=1.0,
                label=f"#{i + 1} ({100 * shares[i]:.1f} %)")
    ax.set_xlabel(_channel_label(unmixing.channel_unit))
    ax.set_ylabel(_spectrum_label(unmixing))
    if unmixing.n_components <= 12:
        ax.legend(fontsize="small", title="share of abundance", title_fontsize="small")
    fig.suptitle(f"endmember spectra (k = {unmixing.n_components})")
    return fig


def _spectrum_label(unmixing: "Unmixing") -> str:
    """What the endmember spectra's values are."""
    params = unmixing.params
    if params.get("model", "plain") == "plain":
        norm = params.get("normalize")
        return "intensity" + (f" (normalized: {norm})" if norm else "")
    unit = "counts" if params.get("noise") == "poisson" else "data units"
    at = " at the mean intensity" if params.get("fractions") == "signal" else ""
    return f"{unit} per pixel (pure{at})"


def _abundance_label(unmixing: "Unmixing") -> str:
    return "abundance" if unmixing.params.get("model", "plain") == "plain" else "fraction"


def abundances_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "viridis",
                      max_maps: Optional[int] = None) -> Any:
    """The abundance maps on one shared colour scale (curves for a line
    scan, the middle slice of a volume)."""
    k = unmixing.n_components
    m = _check_max_maps(max_maps, k)
    spatial = unmixing.image.spatial_shape
    values, note = _slice_view(np.asarray(unmixing.abundances)[..., :m], spatial)
    shares = _shares(unmixing)
    titles = [f"#{i + 1} ({100 * shares[i]:.1f} %)" for i in range(m)]
    if len(spatial) == 1:
        fig = _target(fig, (7, 4))
        _line_scan(fig, values, titles, _abundance_label(unmixing),
                   [_colour(i) for i in range(m)])
    else:
        nrows, ncols = _grid(m)
        fig = _target(fig, (2.6 * ncols + 1.2, 2.4 * nrows + 0.6))
        _maps_grid(fig, values, titles, cmap=cmap, shared=True, symmetric=False,
                   label=_abundance_label(unmixing))
    shown = "" if m == k else f", first {m} of {k}"
    fig.suptitle(f"abundances{shown}{note}")
    return fig


def intensity_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "gray") -> Any:
    """The per-pixel intensity of the scaled sum-to-one model (illumination,
    thickness relative to what the composition gives)."""
    spatial = unmixing.image.spatial_shape
    values, note = _slice_view(np.asarray(unmixing.intensity), spatial)
    if len(spatial) == 1:
        fig = _target(fig, (7, 3.5))
        _line_scan(fig, values[:, None], ["intensity"], "intensity", ["k"])
    else:
        fig = _target(fig, (5, 4.2))
        _maps_grid(fig, values[..., None], [""], cmap=cmap, shared=True,
                   symmetric=False, label="intensity")
    fig.suptitle(f"intensity ({unmixing.params.get('fractions', '')} fractions){note}")
    return fig


def residual_figure(unmixing: "Unmixing", fig: Any = None, *, cmap: str = "magma") -> Any:
    """The per-pixel residual norm ``||x - w H||``."""
    spatial = unmixing.image.spatial_shape
    values, note = _slice_view(np.asarray(unmixing.residual), spatial)
    if len(spatial) == 1:
        fig = _target(fig, (7, 3.5))
        _line_scan(fig, values[:, None], ["residual"], "||x - wH||", ["k"])
    else:
        fig = _target(fig, (5, 4.2))
        _maps_grid(fig, values[..., None], [""], cmap=cmap, shared=True,
                   symmetric=False, label="||x - wH||")
    fig.suptitle(f"residual, relative error {unmixing.rel_error:.3g}{note}")
    return fig


def convergence_figure(unmixing: "Unmixing", fig: Any = None) -> Any:
    """Relative error against iteration (log scale) of the best restart."""
    fig = _target(fig, (6, 4))
    ax = fig.subplots()
    rel = np.asarray(unmixing.result.rel_error, dtype=np.float64)
    ax.plot(np.arange(rel.size), rel, marker="." if rel.size <= 50 else None, color="C0")
    if np.any(rel > 0):  # a log axis needs positive data (an exact fit reaches 0)
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("||X - WH|| / ||X||")
    r = unmixing.result
    fig.suptitle(f"convergence: {r.n_iter} iterations, stop: {r.stop_reason}")
    return fig


def plot(unmixing: "Unmixing", *, cmap: str = "viridis", max_maps: Optional[int] = None,
         figsize: Optional[tuple[float, float]] = None) -> "Figure":
    """Spectra, convergence, abundance maps and residual in one figure.

    Parameters
    ----------
    unmixing : Unmixing
    cmap : str
        Colour map of the abundance maps.
    max_maps : int, optional
        Show only the first (most abundant) maps.
    figsize : (float, float), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    m = _check_max_maps(max_maps, unmixing.n_components)
    nrows, _ = _grid(m)
    fig = _figure(figsize or (13, 7 + 2.2 * nrows))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.5 + 0.6 * nrows])
    left, right = top.subfigures(1, 2, width_ratios=[1.6, 1.0])
    spectra_figure(unmixing, left)
    convergence_figure(unmixing, right)
    left, right = bottom.subfigures(1, 2, width_ratios=[1.8, 1.0])
    abundances_figure(unmixing, left, cmap=cmap, max_maps=max_maps)
    residual_figure(unmixing, right)
    return fig


# ---------------------------------------------------------------------------
# PCA figures
# ---------------------------------------------------------------------------


def pca_components_figure(result: "PCAResult", fig: Any = None, *, max_components: int = 6) -> Any:
    """The first principal axes against the channel axis."""
    fig = _target(fig, (7, 4))
    m = _check_max_maps(max_components, result.n_components)
    ax = fig.subplots()
    ax.axhline(0.0, color="0.6", lw=0.8)
    for i in range(m):
        ax.plot(result.channels, result.components[i], color=_colour(i), lw=1.0,
                label=f"PC{i + 1} ({100 * result.explained_variance_ratio[i]:.1f} %)")
    ax.set_xlabel(_channel_label(result.channel_unit))
    ax.set_ylabel("loading")
    ax.legend(fontsize="small")
    fig.suptitle("principal components" + ("" if m == result.n_components
                                           else f" (first {m} of {result.n_components})"))
    return fig


def pca_scores_figure(result: "PCAResult", fig: Any = None, *, cmap: str = "RdBu_r",
                      max_maps: Optional[int] = 6) -> Any:
    """Score maps, each on its own symmetric colour scale (later components
    are weaker, and one shared scale would hide them)."""
    m = _check_max_maps(max_maps, result.n_components)
    spatial = result.image.spatial_shape
    values, note = _slice_view(np.asarray(result.scores)[..., :m], spatial)
    titles = [f"PC{i + 1}" for i in range(m)]
    if len(spatial) == 1:
        fig = _target(fig, (7, 4))
        _line_scan(fig, values, titles, "score", [_colour(i) for i in range(m)])
    else:
        nrows, ncols = _grid(m)
        fig = _target(fig, (2.9 * ncols + 0.6, 2.4 * nrows + 0.6))
        _maps_grid(fig, values, titles, cmap=cmap, shared=False, symmetric=True, label="score")
    fig.suptitle("scores" + note)
    return fig


def scree_figure(result: "PCAResult", fig: Any = None) -> Any:
    """Explained variance ratio per component (log) and cumulative."""
    fig = _target(fig, (6, 4))
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
             figsize: Optional[tuple[float, float]] = None) -> "Figure":
    """Components, scree and score maps in one figure."""
    m = _check_max_maps(max_maps, result.n_components)
    nrows, _ = _grid(m)
    fig = _figure(figsize or (13, 6.5 + 2.2 * nrows))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.5 + 0.6 * nrows])
    left, right = top.subfigures(1, 2, width_ratios=[1.6, 1.0])
    pca_components_figure(result, left)
    scree_figure(result, right)
    pca_scores_figure(result, bottom, max_maps=max_maps)
    return fig


# ---------------------------------------------------------------------------
# Rank selection figure
# ---------------------------------------------------------------------------


def plot_rank(selection: "RankSelection", fig: Any = None,
              figsize: Optional[tuple[float, float]] = None) -> Any:
    """The spectrum test that decided (singular values squared over the
    noise floor, against component index) and the NMF diagnostics against
    k, the recommended k marked; the reason, wrapped, as the title."""
    import textwrap

    fig = _target(fig, figsize or (15, 8))
    axes = fig.subplots(2, 4).ravel()
    ks = selection.ks
    k_rec = selection.recommended

    def curve(ax: Any, y: np.ndarray, title: str, ylabel: str, log: bool = False) -> None:
        y = np.asarray(y, dtype=np.float64)
        ok = np.isfinite(y)
        ax.plot(ks[ok], y[ok], marker="o", color="C0")
        if log and np.any(y[ok] > 0):
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
    for i in np.flatnonzero(np.isfinite(selection.noise_floor)):
        ax.annotate(f"{ratio[i]:.3f}", (index[i], ratio[i]), textcoords="offset points",
                    xytext=(4, 4), fontsize="x-small")
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
    root = fig
    while not hasattr(root, "get_size_inches"):  # a SubFigure: its parent's width
        root = root.figure
    width = float(root.get_size_inches()[0])
    reason = textwrap.fill(selection.reason, width=max(40, int(width * 11)))
    fig.suptitle(f"rank selection: recommended k = {k_rec} ({selection.noise.model} noise)"
                 f"\n{reason}", fontsize="medium")
    return fig


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def _folder(folder: Any) -> Path:
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or os.PathLike), got {folder!r}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ValueError(f"folder must be a directory, got the file {str(path)!r}")
    path.mkdir(parents=True, exist_ok=True)
    return path



def _write_bytes(path: Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:  # "x": created here, with the umask's permissions
            f.write(data)

    return atomic_write(path, write)


def _write_npy(path: Path, array: np.ndarray) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)

    return atomic_write(path, write)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _describe(value: Any) -> Any:
    """A JSON-able stand-in for what JSON cannot hold: arrays by shape and
    dtype (small ones by value), callables by name, the rest by repr."""
    if isinstance(value, np.ndarray):
        if value.size <= 64 and value.dtype.kind in "biuf":
            return value.tolist()
        return f"<array shape {value.shape} dtype {value.dtype}>"
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # sparse matrices, h5py datasets
        return f"<{type(value).__name__} shape {tuple(value.shape)} dtype {value.dtype}>"
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if callable(value):
        return getattr(value, "__qualname__", None) or repr(value)
    return repr(value)


def _json(value: Any) -> str:
    return json.dumps(value, default=_describe, ensure_ascii=False)


_INT64 = (-(2**63), 2**63 - 1)


def _h5_attribute(value: Any) -> tuple[Any, bool]:
    """The value h5py stores for ``value``, and whether it is JSON text."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value), False
    if isinstance(value, numbers.Integral):
        if _INT64[0] <= int(value) <= _INT64[1]:
            return np.int64(value), False
        return _json(int(value)), True
    if isinstance(value, numbers.Real):
        return np.float64(value), False
    if isinstance(value, str):
        return value, False
    if (isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.ndim == 1
            and value.size <= 1024):
        return value, False
    return _json(value), True


def _write_h5(path: Path, datasets: dict[str, Any], attrs: dict[str, Any]) -> Path:
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w-") as f:
            for name, data in datasets.items():
                data = np.asarray(data)
                if data.dtype.kind not in "biuf":  # e.g. channel names
                    data = data.astype(str).astype(h5py.string_dtype())
                f.create_dataset(name, data=data)
            encoded = []
            for name, value in attrs.items():
                stored, is_json = _h5_attribute(value)
                f.attrs[name] = stored
                if is_json:
                    encoded.append(name)
            # Readers json.loads() exactly these attributes.
            f.attrs["json_encoded_attributes"] = _json(encoded)

    return atomic_write(path, write)


def _version() -> str:
    from . import _core

    return str(_core.__version__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _image_description(image: Any) -> list[tuple[str, Any]]:
    channels = np.asarray(image.channels)
    span = (f"{channels[0]:g} to {channels[-1]:g}" if channels.dtype.kind in "biuf"
            and channels.size else "")
    return [
        ("image", image.name or "(unnamed)"),
        ("spatial shape", " x ".join(str(s) for s in image.spatial_shape)),
        ("channels", f"{image.n_channels}" + (f", {span}" if span else "")
         + (f" {image.channel_unit}" if image.channel_unit else "")),
        ("dtype", str(image.data.dtype)),
    ]


def _common_attrs(image: Any) -> dict[str, Any]:
    return {
        "unmix_version": _version(),
        "created": _now(),
        "image_name": image.name,
        "channel_unit": image.channel_unit,
        "spatial_shape": np.asarray(image.spatial_shape, dtype=np.int64),
        "image_metadata": _json(image.metadata),
    }


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left;
         vertical-align: top; font-size: 0.9em; }
th { background: #f2f2f2; }
td.v { font-family: monospace; white-space: pre-wrap; word-break: break-all; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
footer { margin-top: 2em; font-size: 0.8em; color: #666; }
"""


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, np.bool_, numbers.Integral)):
        text = str(value)
    else:  # lists, dicts, arrays, callables ...
        text = _json(value)
    return html.escape(text)


def _table(rows: Sequence[Sequence[Any]], header: Optional[Sequence[str]] = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        first, *rest = row
        out.append(f"<tr><th>{_cell(first)}</th>"
                   + "".join(f'<td class="v">{_cell(v)}</td>' for v in rest) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img(png: bytes, name: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _html(title: str, sections: Sequence[tuple[str, str]]) -> bytes:
    """A complete HTML document; everything inline (no external CSS, JS,
    fonts or images), so the file can be mailed or archived alone."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n"
        f"<footer>unmix {html.escape(_version())}, {html.escape(_now())}</footer>\n"
        "</body>\n</html>\n"
    )
    return document.encode("utf-8")


def _figures(folder: Path, figures: Sequence[tuple[str, Any, str]],
             written: list[Path]) -> str:
    """Writes each figure as PNG and returns the HTML embedding the same bytes."""
    parts = []
    for name, fig, caption in figures:
        png = _png(fig)
        written.append(_write_bytes(folder / name, png))
        parts.append(_img(png, name, caption))
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------


def save(unmixing: "Unmixing", folder: Any) -> list[Path]:
    """Writes an unmixing to ``folder`` (created if needed).

    Files: ``W.npy`` (abundances, shape (*spatial, k): the fractions of the
    fraction models, rows summing to one), ``H.npy`` (endmembers, (k,
    channels), in the data's units for the fraction models),
    ``channels.npy``, ``intensity.npy`` (the scaled model's per-pixel
    intensity, shape (*spatial)); ``unmixing.h5`` with the datasets
    ``endmembers``, ``abundances``, ``intensity``, ``residual``, ``channels``,
    ``objective``, ``rel_error`` (per iteration), ``scales``, ``order`` and
    ``restart_seeds`` / ``restart_objectives`` / ``restart_n_iter``, the
    parameters as root attributes (those h5py cannot store — None, lists,
    dicts, arrays, callables — as JSON text, listed in the attribute
    ``json_encoded_attributes``) plus ``n_iter``, ``converged``,
    ``stop_reason``, ``timings``, ``unmix_version`` and ``created``; the
    figures ``spectra.png``, ``abundances.png``, ``intensity.png`` (scaled
    model), ``residual.png`` and ``convergence.png``; and ``report.html``, a self-contained page with the
    figures embedded.

    Returns
    -------
    list of pathlib.Path
        The files written, each atomically.
    """
    path = _folder(folder)
    u = unmixing
    r = u.result
    written = [
        _write_npy(path / "W.npy", u.abundances),
        _write_npy(path / "H.npy", u.endmembers),
        _write_npy(path / "channels.npy", u.channels),
    ]
    scaled = u.params.get("model") == "scaled"
    if scaled:
        written.append(_write_npy(path / "intensity.npy", u.intensity))
    attrs = dict(u.params)
    attrs.update(_common_attrs(u.image))
    attrs.update({
        "n_iter": int(r.n_iter), "converged": bool(r.converged),
        "stop_reason": str(r.stop_reason), "timings": _json(dict(r.timings)),
        "final_rel_error": u.rel_error,
    })
    written.append(_write_h5(path / "unmixing.h5", {
        "endmembers": u.endmembers, "abundances": u.abundances, "residual": u.residual,
        "intensity": u.intensity,
        "channels": u.channels, "objective": r.objective, "rel_error": r.rel_error,
        "scales": u.scales, "order": u.order,
        "restart_seeds": np.array([s.seed for s in u.restarts], dtype=np.uint64),
        "restart_objectives": np.array([s.objective for s in u.restarts]),
        "restart_n_iter": np.array([s.n_iter for s in u.restarts], dtype=np.int64),
    }, attrs))

    figures = [
        ("spectra.png", spectra_figure(u), "Endmember spectra."),
        ("abundances.png", abundances_figure(u), "Abundance maps on one colour scale."),
    ]
    if scaled:
        figures.append(("intensity.png", intensity_figure(u),
                        "Per-pixel intensity: x = intensity * fractions @ endmembers."))
    figures_html = _figures(path, figures + [
        ("residual.png", residual_figure(u), "Per-pixel residual norm ||x - wH||."),
        ("convergence.png", convergence_figure(u), "Relative error per iteration (best restart)."),
    ], written)

    best = int(np.argmin([s.objective for s in u.restarts]))
    summary = _image_description(u.image) + [
        ("components", u.n_components),
        ("relative error", u.rel_error),
        ("final objective", float(r.objective[-1])),
        ("iterations", int(r.n_iter)),
        ("converged", bool(r.converged)),
        ("stop reason", r.stop_reason),
        ("best restart", f"{best + 1} of {len(u.restarts)}"),
        ("noise model", f"{u.params.get('noise', '')}: {u.params.get('noise_reason', '')}"),
        ("model", u.params.get("model", "plain")),
    ]
    if u.params.get("model") == "scaled":
        summary.append(("fractions", f"of the {u.params.get('fractions')} "
                        f"(intensity chi-square per pixel {u.params.get('intensity_chi2', 0):.3g})"))
    summary += [("note", event) for event in u.events]
    restarts = [(i + 1, s.seed, s.objective, s.n_iter) for i, s in enumerate(u.restarts)]
    sections = [
        ("Summary", _table(summary)),
        ("Figures", figures_html),
        ("Parameters", _table(sorted(u.params.items()), ["parameter", "value"])),
        ("Restarts", _table(restarts, ["restart", "seed", "objective", "iterations"])),
        ("Timings (s)", _table(sorted(r.timings.items()), ["step", "seconds"])),
        ("Component shares", _table(
            [(f"#{i + 1}", f"{100 * s:.2f} %", float(u.scales[i]))
             for i, s in enumerate(_shares(u))], ["component", "share", "scale"])),
    ]
    written.append(_write_bytes(path / "report.html",
                                _html(f"Unmixing: {u.image.name or 'spectral image'}",
                                      sections)))
    return written


def save_pca(result: "PCAResult", folder: Any) -> list[Path]:
    """Writes a PCA to ``folder``: ``pca_components.npy``, ``pca_scores.npy``,
    ``pca_mean.npy``, ``channels.npy``, ``pca.h5`` (the same arrays plus the
    explained variances, attributes as in :func:`save`), the figures
    ``pca_components.png``, ``pca_scores.png``, ``pca_scree.png`` and
    ``pca_report.html``. Returns the paths written."""
    path = _folder(folder)
    p = result
    written = [
        _write_npy(path / "pca_components.npy", p.components),
        _write_npy(path / "pca_scores.npy", p.scores),
        _write_npy(path / "pca_mean.npy", p.mean),
        _write_npy(path / "channels.npy", p.channels),
    ]
    attrs = {"n_components": p.n_components, "method": p.method,
             "total_variance": p.total_variance}
    attrs.update(_common_attrs(p.image))
    written.append(_write_h5(path / "pca.h5", {
        "components": p.components, "scores": p.scores, "mean": p.mean,
        "channels": p.channels, "explained_variance": p.explained_variance,
        "explained_variance_ratio": p.explained_variance_ratio,
    }, attrs))
    figures_html = _figures(path, [
        ("pca_components.png", pca_components_figure(p), "Principal axes."),
        ("pca_scores.png", pca_scores_figure(p), "Score maps, each on its own scale."),
        ("pca_scree.png", scree_figure(p), "Explained variance ratio."),
    ], written)
    ratio = p.explained_variance_ratio
    variances = [(f"PC{i + 1}", float(p.explained_variance[i]), float(ratio[i]),
                  float(np.sum(ratio[:i + 1]))) for i in range(min(p.n_components, 30))]
    sections = [
        ("Summary", _table(_image_description(p.image) + [
            ("components", p.n_components), ("method", p.method),
            ("total variance", p.total_variance),
            ("explained (all kept components)", float(ratio.sum()))])),
        ("Figures", figures_html),
        ("Explained variance", _table(variances, ["component", "variance", "ratio",
                                                  "cumulative"])),
    ]
    written.append(_write_bytes(path / "pca_report.html",
                                _html(f"PCA: {p.image.name or 'spectral image'}", sections)))
    return written


def save_rank(selection: "RankSelection", folder: Any) -> list[Path]:
    """Writes a rank selection to ``folder``: ``rank_selection.h5`` (the
    curves as datasets, the best endmembers of every k as
    ``endmembers_k{k}``, the parameters and the recommendation as
    attributes), ``rank_selection.png`` and ``rank_report.html``. Returns the
    paths written."""
    path = _folder(folder)
    s = selection
    attrs = dict(s.params)
    attrs.update(_common_attrs(s.image))
    attrs.update({"recommended": int(s.recommended), "reason": s.reason,
                  "signal_rank": int(s.signal_rank), "noise_level": s.noise_level,
                  "threshold": s.threshold})
    datasets: dict[str, Any] = {
        "ks": s.ks, "rel_error": s.rel_error, "rss": s.rss, "gain": s.gain,
        "pca_cumulative": s.pca_cumulative, "stability": s.stability,
        "n_reappearing": s.n_reappearing, "bic": s.bic, "channels": s.image.channels,
        "spectrum": s.spectrum, "noise_floor": s.noise_floor,
        "spectrum_threshold": s.spectrum_threshold,
    }
    datasets.update({f"endmembers_k{k}": u.endmembers for k, u in s.unmixings.items()})
    written = [_write_h5(path / "rank_selection.h5", datasets, attrs)]
    figures_html = _figures(path, [("rank_selection.png", plot_rank(s),
                                    "The spectrum test (first panel) decides; the NMF "
                                    "diagnostics against k follow. The dashed line is the "
                                    "recommendation.")],
                            written)
    rows = [(int(k), float(s.rel_error[j]), float(s.gain[j]), float(s.stability[j]),
             float(s.pca_cumulative[j]), int(s.n_reappearing[j]), float(s.bic[j]))
            for j, k in enumerate(s.ks)]
    sections = [
        ("Recommendation", _table([("recommended k", int(s.recommended)),
                                   ("reason", s.reason),
                                   ("noise model", f"{s.noise.model}: {s.noise.reason}"),
                                   ("components above the noise", int(s.signal_rank)),
                                   ("noise floor", s.noise_level),
                                   ("threshold", s.threshold)])),
        ("Figures", figures_html),
        ("Per rank", _table(rows, ["k", "rel. error", "gain", "stability (deg)",
                                   "PCA cumulative", "reappearing", "BIC"])),
        ("Summary", _table(_image_description(s.image))),
        ("Parameters", _table(sorted(s.params.items()), ["parameter", "value"])),
    ]
    written.append(_write_bytes(path / "rank_report.html",
                                _html(f"Rank selection: {s.image.name or 'spectral image'}",
                                      sections)))
    return written
