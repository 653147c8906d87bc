"""Reading spectral images from files, and HyperSpy conversion.

:func:`read` turns a file into a :class:`~unmix.SpectralImage` of shape
``(*spatial, channels)`` whatever the format stores, so the rest of unmix
needs one axis convention only:

========================  ============================================
extension                 how
========================  ============================================
``.npy``                  :func:`numpy.load` (memory-mapped when lazy)
``.npz``                  :func:`numpy.load`; written by :func:`save_npz`
``.h5 .hdf5 .nxs .hspy``  h5py; HyperSpy and NeXus axes understood
``.tif .tiff``            tifffile (``pip install "unmix[io]"``)
``.mat``                  :func:`scipy.io.loadmat`; h5py for v7.3 files
``.zspy`` and vendor      RosettaSciIO (``pip install "unmix[vendor]"``):
formats (``.bcf .dm3``    see :data:`VENDOR_FORMATS`
``.dm4 .emd .rpl .msa``
…)
========================  ============================================

A 1-D array (one spectrum) becomes a one-pixel image of shape
``(1, channels)``; a single 2-D picture in an image format (TIFF, or a
RosettaSciIO signal with two signal axes such as a DM4 micrograph) becomes
``(y, x, 1)``: one channel, ready for
:func:`unmix.preprocess.sliding_fft`.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import numbers
import os
import struct
import traceback
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .image import SpectralImage
from .preprocess import _as_slices, _cropped_axes

__all__ = [
    "LazyArray",
    "SUPPORTED_EXTENSIONS",
    "VENDOR_FORMATS",
    "from_hyperspy",
    "read",
    "save_npz",
    "to_hyperspy",
]

PathLike = Union[str, "os.PathLike[str]"]

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

_HDF5 = (".h5", ".hdf5", ".nxs", ".hspy")
_TIFF = (".tif", ".tiff")

#: Every extension :func:`read` knows (case is ignored).
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    (".npy", ".npz") + _HDF5 + _TIFF + (".mat",) + tuple(VENDOR_FORMATS))

# Names under which the channel axis values and unit are looked for.
_CHANNEL_KEYS = ("channels", "axis")
_UNIT_KEYS = ("channel_unit", "units", "unit")
_NUMERIC_KINDS = "biuf"
_MATLAB_NUMERIC = {"double", "single", "logical", "int8", "uint8", "int16", "uint16",
                   "int32", "uint32", "int64", "uint64"}


# ---------------------------------------------------------------------------
# A lazily read view of an HDF5 dataset
# ---------------------------------------------------------------------------


class LazyArray:
    """A read-only view of an on-disk array (an :class:`h5py.Dataset`) that
    reads nothing until converted with :func:`numpy.asarray`.

    Indexing with integers and slices returns another view (the selection
    is composed, not read), so ``read(path, lazy=True)`` followed by
    :func:`unmix.preprocess.crop` and ``np.asarray`` reads only the crop.
    Axes may be permuted (the file's channel axis moved last, MATLAB's
    column-major axes reversed) without reading.

    The file stays open as long as the view (or the image holding it) is
    alive.

    Parameters
    ----------
    dataset : h5py.Dataset
        The underlying array (anything with ``shape``, ``dtype`` and basic
        slicing with positive steps works).
    axes : tuple of int, optional
        The dataset axis shown as each axis of the view; default: in order.

    Attributes
    ----------
    dataset : h5py.Dataset
    """

    def __init__(self, dataset: Any, axes: Optional[tuple[int, ...]] = None,
                 _selection: Optional[tuple[Union[range, int], ...]] = None) -> None:
        self.dataset = dataset
        n = len(dataset.shape)
        self._selection = (tuple(range(s) for s in dataset.shape)
                           if _selection is None else _selection)
        kept = [a for a in range(n) if isinstance(self._selection[a], range)]
        self._axes = tuple(kept) if axes is None else tuple(axes)  # output axis -> source axis
        if sorted(self._axes) != kept:
            raise ValueError(f"axes must be a permutation of {kept}, got {self._axes}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self._selection[a]) for a in self._axes)  # type: ignore[arg-type]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.dataset.dtype)

    @property
    def ndim(self) -> int:
        return len(self._axes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def transpose(self, *axes: Any) -> "LazyArray":
        """The view with its axes permuted (``axes`` as for :func:`numpy.transpose`)."""
        if len(axes) == 1 and not isinstance(axes[0], numbers.Integral):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(reversed(range(self.ndim)))
        if sorted(int(a) % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"axes must be a permutation of range({self.ndim}), got {axes}")
        return LazyArray(self.dataset, tuple(self._axes[int(a) % self.ndim] for a in axes),
                         self._selection)

    def __getitem__(self, key: Any) -> "LazyArray":
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            i = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(key) + 1)
            key = key[:i] + fill + key[i + 1:]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices: {len(key)} for a {self.ndim}-D array")
        selection = list(self._selection)
        axes = []
        for out, src in enumerate(self._axes):
            k = key[out] if out < len(key) else slice(None)
            current = selection[src]
            if isinstance(k, slice):
                selection[src] = current[k]  # type: ignore[index]
                axes.append(src)
            elif isinstance(k, numbers.Integral) and not isinstance(k, bool):
                try:
                    selection[src] = current[int(k)]  # type: ignore[index]
                except IndexError:
                    raise IndexError(f"index {k} is out of bounds for axis {out} with size "
                                     f"{len(current)}") from None  # type: ignore[arg-type]
            else:
                raise TypeError("a LazyArray is indexed by integers and slices only, got "
                                f"{k!r}; load it first with numpy.asarray")
        return LazyArray(self.dataset, tuple(axes), tuple(selection))

    def _read(self) -> np.ndarray:
        if 0 in self.shape:
            return np.empty(self.shape, self.dtype)
        index, flip = [], []
        kept = []
        for a, sel in enumerate(self._selection):
            if isinstance(sel, int):
                index.append(sel)
                continue
            kept.append(a)
            if sel.step < 0:  # read forwards (h5py needs positive steps), flip after
                sel = sel[::-1]
                flip.append(len(kept) - 1)
            index.append(slice(sel.start, sel.start + (len(sel) - 1) * sel.step + 1, sel.step))
        try:
            out = np.asarray(self.dataset[tuple(index)])
        except (OSError, RuntimeError, KeyError, ValueError) as err:  # h5py, damaged file
            source = getattr(getattr(self.dataset, "file", None), "filename", "the file")
            raise OSError(f"{source!r}: reading {self!r} failed (truncated or corrupted?): "
                          f"{type(err).__name__}: {err}") from None
        if flip:
            out = np.flip(out, axis=tuple(flip))
        order = [kept.index(a) for a in self._axes]
        return np.ascontiguousarray(out.transpose(order))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        return f"LazyArray({name}, shape={self.shape}, dtype={self.dtype})"


# ---------------------------------------------------------------------------
# read
# ---------------------------------------------------------------------------


@dataclass
class _Raw:
    """What a format reader found, before the common finishing steps."""

    data: Any  # numpy array, memmap, LazyArray or dask array
    in_memory: bool  # data is a numpy array already read whole
    fmt: str
    # Per data axis: {"name", "units", "values" or "offset"/"scale", "navigate"}.
    axes: Optional[list[dict]] = None
    default_channel_axis: Optional[int] = -1  # None: a picture, channels appended
    channels: Optional[np.ndarray] = None
    channel_unit: str = ""
    name: str = ""
    metadata: dict = field(default_factory=dict)
    file: Any = None  # an open h5py.File, closed once the data is read

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def read(path: PathLike, *, dataset: Any = None, channel_axis: Optional[int] = None,
         lazy: bool = False, crop: Any = None) -> SpectralImage:
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
        signal. Default: the only candidate (see Notes); when a file holds
        several, the error lists them.
    channel_axis : int, optional
        The axis of the stored array holding the channels; it is moved last
        (a view). Default: the axis the format says is the signal axis
        (HyperSpy, NeXus, RosettaSciIO, a TIFF's ``C``/``S`` axis), else the
        first axis of a 3-D (or higher) TIFF stack — a stack of frames
        ``(frames, y, x)`` is frames-as-channels — else the last axis.
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
        each spatial axis, when known) and the format's own attributes.

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
    suffix = path.suffix.lower()
    partial = bool(lazy) or crop is not None  # read a view, take the crop, load only it
    if suffix == ".npy":
        raw = _read_npy(path, partial)
    elif suffix == ".npz":
        raw = _read_npz(path, dataset)
    elif suffix in _HDF5:
        raw = _read_hdf5(path, dataset)
    elif suffix in _TIFF:
        raw = _read_tiff(path, dataset, partial)
    elif suffix == ".mat":
        raw = _read_mat(path, dataset)
    elif suffix in VENDOR_FORMATS:
        raw = _read_rsciio(path, VENDOR_FORMATS[suffix], dataset, partial)
    else:
        raise ValueError(
            f"{str(path)!r}: unknown extension {path.suffix!r}; supported extensions are "
            + " ".join(SUPPORTED_EXTENSIONS))
    try:
        image = _finish(raw, path, dataset, channel_axis, bool(lazy), crop)
    except BaseException:
        raw.close()
        raise
    if not lazy:
        raw.close()
    return image


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


# --- formats ---------------------------------------------------------------


# How much a member can expand: stored not at all, deflate (what numpy
# writes) at most about 1032 to 1. Other methods are not bounded here.
_ZIP_EXPANSION = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1100}


def _check_npy_size(fp: Any, path: Path, available: int, what: str, fmt: str) -> None:
    """Refuses a .npy header that declares more data than the bytes after it
    (numpy would allocate the declared array before reading: a damaged
    header in a small file could ask for terabytes)."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = npformat.read_array_header_1_0(fp)
    else:
        shape, _, dtype = npformat.read_array_header_2_0(fp)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    rest = available - fp.tell()
    if declared > rest:
        raise OSError(f"{str(path)!r} cannot be read as {fmt} (truncated or corrupted?): "
                      f"the header of {what} declares a {shape} {dtype} array ({declared} "
                      f"bytes), but {max(rest, 0)} bytes follow it")


