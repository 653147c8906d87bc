"""Input checks shared by :func:`unmix.nmf` and :class:`unmix.NMF`.

Every error names the parameter, what was expected and what was given.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import scipy.sparse as sp

from . import _core

SOLVERS = tuple(_core.solvers())
LOSSES = tuple(_core.losses())
# The core's initializations, plus the pure-pixel (endmember extraction)
# starts that the Python layer computes and hands over as "custom".
PIXEL_INITS = ("spa", "vca")
INITS = tuple(_core.inits()) + PIXEL_INITS
_KEPT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass
class CoreMatrix:
    """X as the core sees it: ``M`` (column-major) equals X or X.T.

    ``transposed`` is True when ``M = X.T`` (C-ordered dense X, CSR X): the
    arrays are the user's own memory in both cases.
    """

    dense: Optional[np.ndarray]
    sparse: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]  # indptr, indices, data
    core_shape: tuple[int, int]
    transposed: bool
    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of X (n_samples, n_features)."""
        r, c = self.core_shape
        return (c, r) if self.transposed else (r, c)


def _float_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """float32/float64 are kept; other real types are converted to float64."""
    if dtype in _KEPT_DTYPES:
        return dtype
    if dtype.kind in "biuf" or dtype == np.dtype(object):
        return np.dtype(np.float64)
    raise TypeError(
        f"{name} must have a real numeric dtype (float64 and float32 are used as they are, "
        f"bool, integer and float16 are converted to float64), got dtype {dtype}"
    )


def as_core_matrix(X: Any, name: str = "X") -> CoreMatrix:
    """Maps X to the core's column-major matrix without copying it.

    Copies happen only where they cannot be avoided, once: dtypes other than
    float32/float64, strided (non-contiguous) arrays, sparse formats other than
    CSR/CSC, and sparse matrices with duplicate or unsorted entries.
    """
    if sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {X.ndim}-D")
        if X.format not in ("csr", "csc"):
            X = X.tocsr()
        try:  # O(nnz): out-of-range indices would make the core read out of bounds
            X.check_format(full_check=True)
        except ValueError as err:
            raise ValueError(f"{name} is a malformed sparse matrix: {err}") from None
        dtype = _float_dtype(X.dtype, name)
        if X.dtype != dtype:
            X = X.astype(dtype)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        indptr, indices = X.indptr, X.indices
        if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
            indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
        transposed = X.format == "csr"  # CSR of X is CSC of X.T
        n, p = X.shape
        core_shape = (p, n) if transposed else (n, p)
        _check_not_empty(X.shape, name)
        return CoreMatrix(None, (indptr, indices, X.data), core_shape, transposed, dtype)

    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except ValueError as err:  # e.g. ragged nested lists
            raise ValueError(f"{name} must be a 2-D array (n_samples, n_features): {err}") from None
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_samples, n_features), got a {X.ndim}-D array "
            f"with shape {X.shape}"
        )
    _check_not_empty(X.shape, name)
    dtype = _float_dtype(X.dtype, name)
    if X.dtype != dtype:
        try:
            X = X.astype(dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}: {err}") from None
    if X.flags.c_contiguous:
        return CoreMatrix(X.T, None, (X.shape[1], X.shape[0]), True, dtype)
    if X.flags.f_contiguous:
        return CoreMatrix(X, None, X.shape, False, dtype)
    X = np.ascontiguousarray(X)
    return CoreMatrix(X.T, None, (X.shape[1], X.shape[0]), True, dtype)


def _check_not_empty(shape: tuple[int, ...], name: str) -> None:
    if 0 in shape:
        raise ValueError(
            f"{name} must be a non-empty matrix (at least 1 sample and 1 feature), "
            f"got shape {shape}"
        )


def check_int(value: Any, name: str, low: int, high: Optional[int] = None) -> int:
    expected = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {expected}, got {value}")
    return int(value)


