"""Reading spectral images from files, writing them, and HyperSpy conversion.

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
``.3ds``                  Nanonis grid spectroscopy (STM/CITS)
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

Each format is a module of this package that registers its extensions
with the reader (``_registry.register``); :func:`read` chooses by the
registry, so adding a format is adding one module and importing it here.
"""

from __future__ import annotations

# Imported for their registration, in the order SUPPORTED_EXTENSIONS lists them.
from . import _numpy, _hdf5, _tiff, _matlab, _vendor, _nanonis  # noqa: F401  (isort: skip)
from ._hyperspy import from_hyperspy, save_hyperspy, to_hyperspy
from ._lazy import LazyArray
from ._numpy import save_npz
from ._read import read
from ._registry import extensions as _extensions

__all__ = [
    "LazyArray",
    "SUPPORTED_EXTENSIONS",
    "VENDOR_FORMATS",
    "from_hyperspy",
    "read",
    "save_hyperspy",
    "save_npz",
    "to_hyperspy",
]

#: Extensions read through RosettaSciIO, and the ``rsciio`` plugin reading them.
VENDOR_FORMATS: dict[str, str] = _vendor.VENDOR_FORMATS

#: Every extension :func:`read` knows (case is ignored).
SUPPORTED_EXTENSIONS: tuple[str, ...] = _extensions()
