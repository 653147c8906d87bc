"""Data with ground truth: images generated from a seed, and readers for
reference data files on disk (nothing is downloaded).

- :func:`tof_sims_like`: a synthetic ToF-SIMS-like image with Poisson noise.
- :func:`load_samson`: the real Samson hyperspectral image with its ground
  truth endmembers and abundances.
- :func:`usgs_library` and :func:`usgs_mixture`: the USGS mineral spectral
  library and synthetic mixtures of its spectra with given abundance maps.

The reference files are read from ``folder`` when given, else from the
folder named by the environment variable ``UNMIX_DATA``, else from unmix's
folder in the user cache where scientific Python packages keep public data
sets (``pooch.os_cache("unmix")``, e.g. ``~/.cache/unmix`` on Linux; needs
the optional ``pooch``, ``pip install "unmix[data]"``). See
:func:`data_folder`.
"""

from __future__ import annotations

import difflib
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional, Union

import numpy as np
from scipy.ndimage import gaussian_filter

from ._validation import rng_from
from .image import SpectralImage

__all__ = [
    "DEFAULT_MINERALS",
    "REFERENCE_FILES",
    "ReferenceImage",
    "USGSLibrary",
    "cache_folder",
    "data_folder",
    "load_samson",
    "tof_sims_like",
    "usgs_library",
    "usgs_mixture",
]


@dataclass(frozen=True)
class ReferenceImage:
    """A spectral image with its ground truth (real or synthetic).

    ``X`` is (n_pixels, n_channels) in C order, pixels in row-major order of
    ``spatial_shape`` (``X.reshape(*spatial_shape, n_channels)`` is the
    image); ``abundances`` (n_pixels, k) are in the same pixel order and sum
    to one per pixel; ``endmembers`` (k, n_channels), named by
    ``endmember_names``. When the data is a known mixture,
    ``X ≈ scale · abundances @ endmembers``; ``scale`` is None for real data
    whose endmembers do not reconstruct X exactly (Samson).
    """

    X: np.ndarray
    abundances: np.ndarray
    endmembers: np.ndarray
    spatial_shape: tuple[int, ...]
    channels: np.ndarray
    channel_unit: str
    endmember_names: tuple[str, ...] = ()
    scale: Optional[float] = None

    def image(self) -> SpectralImage:
        """The data as an :class:`unmix.SpectralImage` (no copy)."""
        return SpectralImage.from_matrix(self.X, self.spatial_shape, channels=self.channels,
                                         channel_unit=self.channel_unit)


def tof_sims_like(
    spatial_shape: tuple[int, int] = (128, 128),
    n_channels: int = 512,
    n_components: int = 4,
    counts_per_pixel: float = 2000.0,
    seed: int = 0,
) -> ReferenceImage:
    """A ToF-SIMS-like image: smooth chemical domains, peaky mass spectra and
    Poisson counting noise.

    Each component's spectrum is a few dozen Gaussian peaks at random mass
    channels (shared peaks give the overlap real spectra have); each
    abundance map is a smoothed random field, sharpened and normalized so the
    maps sum to one per pixel with extended, nearly pure domains.
    """
    rng = np.random.default_rng(seed)
    channels = np.linspace(1.0, 512.0, n_channels)
    E = np.zeros((n_components, n_channels))
    shared = rng.uniform(channels[0], channels[-1], size=8)
    for c in range(n_components):
        centres = np.concatenate([rng.uniform(channels[0], channels[-1], size=30), shared])
        heights = rng.gamma(0.7, 1.0, size=centres.size)
        widths = rng.uniform(0.4, 1.2, size=centres.size)
        for m, h, w in zip(centres, heights, widths):
            E[c] += h * np.exp(-0.5 * ((channels - m) / w) ** 2)
        E[c] += 0.002 * E[c].max()  # a small continuous background
        E[c] /= E[c].sum()

    fields = np.stack(
        [gaussian_filter(rng.standard_normal(spatial_shape), sigma=spatial_shape[0] / 12,
                         mode="wrap") for _ in range(n_components)],
        axis=-1,
    )
    fields /= fields.std()
    A = np.exp(4.0 * fields)
    A /= A.sum(axis=-1, keepdims=True)
    A = A.reshape(-1, n_components)

    X = rng.poisson(counts_per_pixel * (A @ E)).astype(np.float64)
    return ReferenceImage(X, A, E, tuple(spatial_shape), channels, "m/z", scale=counts_per_pixel)


# ---------------------------------------------------------------------------
# Reference data files
# ---------------------------------------------------------------------------


