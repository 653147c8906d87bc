"""Files and a self-contained HTML report for the results of
:func:`unmix.unmix`, :func:`unmix.pca` and :func:`unmix.select_rank`.

The figures are made by :mod:`unmix.figures` (re-exported here, where
they were first published); this module writes them with the arrays, the
HDF5 file and the HTML page.

Every file is written atomically: to a temporary name in the target folder,
then renamed over the final name, so a reader never sees a half-written
file and an interrupted save leaves the previous files intact.
"""

from __future__ import annotations

import base64
import html
import io
import json
import numbers
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from ._files import atomic_write
from .figures import (abundances_figure, composite_figure, convergence_figure, intensity_figure,
                      pca_components_figure, pca_scores_figure, plot, plot_pca, plot_rank,
                      residual_figure, scree_figure, spectra_figure)
from .figures import lines as _lines
from .figures._layout import shares as _layout_shares

if TYPE_CHECKING:  # pragma: no cover
    from .rank import RankSelection
    from .workflow import PCAResult, Unmixing

__all__ = [
    "abundances_figure", "composite_figure", "convergence_figure", "intensity_figure",
    "pca_components_figure", "pca_scores_figure", "plot", "plot_pca", "plot_rank",
    "residual_figure", "save", "save_pca", "save_rank", "scree_figure", "spectra_figure",
]

_DPI = 100


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


def save(unmixing: "Unmixing", folder: Any, *, elements: Any = None, lines: Any = None,
         scaling: Any = None) -> list[Path]:
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
    figures ``spectra.png`` (the element lines marked), ``abundances.png``
    (each map on its own scale), ``composite.png`` (the main components in
    colour; maps only), ``intensity.png`` (scaled model), ``residual.png``
    and ``convergence.png``; and ``report.html``, a self-contained page
    with the figures embedded.

    Parameters
    ----------
    unmixing : Unmixing
    folder : str or os.PathLike
    elements, lines, scaling
        As in :func:`unmix.figures.spectra_figure`: the elements and X-ray
        lines to mark (default: the file's), the Poisson scaling applied
        before the fit (the spectra are then drawn in counts).

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
    from .io._hyperspy import save_hyperspy_beside  # unmixing.hspy, for hs.load (issue 15)
    written += save_hyperspy_beside(u, path)

    figures = [
        ("spectra.png", spectra_figure(u, elements=elements, lines=lines, scaling=scaling),
         "Endmember spectra" + _markers_caption(u, elements, lines)),
        ("abundances.png", abundances_figure(u),
         "Abundance maps, each on its own colour scale."),
    ]
    if len(u.image.spatial_shape) >= 2:
        figures.append(("composite.png", composite_figure(u),
                        "The main components in one picture, each in its own colour."))
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
    summary += _elements_rows(u.image.metadata, elements, lines)
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
             for i, s in enumerate(_layout_shares(np.asarray(u.abundances)))],
            ["component", "share", "scale"])),
    ]
    written.append(_write_bytes(path / "report.html",
                                _html(f"Unmixing: {u.image.name or 'spectral image'}",
                                      sections)))
    return written


def _markers_caption(u: "Unmixing", elements: Any, lines: Any) -> str:
    found = _lines.markers(u.image.metadata, u.channel_unit, u.channels, elements=elements,
                           lines=lines)
    if not found:
        return "."
    names = sorted({m.element for m in found})
    return f", the lines of {', '.join(names)} marked (eXSpy's database)."


def _elements_rows(metadata: Any, elements: Any, lines: Any) -> list[tuple[str, Any]]:
    """Which elements the spectra mark, or why they mark none."""
    wanted, named = _lines.requested(metadata, elements, lines)
    if not wanted and not named:
        return []
    rows: list[tuple[str, Any]] = [("elements", ", ".join(wanted + named))]
    missing = _lines.database_missing()
    if missing:
        rows.append(("element markers", f"not drawn: {missing}"))
    else:
        unknown = _lines.unknown_elements(wanted)
        if unknown:
            rows.append(("element markers", f"unknown element(s): {', '.join(unknown)}"))
    return rows


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
