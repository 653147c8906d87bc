"""A lazily read view of an on-disk array (an HDF5 dataset)."""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

import numpy as np


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