class USGSLibrary(NamedTuple):
    """The USGS 1995 mineral library: ``spectra[i]`` is the reflectance of
    mineral ``names[i]`` at ``wavelengths`` (µm, increasing)."""

    wavelengths: np.ndarray  # (n_bands,)
    spectra: np.ndarray  # (n_minerals, n_bands)
    names: tuple[str, ...]


#: The minerals :func:`usgs_mixture` uses by default: the triple with the
#: largest smallest pairwise spectral angle (27°; the others are 27° and
#: 48°) among the alunite, buddingtonite, calcite, chalcedony, goethite,
#: hematite, jarosite, kaolinite, montmorillonite, muscovite and nontronite
#: spectra of the library.
DEFAULT_MINERALS = ("Alunite HS295.3B", "Hematite GDS69.g <10um", "Nontronite SWa-1.b  <2um")

_ABUNDANCE_FILES = ("abundance_spatial_3em.mat", "abundance_squares_3em.mat")


#: The reference files the readers of this module open, and which reads each.
REFERENCE_FILES = {
    "samson.mat": "load_samson",
    "usgs_1995_library.mat": "usgs_library",
    "abundance_spatial_3em.mat": "usgs_mixture",
    "abundance_squares_3em.mat": "usgs_mixture",
}


def cache_folder() -> Path:
    """unmix's folder in the user cache, ``pooch.os_cache("unmix")`` (the
    convention scikit-image and HyperSpy follow for public data sets; it
    honours ``XDG_CACHE_HOME`` on Linux). It need not exist.

    Raises ImportError naming the optional dependency when pooch is not
    installed.
    """
    try:
        import pooch
    except ImportError:
        raise ImportError(
            "unmix finds its reference data in the user cache through the optional package "
            "pooch, which is not installed: pip install \"unmix[data]\" (or pip install "
            "pooch), or set UNMIX_DATA to the folder holding the files, or pass folder=..."
        ) from None
    return Path(pooch.os_cache("unmix"))


def data_folder(folder: Union[str, os.PathLike, None] = None) -> Path:
    """The folder holding the reference data files (:data:`REFERENCE_FILES`).

    ``folder`` when given; else ``$UNMIX_DATA`` when set; else
    :func:`cache_folder`. Nothing is searched elsewhere and nothing is
    downloaded: put the files in one of these places.

    Raises
    ------
    FileNotFoundError
        When the folder chosen does not exist; the message says where to
        put which file.
    ImportError
        When neither ``folder`` nor ``UNMIX_DATA`` is given and pooch (the
        cache location) is not installed.
    """
    if folder is not None:
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"folder must be a path (str or os.PathLike) or None, got {folder!r}")
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"folder must be an existing directory, got {str(path)!r}")
        return path
    env = os.environ.get("UNMIX_DATA")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise FileNotFoundError(
                f"UNMIX_DATA must name an existing directory, got {env!r}")
        return path
    path = cache_folder()
    if not path.is_dir():
        raise FileNotFoundError(
            f"no reference data folder: pass folder=..., set UNMIX_DATA to the folder holding "
            f"the files, or put them in unmix's cache folder {str(path)!r} (absent); the files "
            f"are {', '.join(REFERENCE_FILES)}")
    return path


def _data_file(name: str, folder: Union[str, os.PathLike, None]) -> Path:
    path = data_folder(folder) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{name} is not in the data folder {str(path.parent)!r}: put it there, or pass "
            "folder=... (or set UNMIX_DATA) to the folder that holds it")
    return path


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    return loadmat(str(path))


def load_samson(folder: Union[str, os.PathLike, None] = None) -> ReferenceImage:
    """The Samson hyperspectral image (95 × 95 pixels, 156 bands) with its
    ground truth.

    ``samson.mat`` stores the pixels MATLAB-style (bands × pixels, column-major
    pixel order); here ``X`` is (9025, 156) in row-major pixel order, so
    ``X.reshape(95, 95, 156)`` is the image and ``abundances`` (9025, 3), from
    ``S_GT``, follow the same order. ``endmembers`` (3, 156) are the ground
    truth spectra (soil, tree, water), each scaled to a maximum of 1: they do
    not reconstruct X exactly (``scale`` is None), so score endmembers by
    spectral angle (:func:`unmix.metrics.mean_sad`). ``channels`` is the band
    index 0…155 (the file has no wavelengths).
    """
    d = _loadmat(_data_file("samson.mat", folder))
    Y = np.asarray(d["Y"], dtype=np.float64)  # (bands, pixels), pixel = r + rows * c
    S = np.asarray(d["S_GT"], dtype=np.float64)  # (rows, cols, k)
    E = np.ascontiguousarray(d["GT"], dtype=np.float64)
    rows, cols, k = S.shape
    bands = Y.shape[0]
    if Y.shape[1] != rows * cols or E.shape != (k, bands):
        raise ValueError(f"samson.mat has inconsistent shapes: Y {Y.shape}, S_GT {S.shape}, "
                         f"GT {E.shape}")
    # Y[b, r + rows * c] -> cube[r, c, b] -> row r * cols + c of X.
    X = np.ascontiguousarray(Y.reshape(bands, cols, rows).transpose(2, 1, 0)).reshape(-1, bands)
    A = np.ascontiguousarray(S.reshape(-1, k))
    return ReferenceImage(X, A, E, (rows, cols), np.arange(bands, dtype=np.float64), "band",
                         ("soil", "tree", "water"))