def check_nonneg(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_factor(F: Any, name: str, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """A user-given starting factor: exact shape and dtype, finite, >= 0."""
    if not isinstance(F, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape {shape}, got {type(F).__name__}")
    if F.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {F.shape}")
    if F.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of X ({dtype}), got {F.dtype}")
    if not np.isfinite(F).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    if F.size and F.min() < 0:
        raise ValueError(f"{name} must be non-negative, got a minimum of {F.min()}")
    return F


def seed_from(random_state: Any) -> int:
    """An unsigned 64-bit seed; None draws one from numpy's global generator."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            "random_state must be None, an integer in [0, 2**64) or a numpy random "
            f"generator, got {random_state!r}"
        )
    if not 0 <= random_state < 2**64:
        raise ValueError(f"random_state must be in [0, 2**64), got {random_state}")
    return int(random_state)


# The largest temporary (in bytes) a blocked computation may allocate.
BLOCK_BYTES = 8 * 2**20


def matrix(value: Any, name: str, *, sparse: bool = False,
           nonneg: bool = False) -> Union[np.ndarray, sp.csr_matrix, sp.csr_array]:
    """A finite, real, non-empty 2-D array (float32 kept, else float64).

    With ``sparse=True`` scipy.sparse input is accepted and returned as CSR;
    otherwise it is an error.
    """
    if sp.issparse(value):
        if not sparse:
            raise TypeError(f"{name} must be a dense array, got a scipy.sparse {value.format} "
                            "matrix (use .toarray())")
        M = value.tocsr()
        dtype = _float_dtype(M.dtype, name)
        if M.dtype != dtype:
            M = M.astype(dtype)
        data = M.data
    else:
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"{name} must be a 2-D array of numbers, got {value!r}")
        try:
            M = np.asarray(value)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"{name} must be a 2-D array of numbers: {err}") from None
        dtype = _float_dtype(M.dtype, name)
        if M.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array, got a {M.ndim}-D array with shape "
                             f"{M.shape}")
        if M.dtype != dtype:
            try:
                M = M.astype(dtype)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name} must hold numbers, got dtype {M.dtype}: {err}") from None
        data = M
    if 0 in M.shape:
        raise ValueError(f"{name} must be non-empty, got shape {M.shape}")
    bad = _count_nonfinite(data)
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} entries that are NaN or infinity")
    if nonneg and data.size and data.min() < 0:
        raise ValueError(f"{name} must be non-negative, got a minimum of {data.min()}")
    return M


def _count_nonfinite(data: np.ndarray) -> int:
    """NaN and infinity entries, counted in blocks (no full-size boolean mask)."""
    if data.ndim == 1 or data.size * data.itemsize <= BLOCK_BYTES:
        return int(data.size - np.count_nonzero(np.isfinite(data)))
    step = block_step(data.shape[1], data.itemsize)
    return sum(int(data[i:i + step].size - np.count_nonzero(np.isfinite(data[i:i + step])))
               for i in range(0, data.shape[0], step))


def rng_from(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """A numpy Generator from None, an integer seed, a Generator or a RandomState."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"{name} must be None, a non-negative integer or a numpy random "
                        f"generator, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {random_state}")
    return np.random.default_rng(int(random_state))


def block_step(n_cols: int, itemsize: int = 8) -> int:
    """Rows per block so that a (rows x n_cols) temporary fits BLOCK_BYTES."""
    return max(1, BLOCK_BYTES // max(1, n_cols * itemsize))


def check_data(X: Any, name: str, nonneg: bool = True) -> None:
    """Refuses data the core would refuse, in the core's words, before any
    preprocessing touches it: NaN or infinity, negative values (unless
    ``nonneg`` is False)."""
    V = X.data if sp.issparse(X) else np.asarray(X)
    if V.size == 0:
        return
    bad = _count_nonfinite(V if V.ndim == 2 else V.reshape(1, -1))
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} entries that are NaN or infinity")
    if not nonneg:
        return
    low = V.min()
    if low < 0:
        count = int(np.count_nonzero(V < 0))
        raise ValueError(f"Negative values in data passed to {name}: it must be non-negative, "
                         f"got {count} negative entries (minimum {float(low):.6f})")