def _read_npy(path: Path, partial: bool) -> _Raw:
    try:
        with open(path, "rb") as fp:
            _check_npy_size(fp, path, os.fstat(fp.fileno()).st_size, "the file", "a .npy file")
        data = np.load(path, mmap_mode="r" if partial else None, allow_pickle=False)
    except MemoryError as err:
        raise _too_big(path, "a .npy file", err) from None
    except Exception as err:  # numpy's header parser raises tokenize errors, too
        if isinstance(err, OSError) and str(path) in str(err):
            raise
        raise _unreadable(path, "a .npy file", err) from None
    return _Raw(data, not partial, "npy", name=path.stem)


def _check_npz_sizes(archive: Any, path: Path) -> None:
    """Each member's declared array against what the member can hold."""
    size = path.stat().st_size
    for info in archive.zip.infolist():
        if not info.filename.endswith(".npy"):
            continue
        expansion = _ZIP_EXPANSION.get(info.compress_type)
        if info.compress_size > size or (
                expansion is not None and info.file_size > info.compress_size * expansion):
            raise OSError(f"{str(path)!r} cannot be read as a .npz file (truncated or "
                          f"corrupted?): its member {info.filename!r} declares {info.file_size} "
                          f"bytes ({info.compress_size} stored), more than the {size}-byte "
                          "file can hold")
        with archive.zip.open(info) as fp:
            _check_npy_size(fp, path, info.file_size, f"member {info.filename!r}", "a .npz file")


