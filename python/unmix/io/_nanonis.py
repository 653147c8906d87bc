"""Nanonis grid spectroscopy files (``.3ds``: STM current-imaging tunnelling
spectroscopy, CITS).

The format, as Nanonis writes it: an ASCII header of ``key=value`` lines
(values optionally in double quotes, lists separated by ``;``) up to a
line ``:HEADER_END:``; then one record per grid point, row by row (x
fastest), of big-endian float32 numbers: the fixed parameters (the sweep's
start and end among them), the experiment parameters, then for each
channel its sweep of ``Points`` values. Points never measured (a grid
stopped early) hold NaN.

One channel is read (``dataset=``), the sweep becomes the channel axis.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path
from typing import Any

import numpy as np

from ._common import _Raw, _unreadable
from ._registry import register

_END = b":HEADER_END:"
# Headers are a few kB; a file without the marker in its first MB is not a 3ds file.
_MAX_HEADER = 1 << 20
# Records missing at the end of a file are read as unmeasured points (NaN)
# while the filled array is at most this many times the data present.
_MAX_MISSING = 16
# The dI/dV lock-in channel under the names Nanonis gave it over the versions.
_DIDV = re.compile(r"^(lockinx|lidemod\d*x|didv)")


def _header(path: Path) -> tuple[dict[str, str], int]:
    """The header's fields and the offset of the first record."""
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER)
    end = head.find(_END)
    if end < 0:
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file (truncated or "
                      f"corrupted?): no {_END.decode()} line in its first {_MAX_HEADER} bytes")
    start = end + len(_END)
    for newline in (b"\r\n", b"\n"):
        if head.startswith(newline, start):
            start += len(newline)
            break
    fields = {}
    for line in head[:end].decode("latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields, start


def _field(fields: dict[str, str], key: str, path: Path) -> str:
    if key not in fields:
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file: its header has no "
                      f"{key!r} field (fields: {', '.join(fields)})")
    return fields[key]


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(";") if t.strip()]


def _unit(name: str) -> str:
    m = re.search(r"\(([^()]*)\)\s*$", name)
    return m.group(1) if m else ""


def _bare(name: str) -> str:
    """A channel name compared loosely: no unit, no case, no spaces or ``_ -``."""
    return re.sub(r"[\s_\-/]", "", re.sub(r"\([^()]*\)\s*$", "", name)).lower()


def _choose(path: Path, channels: list[str], dataset: Any) -> tuple[int, str]:
    """The index of the channel asked for (or of the default) and why it was chosen."""
    listing = ", ".join(repr(c) for c in channels)
    if dataset is None:
        didv = [i for i, c in enumerate(channels) if _DIDV.match(_bare(c))]
        if didv:
            return didv[0], "the dI/dV lock-in channel (the default)"
        if len(channels) == 1:
            return 0, "the only channel"
        raise ValueError(f"{str(path)!r} has several channels and none is a dI/dV lock-in "
                         f"channel; choose one with dataset= (name or index): {listing}")
    if isinstance(dataset, numbers.Integral) and not isinstance(dataset, bool):
        if not 0 <= dataset < len(channels):
            raise ValueError(f"dataset must be a channel index in [0, {len(channels)}) of "
                             f"{str(path)!r}, got {dataset}; channels: {listing}")
        return int(dataset), "asked for (dataset=)"
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a channel name (str) or index (int) of the .3ds "
                        f"file, got {dataset!r}")
    exact = [i for i, c in enumerate(channels) if c.lower() == dataset.strip().lower()]
    loose = [i for i, c in enumerate(channels) if _bare(c) == _bare(dataset)]
    found = exact or loose
    if len(found) != 1:
        raise ValueError(f"dataset {dataset!r} is not a channel of {str(path)!r} (name, case "
                         f"ignored, with or without its unit); channels: {listing}")
    return found[0], "asked for (dataset=)"


