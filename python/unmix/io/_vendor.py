"""Vendor formats read through RosettaSciIO (``pip install "unmix[vendor]"``)."""

from __future__ import annotations

import importlib
import inspect
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ._common import _Raw, _drop_frames, _signal_axis_default, _text, _unreadable
from ._logs import captured
from ._metadata import sample_metadata
from ._registry import register

#: Extensions read through RosettaSciIO, and the ``rsciio`` plugin reading them.
VENDOR_FORMATS: dict[str, str] = {
    ".bcf": "bruker", ".spx": "bruker",
    ".dm3": "digitalmicrograph", ".dm4": "digitalmicrograph",
    ".emd": "emd",
    ".rpl": "ripple",
    ".msa": "msa", ".ems": "msa", ".mas": "msa", ".emsa": "msa",
    ".ser": "tia", ".emi": "tia",
    ".spd": "edax", ".spc": "edax",
    ".pts": "jeol",
    ".unf": "semper",
    ".blo": "blockfile",
    ".wdf": "renishaw",
    ".sur": "digitalsurf", ".pro": "digitalsurf",
    ".elid": "phenom",
    ".prz": "pantarhei",
    ".mrc": "mrc",
    ".zspy": "zspy",
}


def _read_rsciio(path: Path, dataset: Any, partial: bool) -> _Raw:
    plugin = VENDOR_FORMATS[path.suffix.lower()]
    try:
        importlib.import_module("rsciio")
    except ImportError:
        raise ImportError(f"reading {path.suffix} files ({str(path)!r}) needs RosettaSciIO: "
                          'pip install "unmix[vendor]"') from None
    try:
        module = importlib.import_module(f"rsciio.{plugin}")
    except ImportError as err:
        raise ImportError(f"reading {path.suffix} files ({str(path)!r}) needs RosettaSciIO's "
                          f"{plugin!r} reader, which cannot be imported: {err}") from err
    reader = module.file_reader
    kwargs = {}
    lazy_capable = "lazy" in inspect.signature(reader).parameters
    if partial and lazy_capable:
        kwargs["lazy"] = True
    try:
        with captured() as log:
            try:
                signals = reader(str(path), **kwargs)
            except NotImplementedError:
                # Some readers take lazy= but refuse it (renishaw): read it whole.
                if not kwargs.pop("lazy", False):
                    raise
                signals = reader(str(path), **kwargs)
    except ImportError as err:
        raise ImportError(f"reading {str(path)!r} needs a package RosettaSciIO's {plugin!r} "
                          f"reader imports: {err}") from err
    except Exception as err:  # the readers raise anything on a bad file
        _drop_frames(err)
        raise _unreadable(path, f"a {path.suffix} file (RosettaSciIO {plugin!r})", err) from err
    if isinstance(signals, dict):
        signals = [signals]

    def describe() -> str:
        return "; ".join(f"{i}: {_title(s)!r} {tuple(np.shape(s['data']))} "
                         f"({_n_signal_axes(s)} signal axes)" for i, s in enumerate(signals))

    if dataset is not None:
        if isinstance(dataset, str):
            matches = [i for i, s in enumerate(signals) if _title(s) == dataset]
            if len(matches) != 1:
                raise ValueError(f"dataset must be the index or title of one signal of "
                                 f"{str(path)!r}, got {dataset!r}; signals: {describe()}")
            index = matches[0]
        elif isinstance(dataset, numbers.Integral) and not isinstance(dataset, bool):
            if not 0 <= dataset < len(signals):
                raise ValueError(f"dataset must be a signal index in [0, {len(signals)}) of "
                                 f"{str(path)!r}, got {dataset}; signals: {describe()}")
            index = int(dataset)
        else:
            raise TypeError(f"dataset must be a signal index (int) or title (str), got "
                            f"{dataset!r}")
    else:
        spectral = [i for i, s in enumerate(signals) if _n_signal_axes(s) == 1]
        pictures = [i for i, s in enumerate(signals)
                    if _n_signal_axes(s) == 2 and np.ndim(s["data"]) == 2]
        pool = spectral or pictures
        if len(pool) != 1:
            what = "no signal with one signal axis" if not pool else "several signals"
            raise ValueError(f"{str(path)!r}: {what}; choose one with dataset= (index or "
                             f"title): {describe()}")
        index = pool[0]
    s = signals[index]
    axes = sorted(s.get("axes", []), key=lambda a: a.get("index_in_array", 0))
    meta_axes = [_rsciio_axis(a) for a in axes]
    raw = _Raw(s["data"], isinstance(s["data"], np.ndarray) and not isinstance(
        s["data"], np.memmap), plugin, axes=meta_axes if len(meta_axes) == np.ndim(
            s["data"]) else None, name=_title(s) or path.stem,
        metadata={"dataset": index, **sample_metadata(s.get("metadata")),
                  "original_metadata": s.get("metadata", {})})
    if log:  # RosettaSciIO's own warnings ("Cannot find package lumispy ..."): kept, not shown
        raw.metadata["reader_log"] = list(log)
    if raw.axes is not None:
        raw.default_channel_axis = _signal_axis_default(raw.axes)
        raw.axes_known = True
    return raw


def _title(s: dict) -> str:
    return str(s.get("metadata", {}).get("General", {}).get("title", "") or "")


def _n_signal_axes(s: dict) -> int:
    return sum(1 for a in s.get("axes", []) if not a.get("navigate", False))


def _finite_or(value: Any, default: float) -> float:
    """A float from a reader's axis field; the default when it is missing or
    not a finite number (a damaged header leaves None or text there)."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return v if np.isfinite(v) else default


def _rsciio_axis(a: dict) -> dict:
    ax = {"name": _text(a.get("name") or ""), "units": _text(a.get("units") or ""),
          "navigate": bool(a.get("navigate", True))}
    values = None
    if a.get("axis") is not None:
        try:
            values = np.asarray(a["axis"], dtype=float)
        except (TypeError, ValueError):
            values = None
    if values is not None:
        ax["values"] = values
    else:
        ax["offset"] = _finite_or(a.get("offset", 0.0), 0.0)
        ax["scale"] = _finite_or(a.get("scale", 1.0), 1.0)
    return ax


register("vendor formats through RosettaSciIO", tuple(VENDOR_FORMATS), _read_rsciio,
         needs="rosettasciio")