def _read_npz(path: Path, dataset: Any) -> _Raw:
    if dataset is not None and not isinstance(dataset, str):
        raise TypeError(f"dataset must be a key (str) of the .npz file, got {dataset!r}")
    # Opened here: np.load(path) leaves its file open when the archive is
    # damaged (it hands the file over before the zip directory is read).
    with open(path, "rb") as fh:
        return _npz_array(path, fh, dataset)


def _npz_array(path: Path, fh: Any, dataset: Optional[str]) -> _Raw:
    try:
        archive = np.load(fh, allow_pickle=False)
    except MemoryError as err:
        raise _too_big(path, "a .npz file", err) from None
    except Exception as err:  # zipfile: BadZipFile, NotImplementedError, struct.error, ...
        raise _unreadable(path, "a .npz file", err) from None
    if not hasattr(archive, "files"):
        raise OSError(f"{str(path)!r} is a .npy file with an .npz extension")
    with archive:
        keys = list(archive.files)
        try:
            _check_npz_sizes(archive, path)
            if dataset is None:
                arrays = [k for k in keys if k not in ("channels", "channel_unit", "name")]
                if not arrays:
                    raise ValueError(f"{str(path)!r} holds no data array (keys: {keys})")
                key = "data" if "data" in arrays else next(
                    (k for k in arrays if archive[k].ndim >= 2), arrays[0])
            else:
                if dataset not in keys:
                    raise ValueError(f"dataset {dataset!r} is not in {str(path)!r}; keys: "
                                     f"{keys}")
                key = dataset
            data = archive[key]
            channels = archive["channels"] if "channels" in keys else None
            unit = _text(archive["channel_unit"]) if "channel_unit" in keys else ""
            name = _text(archive["name"]) if "name" in keys else path.stem
        except (ValueError, TypeError, OSError) as err:
            if str(path) in str(err):  # ours, or already naming the file
                raise
            raise _unreadable(path, "a .npz file", err) from None
        except MemoryError as err:
            raise _too_big(path, "a .npz file", err) from None
        except Exception as err:  # zipfile, zlib, struct: anything on a damaged archive
            raise _unreadable(path, "a .npz file", err) from None
    return _Raw(data, True, "npz", channels=channels, channel_unit=unit, name=name,
                metadata={"dataset": key})


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