def usgs_library(folder: Union[str, os.PathLike, None] = None) -> USGSLibrary:
    """The USGS 1995 mineral spectral library: 498 reflectance spectra at 224
    wavelengths (0.38–2.51 µm), sorted by wavelength."""
    d = _loadmat(_data_file("usgs_1995_library.mat", folder))
    lib = np.asarray(d["datalib"], dtype=np.float64)
    names = [bytes(row).decode("latin-1").strip() for row in np.asarray(d["names"], np.uint8)]
    order = np.argsort(lib[:, 0], kind="stable")
    wavelengths = np.ascontiguousarray(lib[order, 0])
    spectra = np.ascontiguousarray(lib[order, 3:].T)
    # The first three names describe columns 0-2 (wavelength, resolution, channel).
    return USGSLibrary(wavelengths, spectra, tuple(names[3:]))


def _mineral_indices(minerals: Any, names: tuple[str, ...], k: int) -> list[int]:
    if isinstance(minerals, np.ndarray) and minerals.ndim == 1:
        minerals = minerals.tolist()
    if isinstance(minerals, (str, bytes)) or not isinstance(minerals, Sequence):
        raise TypeError(f"minerals must be a sequence of {k} mineral names or library indices, "
                        f"got {minerals!r}")
    if len(minerals) != k:
        raise ValueError(f"minerals must name {k} minerals (one per abundance map), got "
                         f"{len(minerals)}: {list(minerals)!r}")

    def key(name: str) -> str:
        return " ".join(name.split()).lower()

    lookup = {key(n): i for i, n in reversed(list(enumerate(names)))}
    out = []
    for m in minerals:
        if isinstance(m, numbers.Integral) and not isinstance(m, bool):
            if not 0 <= m < len(names):
                raise ValueError(f"minerals entries that are indices must be in "
                                 f"[0, {len(names)}), got {m}")
            out.append(int(m))
        elif isinstance(m, str):
            if key(m) not in lookup:
                close = difflib.get_close_matches(m, names, n=5, cutoff=0.5)
                raise ValueError(f"minerals: {m!r} is not in the USGS library"
                                 + (f"; close names: {close}" if close else ""))
            out.append(lookup[key(m)])
        else:
            raise TypeError(f"minerals entries must be names (str) or library indices (int), "
                            f"got {m!r}")
    if len(set(out)) != k:
        raise ValueError(f"minerals must be {k} distinct spectra, got {[names[i] for i in out]}")
    return out


