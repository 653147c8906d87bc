"""HDF5 files (``.h5 .hdf5 .nxs .hspy``) through h5py: any numeric dataset,
HyperSpy's ``axis-<i>`` groups and NeXus ``NXdata`` axes understood."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ._common import (_NUMERIC_KINDS, _Raw, _signal_axis_default, _text, _unreadable,
                      _values)
from ._lazy import LazyArray
from ._metadata import h5_tree, sample_metadata
from ._registry import register

# Names under which the channel axis values and unit are looked for.
_CHANNEL_KEYS = ("channels", "axis")
_UNIT_KEYS = ("channel_unit", "units", "unit")


def _h5py() -> Any:
    import h5py

    return h5py


def _open_h5(path: Path, what: str) -> Any:
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise _unreadable(path, what, err) from None


def _attrs(obj: Any) -> dict:
    """Small attributes as plain Python values (for metadata)."""
    out = {}
    for k, v in obj.attrs.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, np.ndarray) and v.size <= 64:
            v = v.tolist()
        elif isinstance(v, np.ndarray):
            continue
        out[k] = v
    return out


def _h5_damage(err: Exception, path: Path) -> bool:
    """Whether h5py raised this on a damaged file (walking the groups, reading
    a dtype, an attribute or data: OSError, RuntimeError, KeyError, ValueError
    ...), rather than the readers here on a well-formed one (their messages
    name the file)."""
    return not (isinstance(err, (ValueError, TypeError)) and str(path) in str(err))


def _read_hdf5(path: Path, dataset: Any, partial: bool = False) -> _Raw:
    if dataset is not None and not isinstance(dataset, str):
        raise TypeError(f"dataset must be a path (str) inside the HDF5 file, got {dataset!r}")
    return _read_open_h5(path, "an HDF5 file", lambda f: _hdf5_array(path, f, dataset))


def _read_open_h5(path: Path, what: str, array: Any) -> _Raw:
    """``array(f)`` of the open file, which stays open with the result (its
    data may be lazy) and is closed on any error; damage is reported as
    such."""
    f = _open_h5(path, what)
    try:
        raw = array(f)
    except Exception as err:
        f.close()
        if not _h5_damage(err, path):
            raise
        raise _unreadable(path, what, err) from None
    except BaseException:
        f.close()
        raise
    raw.file = f
    return raw


def _hdf5_array(path: Path, f: Any, dataset: Any) -> _Raw:
    h5py = _h5py()
    datasets: list[tuple[str, Any]] = []
    f.visititems(lambda n, o: datasets.append((n, o)) if isinstance(o, h5py.Dataset) else None)

    def describe(items: list) -> str:
        return ", ".join(f"/{n} {o.shape} {o.dtype}" for n, o in items) or "none"

    if dataset is not None:
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be a path (str) inside the HDF5 file, got {dataset!r}")
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            raise ValueError(f"dataset {dataset!r} is not a dataset of {str(path)!r}; datasets: "
                             f"{describe(datasets)}")
        name = obj.name
    else:
        candidates = [(n, o) for n, o in datasets
                      if o.ndim >= 2 and o.dtype.kind in _NUMERIC_KINDS]
        if len(candidates) > 1:
            preferred = [(n, o) for n, o in candidates if _is_hyperspy_data(n, o)
                         or _is_nexus_signal(o)]
            if len(preferred) == 1:
                candidates = preferred
        if not candidates:
            raise ValueError(f"{str(path)!r} is not a spectral image: no numeric dataset with "
                             f"at least 2 dimensions; datasets: {describe(datasets)}")
        if len(candidates) > 1:
            raise ValueError(f"{str(path)!r} holds several datasets that could be the image; "
                             f"choose one with dataset=: {describe(candidates)}")
        name, obj = "/" + candidates[0][0], candidates[0][1]
    if obj.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"dataset {name!r} of {str(path)!r} is not numeric (dtype {obj.dtype})")

    raw = _Raw(LazyArray(obj), False, "hdf5", name=Path(name).name, metadata={
        "dataset": name, "attrs": _attrs(obj)})
    parent = obj.parent
    if any(f"axis-{i}" in parent for i in range(obj.ndim)):  # HyperSpy layout
        raw.fmt = "hspy"
        raw.axes = [_hspy_axis(parent.get(f"axis-{i}"), obj.shape[i]) for i in range(obj.ndim)]
        title = parent.name.rsplit("/", 1)[-1]
        raw.name = title if title and title != "Experiments" else path.stem
        raw.default_channel_axis = _signal_axis_default(raw.axes)
        raw.axes_known = True
        tree = parent.get("metadata")
        if isinstance(tree, h5py.Group):
            raw.metadata.update(sample_metadata(h5_tree(tree)))
        return raw
    for key in _CHANNEL_KEYS:
        if key in obj.attrs and _values(obj.attrs[key]) is not None:
            raw.channels = _values(obj.attrs[key])
            break
    for key in _UNIT_KEYS:
        if key in obj.attrs:
            raw.channel_unit = _text(obj.attrs[key])
            break
    sibling = parent.get("channels")
    if raw.channels is None and isinstance(sibling, h5py.Dataset) and sibling != obj:
        raw.channels = _values(sibling[()])
        if not raw.channel_unit:
            raw.channel_unit = next((_text(sibling.attrs[k]) for k in ("units", "unit")
                                     if k in sibling.attrs), "")
    if raw.channels is None and "axes" in parent.attrs:  # NeXus NXdata
        raw.axes = _nexus_axes(parent, obj)
    return raw


def _is_hyperspy_data(name: str, obj: Any) -> bool:
    parts = name.strip("/").split("/")
    return len(parts) == 3 and parts[0] == "Experiments" and parts[2] == "data"


def _is_nexus_signal(obj: Any) -> bool:
    signal = obj.parent.attrs.get("signal")
    return signal is not None and _text(signal) == obj.name.rsplit("/", 1)[-1]


def _hspy_axis(group: Any, size: int) -> dict:
    if group is None:
        return {"name": "", "units": "", "navigate": True}
    a = group.attrs
    ax = {"name": _text(a.get("name", "")), "units": _text(a.get("units", "")),
          "navigate": bool(a.get("navigate", True))}
    if "axis" in group:
        ax["values"] = np.asarray(group["axis"][()], dtype=float)
    elif "axis" in a:
        ax["values"] = np.asarray(a["axis"], dtype=float)
    elif "scale" in a and "offset" in a:
        ax["offset"], ax["scale"] = float(a["offset"]), float(a["scale"])
    return ax


def _nexus_axes(group: Any, obj: Any) -> Optional[list[dict]]:
    names = group.attrs["axes"]
    names = [names] if isinstance(names, (str, bytes)) else list(np.asarray(names).reshape(-1))
    names = [_text(n) for n in names]
    if len(names) != obj.ndim:
        return None
    axes = []
    for i, n in enumerate(names):
        ax: dict = {"name": n if n != "." else "", "units": ""}
        ds = group.get(n) if n and n != "." else None
        if ds is not None and getattr(ds, "shape", None) == (obj.shape[i],):
            ax["values"] = _values(ds[()])
            ax["units"] = next((_text(ds.attrs[k]) for k in ("units", "unit")
                                if k in ds.attrs), "")
        axes.append(ax)
    return axes


register("HDF5, HyperSpy, NeXus", (".h5", ".hdf5", ".nxs", ".hspy"), _read_hdf5)