def _read_hdf5(path: Path, dataset: Any) -> _Raw:
    if dataset is not None and not isinstance(dataset, str):
        raise TypeError(f"dataset must be a path (str) inside the HDF5 file, got {dataset!r}")
    f = _open_h5(path, "an HDF5 file")
    try:
        raw = _hdf5_array(path, f, dataset)
    except Exception as err:
        f.close()
        if not _h5_damage(err, path):
            raise
        raise _unreadable(path, "an HDF5 file", err) from None
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


def _signal_axis_default(axes: list[dict]) -> Optional[int]:
    signal = [i for i, a in enumerate(axes) if not a.get("navigate", True)]
    if len(signal) == 1:
        return signal[0]
    if len(signal) == 2 and len(axes) == 2:
        return None  # a picture: one channel
    return -1


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
                metadata={"dataset": index, "tiff_axes": axes})


def _read_mat(path: Path, dataset: Any) -> _Raw:
    if dataset is not None and not isinstance(dataset, str):
        raise TypeError(f"dataset must be a variable name (str) of the .mat file, got "
                        f"{dataset!r}")
    h5py = _h5py()
    if h5py.is_hdf5(path):
        return _read_mat73(path, dataset)
    import scipy.io

    try:
        variables = scipy.io.whosmat(path)
    except MemoryError as err:
        raise _too_big(path, "a MATLAB .mat file", err) from None
    except Exception as err:  # scipy.io raises anything on a damaged file
        raise _unreadable(path, "a MATLAB .mat file", err) from None
    numeric = [(n, s) for n, s, c in variables if c in _MATLAB_NUMERIC]
    key = _mat_choice(path, dataset, [n for n, *_ in variables], numeric)
    wanted = [key] + [k for k in ("channels", "channel_unit") if k in {n for n, *_ in variables}]
    try:
        _check_mat5(path)
    except _Mat5Damage as err:
        raise OSError(f"{str(path)!r} cannot be read as a MATLAB .mat file (truncated or "
                      f"corrupted?): {err}") from None
    try:
        d = scipy.io.loadmat(path, variable_names=wanted)
    except MemoryError as err:
        raise _too_big(path, "a MATLAB .mat file", err) from None
    except Exception as err:  # scipy.io raises anything on a damaged file
        raise _unreadable(path, "a MATLAB .mat file", err) from None
    data = np.asarray(d[key])
    if data.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"variable {key!r} of {str(path)!r} is not numeric (dtype "
                         f"{data.dtype})")
    channels = _values(d["channels"]) if "channels" in d else None
    unit = _text(d["channel_unit"]) if "channel_unit" in d else ""
    return _Raw(data, True, "mat", channels=channels, channel_unit=unit, name=key,
                metadata={"dataset": key})


# A MATLAB v5 file, checked before scipy reads it: scipy.io.loadmat builds
# each array over the bytes its data element declares, without comparing
# them with the array's dimensions, and crashes the interpreter (a
# segmentation fault) when a damaged file declares fewer.
class _Mat5Damage(Exception):
    pass


# Bytes per element of the MATLAB data types (miINT8 ... miUINT64).
_MAT5_ITEMSIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
_MAT5_MATRIX, _MAT5_COMPRESSED = 14, 15
_MAT5_CHAR_CLASS, _MAT5_NUMERIC_CLASSES = 4, range(6, 16)


