"""unmix: physically constrained linear unmixing of spectral images.

The core is a C++ header library (Armadillo + BLAS); this package is its
Python front: :func:`nmf` for one factorization, :class:`NMF` for
scikit-learn pipelines and HyperSpy.
"""

from pathlib import Path

from . import _core
from ._estimator import NMF
from ._nmf import IterationInfo, NMFResult, nmf
from .image import SpectralImage
from .workflow import Unmixing, pca, select_rank, unmix

__version__: str = _core.__version__

__all__ = [
    "NMF", "IterationInfo", "NMFResult", "SpectralImage", "Unmixing", "get_include", "nmf",
    "pca", "select_rank", "unmix", "__version__",
]


def get_include() -> str:
    """The folder holding ``unmix.hpp``, for C++ extensions built against unmix."""
    return str(Path(__file__).parent / "include")
