"""``.npy`` and ``.npz`` files, and :func:`save_npz`."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..image import SpectralImage
from ._common import PathLike, _Raw, _text, _too_big, _unreadable
from ._registry import register


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


def _read_npy(path: Path, dataset: Any, partial: bool) -> _Raw:
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


def _read_npz(path: Path, dataset: Any, partial: bool = False) -> _Raw:
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


register("numpy", (".npy",), _read_npy)
register("numpy archive", (".npz",), _read_npz)


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