def _mat5_tag(buf: bytes, pos: int, endian: str) -> tuple[int, int, int, int]:
    """(type, byte count, start of the data, start of the next element)."""
    if pos + 8 > len(buf):
        raise _Mat5Damage(f"a data element at byte {pos} runs past the end")
    first, second = struct.unpack_from(endian + "II", buf, pos)
    if first >> 16:  # small element: type and count in one word, data in the next
        if first >> 16 > 4:
            raise _Mat5Damage(f"a small data element at byte {pos} declares {first >> 16} bytes")
        return first & 0xFFFF, first >> 16, pos + 4, pos + 8
    return first, second, pos + 8, pos + 8 + second + (-second % 8)


def _mat5_check_matrix(buf: bytes, endian: str, complete: bool) -> None:
    """The dimensions of a numeric or char array against the bytes its data
    elements declare. ``buf`` may be a prefix of the matrix (a compressed
    one); parts beyond it are not checked."""
    try:
        _, n, start, pos = _mat5_tag(buf, 0, endian)  # array flags
        flags = struct.unpack_from(endian + "I", buf, start)[0] if n >= 4 else 0
        _, n, start, pos = _mat5_tag(buf, pos, endian)  # dimensions
        dims = struct.unpack_from(f"{endian}{n // 4}i", buf, start)
        _, n, start, pos = _mat5_tag(buf, pos, endian)  # name
        name = buf[start:start + n].decode("latin-1")
    except struct.error:
        if complete:
            raise _Mat5Damage("an array header is cut short") from None
        return
    cls = flags & 0xFF
    if not (cls in _MAT5_NUMERIC_CLASSES or cls == _MAT5_CHAR_CLASS):
        return
    if any(d < 0 for d in dims):
        raise _Mat5Damage(f"variable {name!r} has negative dimensions {dims}")
    count = int(np.prod(dims, dtype=object))
    for part in ("real", "imaginary") if flags & 0x800 else ("real",):
        if pos + 8 > len(buf) and not complete:
            return
        kind, n, start, pos = _mat5_tag(buf, pos, endian)
        size = _MAT5_ITEMSIZE.get(kind)
        if size is None and cls == _MAT5_CHAR_CLASS:
            return  # UTF-8/16/32 text: no fixed size per character
        if size is None or n != count * size:
            raise _Mat5Damage(f"variable {name!r} of dimensions {dims} has a {part} part of "
                              f"{n} bytes of data type {kind}, expected {count} elements")
        if start + n > len(buf) and complete:
            raise _Mat5Damage(f"the data of variable {name!r} runs past the end of the file")


def _check_mat5(path: Path) -> None:
    data = path.read_bytes()  # loadmat reads the whole file too
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return  # not a v5 file: scipy says so
    endian = "<" if data[126:128] == b"IM" else ">"
    pos = 128
    while pos + 8 <= len(data):
        kind, n, start, pos_next = _mat5_tag(data, pos, endian)
        body = data[start:start + n]
        if len(body) < n:
            raise _Mat5Damage(f"the data element at byte {pos} declares {n} bytes, "
                              f"{len(body)} remain")
        if kind == _MAT5_COMPRESSED:
            pos_next = start + n  # compressed elements are not padded
            try:  # the header of the array is enough, unless it is complex
                inflate = zlib.decompressobj()
                prefix = inflate.decompress(body, 1 << 16)
                complete = inflate.eof
                _, inner_n, inner_start, _ = _mat5_tag(prefix, 0, endian)
                flags_prefix = prefix[inner_start:]
                if not complete and len(flags_prefix) >= 16 and struct.unpack_from(
                        endian + "I", flags_prefix, 8)[0] & 0x800:
                    prefix, complete = zlib.decompress(body), True
            except zlib.error as err:
                raise _Mat5Damage(f"a compressed variable at byte {pos} is damaged: {err}") \
                    from None
            _mat5_check_matrix(prefix[inner_start:inner_start + inner_n], endian,
                               complete and inner_start + inner_n <= len(prefix))
        elif kind == _MAT5_MATRIX:
            _mat5_check_matrix(body, endian, True)
        pos = pos_next


