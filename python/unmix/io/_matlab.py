"""MATLAB ``.mat`` files: v5 through scipy (checked first: a damaged v5 file
can crash scipy), v7.3 through h5py (lazily)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ._common import _NUMERIC_KINDS, _Raw, _text, _too_big, _unreadable, _values
from ._hdf5 import _h5py, _read_open_h5
from ._lazy import LazyArray
from ._registry import register

_MATLAB_NUMERIC = {"double", "single", "logical", "int8", "uint8", "int16", "uint16",
                   "int32", "uint32", "int64", "uint64"}


def _read_mat(path: Path, dataset: Any, partial: bool = False) -> _Raw:
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
    return _read_open_h5(path, "a MATLAB v7.3 .mat file",
                         lambda f: _mat73_array(path, f, dataset))


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


register("MATLAB", (".mat",), _read_mat)
