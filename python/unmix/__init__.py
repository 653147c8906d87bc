"""unmix: physically constrained linear unmixing of spectral images.

The core is a C++ header library (Armadillo + BLAS); this package is its
Python front: :func:`nmf` for one factorization, :class:`NMF` for
scikit-learn pipelines and HyperSpy.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from ._nmf import IterationInfo, NMFResult, nmf
from .image import SpectralImage
from .rank import select_rank
from .workflow import Unmixing, pca, unmix

__version__: str = _core.__version__

__all__ = [
    "NMF", "IterationInfo", "NMFResult", "SpectralImage", "Unmixing", "get_include", "nmf",
    "pca", "select_rank", "unmix", "__version__",
]


if TYPE_CHECKING:
    from ._estimator import NMF


def __getattr__(name: str) -> Any:
    # The estimator needs scikit-learn, which takes most of a second to
    # import; load it on first use so `import unmix` and the command line
    # start fast.
    if name == "NMF":
        from ._estimator import NMF

        return NMF
    raise AttributeError(f"module 'unmix' has no attribute {name!r}")


def get_include() -> str:
    """The folder holding ``unmix.hpp``, for C++ extensions built against unmix."""
    return str(Path(__file__).parent / "include")