def usgs_mixture(
    abundance_file: str = "abundance_spatial_3em.mat",
    snr_db: Optional[float] = 30.0,
    poisson: bool = False,
    minerals: Optional[Sequence[Union[str, int]]] = None,
    seed: Any = 0,
    folder: Union[str, os.PathLike, None] = None,
    clip: bool = True,
    counts: Optional[float] = None,
) -> ReferenceImage:
    """A synthetic mixture of USGS library spectra with exactly known truth.

    ``X = A E + noise`` where ``A`` (n_pixels, 3) is the abundance map of
    ``abundance_file`` flattened in row-major order and ``E`` (3, 224) the
    reflectance spectra of ``minerals``.

    Parameters
    ----------
    abundance_file : {"abundance_spatial_3em.mat", "abundance_squares_3em.mat"}
        The abundance maps (50 × 50 smooth regions or 70 × 70 squares), in
        the data folder; a path to another ``.mat`` file with an ``A_cube``
        (rows, cols, k) array also works.
    snr_db : float or None
        Signal-to-noise ratio ``10 log10(||A E||² / ||noise||²)`` in dB.
        None (or infinity) gives the noiseless mixture.
    poisson : bool
        False: white Gaussian noise of the variance that gives ``snr_db``.
        True: Poisson counts ``X ~ Poisson(scale · A E)`` with the counts
        scale ``scale = 10^(snr_db / 10) · sum(A E) / sum((A E)²)`` — the
        expected counts per unit reflectance for which the Poisson noise has
        the requested SNR (about 2,300 at 30 dB for the defaults, a mean
        of about 870 counts per entry), or ``counts / mean(A E)`` when
        ``counts`` is given; ``scale`` is returned with the data.
    minerals : sequence of 3 str or int, optional
        Library names (whitespace and case are ignored) or indices into
        :func:`usgs_library`; default :data:`DEFAULT_MINERALS`.
    seed : int, numpy Generator or None
        Seed of the noise; the same seed gives the same data.
    folder : path, optional
        The data folder (see :func:`data_folder`).
    clip : bool
        Clip the Gaussian-noise data at zero, as reflectance and the NMF need
        (it changes the SNR by less than 0.01 dB at 20 dB for the defaults,
        where 0.1 % of the entries are clipped).
    counts : float, optional
        With ``poisson=True``: the mean expected count per entry (pixel and
        channel), which sets the counts scale ``scale = counts / mean(A E)``
        instead of ``snr_db`` — the way counting detectors are described
        (5–50 counts per channel is typical of ToF-SIMS and EDS maps; 50
        gives an SNR of about 17.6 dB with the defaults). ``snr_db`` is then
        not used.

    Returns
    -------
    ReferenceImage
        ``abundances`` = A, ``endmembers`` = E, ``channels`` the wavelengths
        in µm, ``X ≈ scale · A E`` (``scale`` is 1 without Poisson noise).
    """
    if not isinstance(abundance_file, (str, os.PathLike)):
        raise TypeError(f"abundance_file must be one of {_ABUNDANCE_FILES} or a path, got "
                        f"{abundance_file!r}")
    path = Path(abundance_file)
    if not path.is_file():
        if str(abundance_file) not in _ABUNDANCE_FILES:
            raise ValueError(f"abundance_file must be one of {_ABUNDANCE_FILES} or the path of "
                             f"an existing .mat file, got {str(abundance_file)!r}")
        path = _data_file(str(abundance_file), folder)
    cube = np.asarray(_loadmat(path)["A_cube"], dtype=np.float64)
    if cube.ndim != 3:
        raise ValueError(f"A_cube in {str(path)!r} must be (rows, cols, k), got shape {cube.shape}")
    k = cube.shape[2]
    A = np.ascontiguousarray(cube.reshape(-1, k))

    if snr_db is not None and (isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real)
                               or np.isnan(snr_db) or snr_db == -np.inf):
        raise TypeError(f"snr_db must be a real number (dB), infinity or None, got {snr_db!r}")
    noiseless = snr_db is None or snr_db == np.inf
    if not isinstance(poisson, (bool, np.bool_)):
        raise TypeError(f"poisson must be True or False, got {poisson!r}")
    if counts is not None:
        if (isinstance(counts, bool) or not isinstance(counts, numbers.Real)
                or not np.isfinite(counts) or counts <= 0):
            raise ValueError(f"counts must be a finite number > 0 (mean counts per entry) or "
                             f"None, got {counts!r}")
        if not poisson:
            raise ValueError(f"counts sets the scale of Poisson counts: pass poisson=True with "
                             f"counts={counts!r}")
    elif poisson and noiseless:
        raise ValueError("poisson=True needs a finite snr_db or counts (either sets the counts "
                         f"scale), got snr_db={snr_db!r}")

    lib = usgs_library(folder)
    idx = _mineral_indices(DEFAULT_MINERALS if minerals is None else minerals, lib.names, k)
    E = np.ascontiguousarray(lib.spectra[idx])
    names = tuple(lib.names[i] for i in idx)
    rng = rng_from(seed, "seed")

    Y = A @ E
    scale = 1.0
    if poisson:
        if counts is not None:
            scale = float(counts / Y.mean())
        else:
            scale = float(10.0 ** (snr_db / 10.0) * Y.sum() / np.sum(Y * Y))
        X = rng.poisson(scale * Y).astype(np.float64)
    elif noiseless:
        X = Y
    else:
        sigma = np.sqrt(np.sum(Y * Y) / Y.size / 10.0 ** (snr_db / 10.0))
        X = Y + rng.normal(0.0, sigma, Y.shape)
        if clip:
            np.maximum(X, 0.0, out=X)
    return ReferenceImage(X, A, E, cube.shape[:2], lib.wavelengths.copy(), "µm", names, scale)
