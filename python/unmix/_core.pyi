"""Type stubs of the compiled module (see cpp/bindings)."""

from typing import Any, Callable, Optional, TypedDict, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Float = Union[np.float32, np.float64]
_Index = Union[np.int32, np.int64]
_Callback = Callable[[int, float, float, float], bool]

class _Timings(TypedDict):
    init: float
    products: float
    gram: float
    update: float
    total: float

class _Result(TypedDict):
    W: npt.NDArray[Any]
    H: npt.NDArray[Any]
    n_iter: int
    objective: npt.NDArray[np.float64]
    rel_error: npt.NDArray[np.float64]
    data_norm: float
    converged: bool
    stop_reason: str
    timings: _Timings

def solvers() -> dict[str, str]: ...
def inits() -> dict[str, str]: ...
def losses() -> dict[str, str]: ...
def choose_grid(p: int, m: int, n: int) -> tuple[int, int]: ...
def blas_path() -> str: ...
def data_limit(dtype: str) -> float: ...
def nmf_dense(
    M: npt.NDArray[_Float],
    k: int,
    options: dict[str, Any],
    W0: Optional[npt.NDArray[_Float]] = None,
    H0: Optional[npt.NDArray[_Float]] = None,
    callback: Optional[_Callback] = None,
    checkpoint: Optional[dict[str, Any]] = None,
) -> _Result: ...
def nmf_sparse(
    indptr: npt.NDArray[_Index],
    indices: npt.NDArray[_Index],
    data: npt.NDArray[_Float],
    n_rows: int,
    n_cols: int,
    k: int,
    options: dict[str, Any],
    W0: Optional[npt.NDArray[_Float]] = None,
    H0: Optional[npt.NDArray[_Float]] = None,
    callback: Optional[_Callback] = None,
    checkpoint: Optional[dict[str, Any]] = None,
) -> _Result: ...