def _read_3ds(path: Path, dataset: Any, partial: bool) -> _Raw:
    fields, start = _header(path)
    try:
        nx, ny = (int(v) for v in re.split(r"\s*x\s*", _field(fields, "Grid dim", path)))
        n_params = int(_field(fields, "# Parameters (4 byte)", path))
        points = int(_field(fields, "Points", path))
    except ValueError as err:
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file: a damaged header "
                      f"field ({err})") from None
    channels = _list(_field(fields, "Channels", path))
    parameters = (_list(fields.get("Fixed parameters", ""))
                  + _list(fields.get("Experiment parameters", "")))
    if min(nx, ny, points, len(channels)) < 1 or n_params < 0:
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file: its header "
                      f"declares a {nx} x {ny} grid of {points} points and {len(channels)} "
                      "channels")
    index, why = _choose(path, channels, dataset)

    record = n_params + len(channels) * points
    size = path.stat().st_size - start
    complete = size // (4 * record)
    if complete > nx * ny or (complete < nx * ny and size % (4 * record)):
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file (truncated or "
                      f"corrupted?): {size} bytes of data, not a whole number of "
                      f"{4 * record}-byte records for its {nx} x {ny} grid")
    declared = nx * ny * points * 4
    if complete < nx * ny and declared > _MAX_MISSING * size + (1 << 20):
        # Nanonis writes NaN for the points it did not measure; records
        # missing from the file are a cut file, filled with NaN only while
        # that costs little (a damaged header could declare any grid).
        raise OSError(f"{str(path)!r} cannot be read as a Nanonis .3ds file (truncated or "
                      f"corrupted?): it holds {complete} of the {nx * ny} grid points its "
                      "header declares")
    try:
        records = np.memmap(path, dtype=">f4", mode="r", offset=start,
                            shape=(complete, record)) if complete else np.empty((0, record))
        first = n_params + index * points
        values = np.full((nx * ny, points), np.nan, dtype=np.float32)
        values[:complete] = records[:, first:first + points]
        params = np.full((nx * ny, n_params), np.nan, dtype=np.float32)
        params[:complete] = records[:, :n_params]
    except (OSError, ValueError) as err:
        raise _unreadable(path, "a Nanonis .3ds file", err) from None
    finally:
        records = None  # closes the memory map
    data = values.reshape(ny, nx, points)

    sweep = fields.get("Sweep Signal", "")
    metadata: dict = {"dataset": channels[index], "channel_choice": why,
                      "channels_in_file": channels, "data_unit": _unit(channels[index]),
                      "sweep_signal": sweep}
    measured = np.isfinite(data).any(axis=-1)
    if not measured.all():
        rows = int(np.argmin(measured.all(axis=1))) if not measured.all(axis=1).all() else ny
        metadata["unmeasured_points"] = int(np.count_nonzero(~measured))
        metadata["complete_rows"] = rows
    sweep_range = None
    if "Sweep Start" in parameters and "Sweep End" in parameters:
        ends = params[:, [parameters.index("Sweep Start"), parameters.index("Sweep End")]]
        ends = ends[np.isfinite(ends).all(axis=1)]
        if len(ends):
            sweep_range = (float(ends[0, 0]), float(ends[0, 1]))
            if not np.allclose(ends, ends[0]):
                metadata["note"] = ("the sweep's start and end differ between grid points; the "
                                    "channel axis is the first point's")
    settings = [float(v) for v in _list(fields.get("Grid settings", "")) if _is_number(v)]
    spatial = [{"name": "y", "units": ""}, {"name": "x", "units": ""}]
    if len(settings) >= 4:
        # Centre x, centre y, width, height (m), angle (degrees): the grid's
        # own axes (rotated by the angle) with points width / nx apart.
        metadata["grid"] = {"center_m": settings[0:2], "size_m": settings[2:4],
                            "angle_deg": settings[4] if len(settings) > 4 else 0.0}
        spatial = [{"name": "y", "units": "nm", "offset": 0.0, "scale": settings[3] / ny * 1e9},
                   {"name": "x", "units": "nm", "offset": 0.0, "scale": settings[2] / nx * 1e9}]
    raw = _Raw(data, True, "nanonis", name=f"{path.stem} {channels[index]}", metadata=metadata)
    channel_axis: dict = {"name": re.sub(r"\s*\([^()]*\)\s*$", "", sweep), "units": _unit(sweep),
                          "navigate": False}
    if sweep_range is not None:
        channel_axis["values"] = np.linspace(*sweep_range, points)
    raw.axes = spatial + [channel_axis]
    raw.axes_known = True
    return raw


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


register("Nanonis grid spectroscopy", (".3ds",), _read_3ds)
