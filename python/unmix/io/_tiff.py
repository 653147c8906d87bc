"""TIFF files through tifffile (``pip install "unmix[io]"``)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Optional

from ._common import _Raw, _too_big, _unreadable
from ._registry import register


def _read_tiff(path: Path, dataset: Any, partial: bool) -> _Raw:
    try:
        import tifffile
    except ImportError:
        raise ImportError(f"reading {path.suffix} files ({str(path)!r}) needs tifffile: "
                          'pip install "unmix[io]"') from None
    index = 0
    if dataset is not None:
        if isinstance(dataset, bool) or not isinstance(dataset, numbers.Integral):
            raise TypeError(f"dataset must be a TIFF series index (int), got {dataset!r}")
        index = int(dataset)
    try:
        with tifffile.TiffFile(path) as tif:
            if not 0 <= index < len(tif.series):
                raise ValueError(f"dataset must be a series index in [0, {len(tif.series)}) "
                                 f"of {str(path)!r}, got {index}")
            series = tif.series[index]
            axes = series.axes
            data = None
            if partial:
                try:
                    data = tifffile.memmap(path, series=index, mode="r")
                except ValueError:  # compressed or not contiguous: read whole
                    data = None
            in_memory = data is None
            if data is None:
                data = series.asarray()
    except ValueError as err:
        if str(path) in str(err):  # ours: the series index
            raise
        raise _unreadable(path, "a TIFF file", err) from None
    except MemoryError as err:
        raise _too_big(path, "a TIFF file", err) from None
    except Exception as err:  # tifffile raises anything on a damaged file
        raise _unreadable(path, "a TIFF file", err) from None
    if "C" in axes:
        default: Optional[int] = axes.index("C")
    elif "S" in axes:
        default = axes.index("S")
    elif data.ndim >= 3:
        default = 0
    else:
        default = None
    return _Raw(data, in_memory, "tiff", default_channel_axis=default, name=path.stem,
                metadata={"dataset": index, "tiff_axes": axes},
                axes_known="C" in axes or "S" in axes)


register("TIFF", (".tif", ".tiff"), _read_tiff, needs="tifffile")
