"""What the readers share: the raw result of a reader, path checks, error
messages naming the file, attribute conversions and axis descriptions."""

from __future__ import annotations

import gc
import os
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

_NUMERIC_KINDS = "biuf"


@dataclass
class _Raw:
    """What a format reader found, before the common finishing steps."""

    data: Any  # numpy array, memmap, LazyArray or dask array
    in_memory: bool  # data is a numpy array already read whole
    fmt: str
    # Per data axis: {"name", "units", "values" or "offset"/"scale", "navigate"}.
    axes: Optional[list[dict]] = None
    default_channel_axis: Optional[int] = -1  # None: a picture, channels appended
    # The file says which axes are which (HyperSpy, RosettaSciIO, a TIFF's
    # axes string ...): an array of 4 or more axes is then no guess.
    axes_known: bool = False
    channels: Optional[np.ndarray] = None
    channel_unit: str = ""
    name: str = ""
    metadata: dict = field(default_factory=dict)
    file: Any = None  # an open h5py.File, closed once the data is read

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{str(p)!r}: no such file")
    if not p.is_file():
        raise OSError(f"{str(p)!r} is not a file")
    return p


def _unreadable(path: Path, what: str, err: BaseException) -> OSError:
    return OSError(f"{str(path)!r} cannot be read as {what} (truncated or corrupted?): "
                   f"{type(err).__name__}: {err}")


def _drop_frames(err: BaseException) -> None:
    """Releases what a failed third-party reader left in its frames: some
    leave the file open on a damaged file (RosettaSciIO's mrc reader), and
    the traceback would keep it so until garbage collection warns about it
    at some unrelated moment."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        traceback.clear_frames(err.__traceback__)
        gc.collect()


def _too_big(path: Path, what: str, err: BaseException) -> MemoryError:
    return MemoryError(f"{str(path)!r}: reading it as {what} needs more memory than there is "
                       f"(a damaged header declaring a huge array?): {err}")


def _text(value: Any) -> str:
    """A str from an HDF5/MATLAB attribute (bytes, 0-d or 1-element arrays)."""
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind in "SUO" and value.size == 1:
            value = value.reshape(-1)[0]
        elif value.dtype.kind in "u" and value.ndim:  # MATLAB char (uint16 codes)
            return "".join(chr(c) for c in value.reshape(-1))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value)
    return "" if value in ("_None_", "None", "<undefined>") else value


def _values(value: Any) -> Optional[np.ndarray]:
    """A 1-D numeric array from an attribute or dataset, else None."""
    arr = np.asarray(value)
    if arr.dtype.kind not in _NUMERIC_KINDS or arr.size < 1 or arr.ndim > 2:
        return None
    vector = max(arr.shape, default=1) == arr.size  # (n,), (1, n) or (n, 1)
    return arr.reshape(-1).astype(float) if vector else None


def _axis_values(ax: dict, size: int) -> Optional[np.ndarray]:
    if ax.get("values") is not None:
        v = np.asarray(ax["values"], dtype=float)
        return v if v.shape == (size,) else None
    if "scale" in ax:
        return ax.get("offset", 0.0) + ax["scale"] * np.arange(size, dtype=float)
    return None


def _public_axis(ax: dict) -> dict:
    out = {k: ax[k] for k in ("name", "units", "offset", "scale") if k in ax}
    if ax.get("values") is not None:
        out["values"] = np.asarray(ax["values"])
    return out


def _signal_axis_default(axes: list[dict]) -> Optional[int]:
    signal = [i for i, a in enumerate(axes) if not a.get("navigate", True)]
    if len(signal) == 1:
        return signal[0]
    if len(signal) == 2 and len(axes) == 2:
        return None  # a picture: one channel
    return -1