def _mat_choice(path: Path, dataset: Optional[str], names: list[str],
                numeric: list[tuple[str, tuple]]) -> str:
    if dataset is not None:
        if dataset not in names:
            raise ValueError(f"dataset {dataset!r} is not a variable of {str(path)!r}; "
                             f"variables: {names}")
        return dataset
    numeric = [(n, s) for n, s in numeric if n not in ("channels", "channel_unit")]
    if not numeric:
        raise ValueError(f"{str(path)!r} is not a spectral image: it holds no numeric "
                         f"variable (variables: {names})")
    return max(numeric, key=lambda ns: int(np.prod(ns[1])))[0]


def _read_mat73(path: Path, dataset: Optional[str]) -> _Raw:
    f = _open_h5(path, "a MATLAB v7.3 .mat file")
    try:
        raw = _mat73_array(path, f, dataset)
    except Exception as err:
        f.close()
        if not _h5_damage(err, path):
            raise
        raise _unreadable(path, "a MATLAB v7.3 .mat file", err) from None
    except BaseException:
        f.close()
        raise
    raw.file = f
    return raw


def _mat73_array(path: Path, f: Any, dataset: Optional[str]) -> _Raw:
    h5py = _h5py()
    variables = {k: v for k, v in f.items() if not k.startswith("#")}
    numeric = [(k, v.shape) for k, v in variables.items() if isinstance(v, h5py.Dataset)
               and _text(v.attrs.get("MATLAB_class", b"")) in _MATLAB_NUMERIC]
    key = _mat_choice(path, dataset, list(variables), numeric)
    obj = variables[key]
    if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"variable {key!r} of {str(path)!r} is not a numeric array")
    # HDF5 holds MATLAB's column-major arrays with the axes reversed.
    data = LazyArray(obj).transpose()
    channels = unit = None
    if "channels" in variables and isinstance(variables["channels"], h5py.Dataset):
        channels = _values(variables["channels"][()])
    if "channel_unit" in variables and isinstance(variables["channel_unit"], h5py.Dataset):
        unit = _text(variables["channel_unit"][()])
    return _Raw(data, False, "mat", channels=channels, channel_unit=unit or "", name=key,
                metadata={"dataset": key})


def _read_rsciio(path: Path, plugin: str, dataset: Any, partial: bool) -> _Raw:
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
        metadata={"dataset": index, "original_metadata": s.get("metadata", {})})
    if raw.axes is not None:
        raw.default_channel_axis = _signal_axis_default(raw.axes)
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


# --- the common part -------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Writing, and HyperSpy
# ---------------------------------------------------------------------------


