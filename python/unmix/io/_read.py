"""Reading: :func:`read`, and the steps every format's result goes through
(the channel axis moved last, the crop, loading)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..image import SpectralImage
from ..preprocess import _as_slices, _cropped_axes
from ._common import (_NUMERIC_KINDS, PathLike, _axis_values, _check_path, _public_axis, _Raw,
                      _unreadable)
from ._lazy import LazyArray
from ._registry import format_of, formats


def read(path: PathLike, *, dataset: Any = None, channel_axis: Optional[int] = None,
         select: Optional[dict[int, int]] = None, lazy: bool = False,
         crop: Any = None) -> SpectralImage:
    """Reads a spectral image from a file, choosing the reader by extension.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its extension (case ignored) must be one of
        :data:`SUPPORTED_EXTENSIONS`.
    dataset : str or int, optional
        Which array of the file: the key of an ``.npz``, the path inside an
        HDF5 file (``"/entry/data/counts"``), the variable of a ``.mat``,
        the series index of a TIFF, the index or title of a RosettaSciIO
        signal, the channel of a Nanonis ``.3ds`` grid (name or index; case
        and unit ignored: ``"lockinx"`` is ``"LockinX (V)"``). Default: the
        only candidate (see Notes); when a file holds several, the error
        lists them.
    channel_axis : int, optional
        The axis of the stored array holding the channels; it is moved last
        (a view). Default: the axis the format says is the signal axis
        (HyperSpy, NeXus, RosettaSciIO, a TIFF's ``C``/``S`` axis), else the
        first axis of a 3-D (or higher) TIFF stack — a stack of frames
        ``(frames, y, x)`` is frames-as-channels — else the last axis.
        An array of 4 or more axes (after ``select``) whose file does not
        say which axes are which is refused unless ``channel_axis`` is
        given: ``(y, x, channel, bias)`` and a volume ``(z, y, x,
        channels)`` look alike.
    select : dict of int to int, optional
        ``{axis: index}``: take this index on these axes of the stored
        array, which then disappear (e.g. the channel of a 4-D
        ``(y, x, channel, bias)`` grid: ``channel_axis=-1, select={2: 1}``).
        Axes are numbered as in the file, as ``channel_axis`` is; negative
        numbers count from the end.
    lazy : bool
        Do not read the data: HDF5 (and v7.3 ``.mat``) data become a
        :class:`LazyArray`, ``.npy`` (and uncompressed TIFF) a read-only
        memory map, RosettaSciIO data a dask array. ``.npz`` members and
        v5 ``.mat`` variables cannot be read partially and are read whole.
    crop : tuple, optional
        One entry per output axis ``(*spatial, channels)``: a slice, a
        ``(start, stop)`` pair of indices, or None (the whole axis); fewer
        entries than axes leave the trailing axes whole. From HDF5, ``.npy``,
        v7.3 ``.mat`` and lazy-capable RosettaSciIO formats, only the crop
        is read, so a file larger than memory can be opened and cropped.

    Returns
    -------
    SpectralImage
        ``channels``/``channel_unit`` filled whenever the file carries them;
        ``metadata`` holds ``"source"`` (the path), ``"format"``,
        ``"dataset"``, ``"spatial_axes"`` (name, units, offset, scale of
        each spatial axis, when known) and the format's own attributes;
        whenever the file has them (HyperSpy files, RosettaSciIO formats),
        ``"elements"`` and ``"xray_lines"`` (lists of str), ``"signal_type"``
        (str, e.g. ``"EDS_SEM"``) and ``"beam_energy"`` (float, keV); and
        ``"reader_log"``, the warnings a third-party reader logged (kept
        here instead of printed).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    OSError
        The file is truncated, corrupted or not of its extension's format.
    ValueError
        Unknown extension (the message lists the supported ones), no array
        that can be a spectral image, ``dataset``/``channel_axis``/``crop``
        not matching the file.
    ImportError
        The format needs an optional package (tifffile, RosettaSciIO).

    Notes
    -----
    Default arrays: ``.npz`` — key ``"data"``, else the first array of at
    least 2 dimensions, else the first array. HDF5 — the single numeric
    dataset of at least 2 dimensions; among several, HyperSpy's
    ``Experiments/<title>/data`` or a NeXus signal (``signal`` attribute of
    an ``NXdata`` group) if exactly one. ``.mat`` — the largest numeric
    variable. RosettaSciIO — the single signal with one signal axis.
    Nanonis ``.3ds`` — the dI/dV lock-in channel (``LockinX``, ``LI Demod 1
    X``; ``metadata["channel_choice"]`` says so), the sweep (bias) as the
    channel axis; grid points never measured are NaN, counted in
    ``metadata["unmeasured_points"]`` with the number of complete rows in
    ``metadata["complete_rows"]``.

    Channel axis metadata looked for:

    - ``.npz`` and ``.mat``: arrays ``channels`` (values) and
      ``channel_unit`` (a string), as :func:`save_npz` writes them.
    - HDF5: attributes ``channels`` or ``axis`` (values) and
      ``channel_unit``, ``units`` or ``unit`` (a string) on the dataset;
      else a sibling 1-D dataset ``channels`` (its ``units``/``unit``
      attribute is the unit); else NeXus ``axes`` of the ``NXdata`` group;
      HyperSpy's ``axis-<i>`` groups (offset, scale, units, name,
      navigate) in ``.hspy`` files.
    - RosettaSciIO and HyperSpy: the signal axis (offset, scale, units, name).
    """
    path = _check_path(path)
    if not isinstance(lazy, (bool, np.bool_)):
        raise TypeError(f"lazy must be True or False, got {lazy!r}")
    if channel_axis is not None and (isinstance(channel_axis, bool)
                                     or not isinstance(channel_axis, numbers.Integral)):
        raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
    _check_select(select)
    partial = bool(lazy) or crop is not None  # read a view, take the crop, load only it
    fmt = format_of(path.suffix)
    if fmt is None:
        raise ValueError(_unknown_format(path))
    raw = fmt.reader(path, dataset, partial)
    try:
        if select:
            channel_axis = _select(raw, path, select, channel_axis)
        image = _finish(raw, path, dataset, channel_axis, bool(lazy), crop)
    except BaseException:
        raw.close()
        raise
    if not lazy:
        raw.close()
    return image


def _check_select(select: Any) -> None:
    if select is None:
        return
    if not isinstance(select, dict) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            for kv in select.items() for v in kv):
        raise TypeError(f"select must be a dict {{axis: index}} of integers, got {select!r}")


def _select(raw: _Raw, path: Path, select: dict, channel_axis: Optional[int]) -> Optional[int]:
    """Takes ``select``'s indices on the stored array (and its axes metadata);
    the channel axis renumbered for what remains."""
    shape = tuple(raw.data.shape)
    ndim = len(shape)
    chosen: dict[int, int] = {}
    for axis, index in select.items():
        if not -ndim <= axis < ndim:
            raise ValueError(f"select: axis {axis} is not an axis of the {ndim}-D array of "
                             f"{str(path)!r} (shape {shape})")
        a = int(axis) % ndim
        if a in chosen:
            raise ValueError(f"select names axis {a} twice, got {select!r}")
        if not -shape[a] <= index < shape[a]:
            raise ValueError(f"select: index {index} is out of range for axis {a} of size "
                             f"{shape[a]} of {str(path)!r} (shape {shape})")
        chosen[a] = int(index) % shape[a]
    if len(chosen) > ndim - 2:
        raise ValueError(f"select must leave at least 2 axes (a spatial one and the channels) "
                         f"of the {ndim}-D array of {str(path)!r} (shape {shape}), got {select!r}")
    if channel_axis is None:
        default = raw.default_channel_axis
        channel_axis = ndim - 1 if default is None else int(default) % ndim
    elif -ndim <= channel_axis < ndim:
        channel_axis = int(channel_axis) % ndim
    else:
        raise ValueError(f"channel_axis must be in [{-ndim}, {ndim - 1}] for the {ndim}-D array "
                         f"of {str(path)!r} (shape {shape}), got {channel_axis}")
    if channel_axis in chosen:
        raise ValueError(f"select takes an index on axis {channel_axis}, the channel axis; "
                         f"choose another channel_axis or select another axis, got "
                         f"select={select!r}")
    raw.data = raw.data[tuple(chosen.get(a, slice(None)) for a in range(ndim))]
    if raw.axes is not None:
        raw.axes = [ax for a, ax in enumerate(raw.axes) if a not in chosen]
    raw.metadata["select"] = {a: i for a, i in sorted(chosen.items())}
    raw.axes_known = True  # the caller said which axes are which
    return channel_axis - sum(1 for a in chosen if a < channel_axis)


# Formats people try that are not spectral-image files, and what to do instead.
_HINTS = {
    ".txt": "text", ".csv": "text", ".tsv": "text", ".dat": "text", ".xy": "text",
    ".png": "picture", ".jpg": "picture", ".jpeg": "picture", ".bmp": "picture",
    ".gif": "picture",
}
_HINT_TEXT = {
    "text": "a text table: load it with numpy.loadtxt, reshape it to (y, x, channels) and "
            "wrap it in unmix.SpectralImage (or numpy.save it as .npy for the command line)",
    "picture": "a picture of 8-bit colours, not measured data: export the data itself (TIFF, "
               "HDF5, the instrument's format)",
}


def _unknown_format(path: Path) -> str:
    known = "; ".join(f"{f.name} ({' '.join(f.extensions)})" for f in formats())
    what = (f"unknown extension {path.suffix!r}" if path.suffix
            else "no extension to tell its format by")
    hint = _HINTS.get(path.suffix.lower())
    hint = f" — it looks like {_HINT_TEXT[hint]}" if hint else ""
    return f"{str(path)!r}: {what}{hint}; the formats read are {known}"


def _finish(raw: _Raw, path: Path, dataset: Any, channel_axis: Optional[int], lazy: bool,
            crop: Any) -> SpectralImage:
    data = raw.data
    if not hasattr(data, "dtype") or np.dtype(data.dtype).kind not in _NUMERIC_KINDS:
        raise ValueError(f"{str(path)!r} is not a spectral image: the data is not numeric "
                         f"(dtype {getattr(data, 'dtype', type(data).__name__)})")
    ndim = len(data.shape)
    axes = raw.axes
    if ndim == 0:
        raise ValueError(f"{str(path)!r} is not a spectral image: it holds a single number")
    if 0 in tuple(data.shape):
        raise ValueError(f"{str(path)!r} is not a spectral image: its array is empty (shape "
                         f"{tuple(data.shape)})")
    if ndim == 1:  # one spectrum: a one-pixel image
        data = np.asarray(data).reshape(1, -1)
        raw.in_memory = True
        axes = [{"name": "", "units": ""}] + (axes or [{}])
        ca = 1
    elif ndim >= 4 and channel_axis is None and not raw.axes_known:
        raise ValueError(
            f"{str(path)!r} holds a {ndim}-D array of shape {tuple(data.shape)} and does not "
            "say which axis holds the channels: give channel_axis= (the spectra's axis, e.g. "
            "-1 — a volume (z, y, x, channels) then) and, for an axis that is not spatial "
            "(a channel of a grid (y, x, channel, bias)), select={axis: index} "
            "(command line: --channel-axis AXIS, --select AXIS=INDEX)")
    elif channel_axis is None and raw.default_channel_axis is None:  # a picture
        data = np.asarray(data)[..., None]
        raw.in_memory = True
        axes = (axes or [{} for _ in range(ndim)]) + [{"name": "", "units": ""}]
        ca = ndim
    else:
        ca = raw.default_channel_axis if channel_axis is None else channel_axis
        if not -ndim <= ca < ndim:  # type: ignore[operator]
            raise ValueError(f"channel_axis must be in [{-ndim}, {ndim - 1}] for the "
                             f"{ndim}-D array of {str(path)!r} (shape {tuple(data.shape)}), "
                             f"got {ca}")
        ca = int(ca) % ndim  # type: ignore[operator]
    ndim = len(data.shape)
    if ca != ndim - 1:
        order = [a for a in range(ndim) if a != ca] + [ca]
        data = data.transpose(order) if isinstance(data, LazyArray) else np.moveaxis(
            data, ca, -1)
        if axes is not None:
            axes = [axes[a] for a in order]
    n = data.shape[-1]

    channels = raw.channels
    unit = raw.channel_unit
    channel_name = ""
    if axes is not None:
        ax = axes[-1]
        if channels is None:
            channels = _axis_values(ax, n)
        unit = unit or ax.get("units", "")
        channel_name = ax.get("name", "")
    if channels is not None:
        channels = np.asarray(channels).reshape(-1)
        if channels.shape != (n,):
            raise ValueError(f"{str(path)!r}: the channel axis values have {channels.size} "
                             f"entries but the data has {n} channels (shape "
                             f"{tuple(data.shape)}); pass channel_axis= if the channels are "
                             "another axis")
        channels = channels.astype(float)

    metadata = {"source": str(path), "format": raw.fmt, "dataset": dataset, **raw.metadata}
    if axes is not None:
        metadata["spatial_axes"] = [_public_axis(a) for a in axes[:-1]]
    if channel_name:
        metadata["channel_name"] = channel_name

    if crop is not None:
        full_shape = tuple(data.shape)
        index = _as_slices(crop, full_shape, "crop")
        if "spatial_axes" in metadata:
            metadata["spatial_axes"] = _cropped_axes(metadata["spatial_axes"], index[:-1],
                                                     full_shape[:-1])
        data = data[index]
        if channels is None:  # keep the file's channel indices
            channels = np.arange(n, dtype=float)
        channels = channels[index[-1]]
        metadata["crop"] = [[s.start, s.stop, s.step] for s in index]
        if 0 in data.shape:
            raise ValueError(f"crop must leave a non-empty image, got crop={crop!r} for "
                             f"{str(path)!r} of shape {tuple(raw.data.shape)}, giving "
                             f"shape {tuple(data.shape)}")
    if not lazy:
        if not raw.in_memory:
            try:
                data = np.array(data)  # reads the (cropped) data; detaches memory maps
            except MemoryError:
                raise MemoryError(
                    f"{str(path)!r}: its array of shape {tuple(data.shape)} ({data.dtype}) does "
                    "not fit in memory; read it with lazy=True, or only a part with crop="
                ) from None
            except Exception as err:  # h5py, memory maps, dask (RosettaSciIO): any type
                if isinstance(err, OSError) and str(path) in str(err):
                    raise
                raise _unreadable(path, f"{raw.fmt} data", err) from None
        elif crop is not None:
            data = data.copy()  # the crop alone, so the whole array can be freed
    return SpectralImage(data, channels=channels, channel_unit=unit, name=raw.name,
                         metadata=metadata)