def save_npz(image: SpectralImage, path: PathLike, *, compressed: bool = False) -> Path:
    """Writes an image to an ``.npz`` file that :func:`read` reads back.

    Keys ``data``, ``channels``, ``channel_unit`` and ``name`` (no pickled
    objects, so the file loads with ``allow_pickle=False``); other metadata
    is not written. ``.npz`` is appended to ``path`` when missing.

    Parameters
    ----------
    image : SpectralImage
        The image to write; lazy data is read.
    path : str or os.PathLike
        The file to write (overwritten).
    compressed : bool
        Use :func:`numpy.savez_compressed` (smaller, slower to read).

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(image, SpectralImage):
        raise TypeError(f"image must be a SpectralImage, got {type(image).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    p = Path(path)
    if p.suffix.lower() != ".npz":
        p = p.with_name(p.name + ".npz")
    save = np.savez_compressed if compressed else np.savez
    save(p, data=np.asarray(image.data), channels=np.asarray(image.channels),
         channel_unit=np.str_(image.channel_unit), name=np.str_(image.name))
    return p


def from_hyperspy(signal: Any) -> SpectralImage:
    """A :class:`~unmix.SpectralImage` sharing a HyperSpy ``Signal1D``'s data.

    The navigation axes become the spatial axes and the signal axis the
    channels (values, units; its name goes to ``metadata["channel_name"]``).
    ``signal.data`` is used without a copy (a lazy signal's dask array stays
    lazy); a signal without navigation axes (one spectrum) becomes a
    one-pixel image.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        Or any HyperSpy signal with one signal axis.

    Returns
    -------
    SpectralImage
        Shape ``(*navigation in array order, channels)``; ``metadata``
        has ``"spatial_axes"`` (name, units, offset, scale) and
        ``"signal_type"``.
    """
    am = getattr(signal, "axes_manager", None)
    if am is None or not hasattr(signal, "data"):
        raise TypeError(f"signal must be a HyperSpy signal, got {type(signal).__name__}")
    if am.signal_dimension != 1:
        raise ValueError("signal must have exactly one signal axis (a Signal1D: spectra on a "
                         f"navigation grid), got {am.signal_dimension} signal axes; use "
                         "signal.as_signal1D(axis) first")
    sig = am.signal_axes[0]
    data = signal.data
    src = sig.index_in_array
    if src != data.ndim - 1:
        data = np.moveaxis(data, src, -1)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    nav = sorted(am.navigation_axes, key=lambda a: a.index_in_array)
    spatial = [_hs_axis(a) for a in nav] or [{"name": "", "units": ""}]
    metadata = {"source": "hyperspy", "spatial_axes": spatial,
                "signal_type": str(signal.metadata.get_item("Signal.signal_type", "") or "")}
    name = _text(sig.name) if sig.name is not None else ""
    if name:
        metadata["channel_name"] = name
    title = str(signal.metadata.get_item("General.title", "") or "")
    units = _text(sig.units) if sig.units is not None else ""
    return SpectralImage(data, channels=np.asarray(sig.axis, dtype=float), channel_unit=units,
                         name=title, metadata=metadata)


def _hs_axis(a: Any) -> dict:
    out = {"name": _text(a.name) if a.name is not None else "",
           "units": _text(a.units) if a.units is not None else ""}
    if hasattr(a, "scale") and hasattr(a, "offset") and getattr(a, "is_uniform", True):
        out["offset"], out["scale"] = float(a.offset), float(a.scale)
    else:
        out["values"] = np.asarray(a.axis, dtype=float)
    return out


def to_hyperspy(image: SpectralImage) -> Any:
    """A HyperSpy ``Signal1D`` sharing the image's data (no copy).

    The channels become the signal axis (uniform offset/scale when evenly
    spaced, else a non-uniform axis), ``metadata["spatial_axes"]`` (as
    :func:`read` and :func:`from_hyperspy` set it) the navigation axes, and
    ``name`` the title. Dask data gives a lazy signal; a :class:`LazyArray`
    is read. Needs HyperSpy (``pip install hyperspy``).

    Parameters
    ----------
    image : SpectralImage
        The image to convert.

    Returns
    -------
    hyperspy.signals.Signal1D
        Or a ``LazySignal1D`` for dask data.
    """
    if not isinstance(image, SpectralImage):
        raise TypeError(f"image must be a SpectralImage, got {type(image).__name__}")
    try:
        import hyperspy.api as hs
    except ImportError:
        raise ImportError("to_hyperspy needs HyperSpy: pip install hyperspy") from None
    data = image.data
    if isinstance(data, LazyArray):
        data = np.asarray(data)
    spatial = image.metadata.get("spatial_axes")
    if not isinstance(spatial, list) or len(spatial) != len(image.spatial_shape):
        spatial = [{} for _ in image.spatial_shape]
    axes = [_hs_axis_dict(a, size, navigate=True) for a, size in zip(spatial, image.spatial_shape)]
    axes.append(_hs_axis_dict({"name": image.metadata.get("channel_name", ""),
                               "units": image.channel_unit, "values": image.channels},
                              image.n_channels, navigate=False))
    s = hs.signals.Signal1D(data, axes=axes)
    if hasattr(data, "dask"):  # a dask array (lazy RosettaSciIO read): a lazy signal
        s = s.as_lazy()
    s.metadata.General.title = image.name
    return s


def _hs_axis_dict(ax: dict, size: int, navigate: bool) -> dict:
    out: dict = {"size": size, "navigate": navigate}
    if ax.get("name"):
        out["name"] = ax["name"]
    if ax.get("units"):
        out["units"] = ax["units"]
    values = ax.get("values")
    if values is not None:
        values = np.asarray(values, dtype=float)
        step = np.diff(values)
        if size == 1 or (values.shape == (size,) and np.allclose(
                step, step[0], rtol=1e-9, atol=1e-12 * max(1.0, np.abs(values).max()))):
            out["offset"] = float(values[0])
            out["scale"] = float(step[0]) if size > 1 else 1.0
        elif values.shape == (size,):
            out["axis"] = values
            out.pop("size")
    elif "scale" in ax:
        out["offset"], out["scale"] = float(ax.get("offset", 0.0)), float(ax["scale"])
    return out
