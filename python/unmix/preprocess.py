r"""Preprocessing steps for spectral images, each a small function taking and
returning a :class:`~unmix.SpectralImage`.

The steps that only select (:func:`crop`) return views; the others compute
new values and so return new arrays (float32 data stays float32, other
types become float64). Steps that rescale the data return what is needed to
map an NMF of the rescaled data back to the original one
(:func:`denormalize_abundances`, :meth:`PoissonScaling.unscale`,
:meth:`PixelWeighting.unscale`). Every output image's
``metadata["preprocessing"]`` lists the steps applied, in order.

:func:`noise_variance` estimates the noise level of the data; it sets the
scale-free smoothness weight ``smooth_W="auto"`` of :func:`unmix.nmf`
(:data:`AUTO_SMOOTH_W`).

In the formulas, ``X`` is the (pixels × channels) matrix
:attr:`SpectralImage.X`, fitted by NMF as ``X ≈ W H`` with ``W`` the
abundances (pixels × k) and ``H`` the endmember spectra (k × channels).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

import scipy.sparse as sp

from ._validation import block_step, check_choice, check_int, matrix
from .image import SpectralImage, described

__all__ = [
    "AUTO_SMOOTH_W",
    "BASELINE_METHODS",
    "PixelWeighting",
    "PoissonScaling",
    "baseline",
    "bin",
    "center",
    "crop",
    "denormalize_abundances",
    "log",
    "noise_variance",
    "normalize",
    "poisson_scale",
    "sliding_fft",
    "weight_pixels",
]

WINDOWS = ("hann", "hamming", "blackman")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _check_image(image: Any, name: str = "image") -> SpectralImage:
    if not isinstance(image, SpectralImage):
        raise TypeError(f"{name} must be a SpectralImage, got {type(image).__name__}")
    return image


def _float_dtype(dtype: Any) -> np.dtype:
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def _matrix(image: SpectralImage) -> np.ndarray:
    """The (pixels × channels) data as a float array (a view when it already is one)."""
    X = image.X
    if X.dtype.kind not in "biuf":
        raise TypeError(f"image data must be real numbers, got dtype {X.dtype}")
    return X.astype(_float_dtype(X.dtype), copy=False)


def _with(image: SpectralImage, data: Any, step: str, channels: Optional[np.ndarray] = None,
          metadata: Optional[dict] = None, **params: Any) -> SpectralImage:
    """The output image: new data, the step appended to the preprocessing history."""
    meta = dict(image.metadata if metadata is None else metadata)
    meta["preprocessing"] = list(meta.get("preprocessing", [])) + [{"step": step, **params}]
    return image.with_data(data, channels=channels, metadata=meta)


def _is_index(v: Any) -> bool:
    return v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _as_slices(spec: Any, shape: tuple[int, ...], name: str) -> tuple[slice, ...]:
    """One slice per axis of ``shape`` from slices, (start, stop) pairs or None."""
    if isinstance(spec, slice):
        spec = (spec,)
    if not isinstance(spec, (tuple, list)):
        raise TypeError(f"{name} must be a tuple with one slice, (start, stop) pair or None per "
                        f"axis, got {spec!r}")
    if len(spec) > len(shape):
        raise ValueError(f"{name} must have at most {len(shape)} entries (one per axis of "
                         f"shape {shape}), got {len(spec)}")
    out = []
    for i, entry in enumerate(spec):
        if entry is None:
            entry = slice(None)
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and all(map(_is_index, entry)):
            entry = slice(*entry)
        elif not isinstance(entry, slice):
            raise TypeError(f"{name}[{i}] must be a slice, a (start, stop) pair of integers or "
                            f"None, got {entry!r}")
        if not all(map(_is_index, (entry.start, entry.stop, entry.step))) or entry.step == 0:
            raise ValueError(f"{name}[{i}] must be a slice of integer indices with a non-zero "
                             f"step, got {entry!r}")
        out.append(entry)
    return tuple(out) + (slice(None),) * (len(shape) - len(out))


def _cropped_axes(axes: list, slices: tuple[slice, ...], shape: tuple[int, ...]) -> list:
    """Spatial axis descriptions (offset/scale or values) after slicing."""
    out = []
    for ax, s, n in zip(axes, slices, shape):
        ax = dict(ax)
        r = range(*s.indices(n))
        if ax.get("values") is not None:
            ax["values"] = np.asarray(ax["values"])[s]
        elif "scale" in ax and len(r):
            ax["offset"] = ax.get("offset", 0.0) + r.start * ax["scale"]
            ax["scale"] = ax["scale"] * r.step
        out.append(ax)
    return out


def _pixel_vector(values: Any, image_shape: tuple[int, ...], name: str) -> np.ndarray:
    """Per-pixel values given with the spatial shape or flat, as a flat float64 array."""
    v = np.asarray(values)
    n = int(np.prod(image_shape))
    if v.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {v.dtype}")
    if v.shape != tuple(image_shape) and v.shape != (n,):
        raise ValueError(f"{name} must have the spatial shape {tuple(image_shape)} or ({n},), "
                         f"got shape {v.shape}")
    v = v.reshape(-1).astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    return v


def _scale_rows(F: Any, scale: np.ndarray, spatial: tuple[int, ...], name: str) -> np.ndarray:
    """F (pixels, k) or (*spatial, k) times a per-pixel factor (flat, pixel C order)."""
    F = np.asarray(F)
    if F.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {F.dtype}")
    if F.ndim == 2 and F.shape[0] == scale.size:
        s = scale.reshape(-1, 1)
    elif F.ndim >= 2 and F.shape[:-1] == tuple(spatial):
        s = scale.reshape(tuple(spatial) + (1,))
    else:
        raise ValueError(f"{name} must have shape ({scale.size}, k) or {tuple(spatial) + ('k',)}"
                         f" (one row per pixel), got shape {F.shape}")
    return F * s.astype(_float_dtype(F.dtype), copy=False)


# ---------------------------------------------------------------------------
# selection and binning
# ---------------------------------------------------------------------------


def crop(image: SpectralImage, spatial: Any = None, channels: Any = None) -> SpectralImage:
    """A region of the image, and/or a range of channels — a view, no copy.

    Parameters
    ----------
    image : SpectralImage
        The image to crop. Lazy data (:class:`unmix.io.LazyArray`, memory
        maps) stays lazy, so cropping before loading reads only the crop.
    spatial : tuple, optional
        One entry per spatial axis (fewer leave the trailing axes whole): a
        slice or a ``(start, stop)`` pair of pixel indices, or None.
    channels : slice or (lo, hi), optional
        A slice of channel *indices*, or a ``(lo, hi)`` pair of numbers in
        the units of ``image.channels``: the channels with
        ``lo <= channels <= hi`` (both ends included) are kept. When these
        are not contiguous (a non-monotonic channel axis), the result is a
        copy.

    Returns
    -------
    SpectralImage
        ``metadata["spatial_axes"]`` offsets/values follow the crop.
    """
    image = _check_image(image)
    spatial_shape = image.spatial_shape
    sp = _as_slices((None,) if spatial is None else spatial, spatial_shape, "spatial")
    ch: Any
    if channels is None:
        ch = slice(None)
    elif isinstance(channels, slice):
        ch = _as_slices(channels, (image.n_channels,), "channels")[0]
    elif (isinstance(channels, (tuple, list)) and len(channels) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in channels)):
        lo, hi = (float(v) for v in channels)
        if not lo <= hi:
            raise ValueError(f"channels must be a (lo, hi) range with lo <= hi, got {channels!r}")
        inside = np.flatnonzero((image.channels >= lo) & (image.channels <= hi))
        if inside.size == 0:
            raise ValueError(f"channels range {channels!r} holds no channel; the channels "
                             f"span [{image.channels.min():g}, {image.channels.max():g}] "
                             f"{image.channel_unit}".rstrip())
        contiguous = inside[-1] - inside[0] + 1 == inside.size
        ch = slice(int(inside[0]), int(inside[-1]) + 1) if contiguous else inside
    else:
        raise TypeError("channels must be a slice of channel indices or a (lo, hi) pair of "
                        f"numbers in channel units, got {channels!r}")
    if isinstance(ch, np.ndarray):  # non-contiguous channels: a copy
        data = np.asarray(image.data[sp])[..., ch]
    else:
        data = image.data[sp + (ch,)]
    if 0 in data.shape:
        raise ValueError(f"crop must leave a non-empty image, got spatial={spatial!r}, "
                         f"channels={channels!r} for spatial shape {spatial_shape} and "
                         f"{image.n_channels} channels")
    meta = dict(image.metadata)
    if isinstance(meta.get("spatial_axes"), list) and len(meta["spatial_axes"]) == len(sp):
        meta["spatial_axes"] = _cropped_axes(meta["spatial_axes"], sp, spatial_shape)
    kept = image.channels[ch]
    return _with(image, data, "crop", channels=kept, metadata=meta,
                 spatial=[[s.start, s.stop, s.step] for s in sp],
                 channel_range=[float(kept[0]), float(kept[-1])])


def bin(image: SpectralImage, spatial: Union[int, tuple[int, ...]] = 1,  # noqa: A001
        channels: int = 1) -> SpectralImage:
    """Sums blocks of pixels and/or channels: counts stay counts.

    Each axis of length ``n`` binned by ``f`` gives ``n // f`` bins; the
    last ``n % f`` entries are dropped. The channel axis value of a bin is
    the mean of its channels' values. Summing (rather than averaging) keeps
    Poisson counts Poisson, as :func:`poisson_scale` assumes.

    Parameters
    ----------
    image : SpectralImage
        The image to bin (lazy data is read).
    spatial : int or tuple of int
        Bin factor of every spatial axis, or one per spatial axis.
    channels : int
        Bin factor of the channel axis.

    Returns
    -------
    SpectralImage
        A new array (all factors 1: ``image`` itself). Integer data is
        summed as int64 (unsigned as uint64) so that sums cannot overflow;
        float32 stays float32.
    """
    image = _check_image(image)
    shape = image.data.shape
    n_sp = len(shape) - 1
    if isinstance(spatial, (tuple, list)):
        if len(spatial) != n_sp:
            raise ValueError(f"spatial must be an integer or {n_sp} integers (one per spatial "
                             f"axis), got {spatial!r}")
        factors = [check_int(f, f"spatial[{i}]", 1) for i, f in enumerate(spatial)]
    else:
        factors = [check_int(spatial, "spatial", 1)] * n_sp
    factors.append(check_int(channels, "channels", 1))
    for i, (f, n) in enumerate(zip(factors, shape)):
        if f > n:
            what = "channels" if i == n_sp else f"spatial factor of axis {i}"
            raise ValueError(f"{what} must be <= the axis length {n}, got {f}")
    if all(f == 1 for f in factors):
        return image
    data = np.asarray(image.data)
    kind = data.dtype.kind
    acc = (np.dtype(np.uint64) if kind == "u" else np.dtype(np.int64) if kind in "bi"
           else _float_dtype(data.dtype))
    out = data
    for axis, f in enumerate(factors):
        if f == 1:
            continue
        m = out.shape[axis] // f
        lead = (slice(None),) * axis
        total = out[lead + (slice(0, m * f, f),)].astype(acc, copy=True)
        for j in range(1, f):  # strided adds: no temporary larger than the output
            total += out[lead + (slice(j, m * f, f),)]
        out = total
    fc = factors[-1]
    nc = image.n_channels // fc
    channels_out = image.channels[:nc * fc].reshape(nc, fc).mean(axis=1)
    meta = dict(image.metadata)
    axes = meta.get("spatial_axes")
    if isinstance(axes, list) and len(axes) == n_sp:
        binned = []
        for ax, f, n in zip(axes, factors, shape):
            ax = dict(ax)
            if ax.get("values") is not None:
                v = np.asarray(ax["values"], dtype=float)
                ax["values"] = v[:n // f * f].reshape(-1, f).mean(axis=1)
            elif "scale" in ax:
                ax["offset"] = ax.get("offset", 0.0) + (f - 1) / 2 * ax["scale"]
                ax["scale"] = ax["scale"] * f
            binned.append(ax)
        meta["spatial_axes"] = binned
    return _with(image, out, "bin", channels=channels_out, metadata=meta,
                 spatial=factors[:-1], channel_factor=fc)


# ---------------------------------------------------------------------------
# intensity scalings
# ---------------------------------------------------------------------------

_NORMS = ("total", "max", "l2")


def normalize(image: SpectralImage, method: str = "total") -> tuple[SpectralImage, np.ndarray]:
    r"""Divides every pixel's spectrum by its norm, so that spectra of
    different intensity (topography, beam current, dwell time) compare by
    shape.

    With ``scale`` the per-pixel norm, the normalized data is
    ``X̃ = diag(scale)⁻¹ X``; pixels whose norm is 0 (all-zero spectra)
    stay zero. The original data is ``image.data == normalized.data *
    scale[..., None]``; an NMF ``X̃ ≈ W̃ H`` of the normalized data is one
    of the original with ``W = diag(scale) W̃``
    (:func:`denormalize_abundances`) and the same ``H``.

    Parameters
    ----------
    image : SpectralImage
        The image to normalize.
    method : {"total", "max", "l2"}
        The norm: ``"total"`` the sum of the absolute values (the total
        counts for counts data), ``"max"`` the largest absolute value,
        ``"l2"`` the Euclidean norm.

    Returns
    -------
    image : SpectralImage
        A new float array.
    scale : ndarray of shape ``image.spatial_shape``, float64
        Each pixel's norm.
    """
    image = _check_image(image)
    method = check_choice(method, "method", _NORMS)
    X = _matrix(image)
    if method == "total":
        scale = np.abs(X).sum(axis=1, dtype=np.float64)
    elif method == "max":
        scale = np.abs(X).max(axis=1).astype(np.float64)
    else:
        scale = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    inverse = np.zeros_like(scale)
    np.divide(1.0, scale, out=inverse, where=scale > 0)
    Xn = X * inverse.astype(X.dtype)[:, None]
    out = _with(image, Xn.reshape(image.data.shape), "normalize", method=method)
    return out, scale.reshape(image.spatial_shape)


def denormalize_abundances(W: Any, scale: Any) -> np.ndarray:
    """Abundances of the original data from those of the :func:`normalize`-d data.

    ``W = diag(scale) W̃``: row ``i`` of ``W`` (pixel ``i`` in C order of the
    spatial axes) times ``scale`` of that pixel.

    Parameters
    ----------
    W : array of shape (n_pixels, k) or (*spatial, k)
        Abundances fitted to the normalized data.
    scale : array of shape (*spatial) or (n_pixels,)
        As returned by :func:`normalize`.

    Returns
    -------
    ndarray
        A new array of the shape of ``W``.
    """
    scale = np.asarray(scale)
    if scale.dtype.kind not in "biuf":
        raise TypeError(f"scale must hold real numbers, got dtype {scale.dtype}")
    return _scale_rows(W, scale.astype(np.float64).reshape(-1), scale.shape, "W")


@dataclass(frozen=True)
class PoissonScaling:
    r"""What :func:`poisson_scale` divided by, to undo it on NMF factors.

    Parameters
    ----------
    pixel_scale : ndarray of shape (*spatial)
        ``√g``: the square root of each pixel's mean count over the channels.
    channel_scale : ndarray of shape (channels,)
        ``√h``: the square root of each channel's mean count over the pixels.
    """

    pixel_scale: np.ndarray
    channel_scale: np.ndarray

    def unscale(self, W: Any, H: Any) -> tuple[np.ndarray, np.ndarray]:
        r"""Factors of the original data from those of the scaled data.

        ``X̃ ≈ W̃ H̃`` with ``X̃ = G^{-1/2} X H_d^{-1/2}`` gives
        ``X ≈ W H`` with ``W = G^{1/2} W̃`` and ``H = H̃ H_d^{1/2}``.
        Zero pixels and channels (scale 0) get zero rows of ``W`` and zero
        columns of ``H``, as the data has there.

        Parameters
        ----------
        W : array of shape (n_pixels, k) or (*spatial, k)
        H : array of shape (k, channels)

        Returns
        -------
        W, H : ndarray
            New arrays of the shapes of ``W`` and ``H``.
        """
        W = _scale_rows(W, self.pixel_scale.reshape(-1), self.pixel_scale.shape, "W")
        H = np.asarray(H)
        n = self.channel_scale.size
        if H.ndim != 2 or H.shape[1] != n:
            raise ValueError(f"H must have shape (k, {n}) (one column per channel), got shape "
                             f"{H.shape}")
        if H.dtype.kind not in "biuf":
            raise TypeError(f"H must hold real numbers, got dtype {H.dtype}")
        return W, H * self.channel_scale.astype(_float_dtype(H.dtype), copy=False)


def poisson_scale(image: SpectralImage) -> tuple[SpectralImage, PoissonScaling]:
    r"""Scales counts data so that its Poisson noise is about uniform
    (Keenan & Kotula 2004), before a least-squares NMF or PCA.

    Least squares assumes the same noise everywhere, but Poisson noise has
    the variance of the count, so bright pixels and channels would dominate
    the fit. With ``g`` the mean image (each pixel's mean count over the
    ``p`` channels, ``g = X 1 / p``) and ``h`` the mean spectrum (each
    channel's mean count over the ``n`` pixels, ``h = Xᵀ 1 / n``),

    .. math::

        \tilde X = G^{-1/2} X H_d^{-1/2},\qquad G = \mathrm{diag}(g),\
        H_d = \mathrm{diag}(h).

    For counts of a rank-one mean ``E[x_ij] ∝ g_i h_j`` the scaled noise
    variance is the same for every entry. The means (rather than the sums
    HyperSpy uses) make ``X̃`` the same whatever the image size; the two
    differ by the constant ``√(n p)``. Pixels or channels whose counts are
    all zero stay zero (no division by zero). Undo on the NMF factors with
    :meth:`PoissonScaling.unscale`.

    Channels with almost no counts get the largest weights: when those
    with fewer than 0.05 counts per pixel hold most of the scaled data, a
    :class:`unmix.noise.SparseChannelsWarning` says how to crop or bin
    them (:func:`unmix.noise.sparse_channels`).

    Parameters
    ----------
    image : SpectralImage
        Non-negative counts.

    Returns
    -------
    image : SpectralImage
        A new float array.
    scaling : PoissonScaling
        The scale factors, to undo the scaling on the NMF factors.

    References
    ----------
    M. R. Keenan and P. G. Kotula, "Accounting for Poisson noise in the
    multivariate analysis of ToF-SIMS spectrum images", Surf. Interface
    Anal. 36, 203–212 (2004).
    """
    image = _check_image(image)
    X = _matrix(image)
    if X.size and X.min() < 0:
        raise ValueError(f"{described(image)} must hold non-negative counts for Poisson scaling, "
                         f"got a minimum of {X.min()}")
    n, p = X.shape
    g = X.sum(axis=1, dtype=np.float64) / p
    h = X.sum(axis=0, dtype=np.float64) / n
    sg, sh = np.sqrt(g), np.sqrt(h)
    a = np.zeros_like(sg)
    b = np.zeros_like(sh)
    np.divide(1.0, sg, out=a, where=sg > 0)
    np.divide(1.0, sh, out=b, where=sh > 0)
    Xs = X * a.astype(X.dtype)[:, None]
    Xs *= b.astype(X.dtype)
    from .noise import SparseChannelsWarning, sparse_channels

    sparse = sparse_channels(h, np.einsum("ij,ij->j", Xs, Xs, dtype=np.float64), image.channels,
                             image.channel_unit, len(image.spatial_shape))
    if sparse is not None:
        warnings.warn(sparse, SparseChannelsWarning, stacklevel=2)
    out = _with(image, Xs.reshape(image.data.shape), "poisson_scale")
    return out, PoissonScaling(sg.reshape(image.spatial_shape), sh)


# ---------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------

#: Baseline methods of pybaselines that suit spectral maps, for the help
#: texts and error messages; ``baseline`` takes any 1-D method of
#: ``pybaselines.Baseline``.
BASELINE_METHODS = ("arpls", "asls", "airpls", "iarpls", "snip", "mor", "imodpoly", "modpoly")

#: baseline warns when more than this share of the values lies more than 3
#: noise standard deviations below the baseline (noise alone puts 0.13 %
#: of a flat region there): the baseline then lies above the data.
BASELINE_OVERSHOOT_WARN = 0.01


def _pybaselines() -> Any:
    try:
        import pybaselines
    except ImportError:
        raise ImportError(
            "unmix.preprocess.baseline needs the optional package pybaselines, which is not "
            "installed: pip install \"unmix[baseline]\" (or pip install pybaselines)"
        ) from None
    return pybaselines


def _spectrum_noise(X: np.ndarray) -> np.ndarray:
    """Each row's noise standard deviation from its channel-to-channel
    differences (median absolute difference / (0.6745 √2)): smooth
    baselines and a few narrow peaks hardly move the median."""
    if X.shape[1] < 2:
        return np.zeros(X.shape[0])
    d = np.abs(np.diff(X, axis=1))
    return np.median(d, axis=1) / (0.6745 * np.sqrt(2.0))


def baseline(image: SpectralImage, method: str = "arpls", **options: Any) -> SpectralImage:
    r"""Removes a smooth baseline (fluorescence, a detector offset, a
    background) from every pixel spectrum, with one of pybaselines' methods.

    Raman and photoluminescence maps sit on a broad fluorescence background
    that varies from pixel to pixel; left in, NMF spends its first
    component on it (a flat spectrum with the largest abundance). Each
    pixel's spectrum ``x`` gets its own baseline ``b`` (fitted on the
    channel axis ``image.channels``), and the result is ``x - b``, with
    the values below zero set to zero (NMF needs non-negative data).

    Parameters
    ----------
    image : SpectralImage
        The image; its ``channels`` are the x values of the spectra.
    method : str
        A 1-D method of ``pybaselines.Baseline``; :data:`BASELINE_METHODS`
        lists those that suit spectral maps. The default ``"arpls"``
        (asymmetrically reweighted penalized least squares, Baek et al.
        2015) puts the baseline through the middle of the noise where there
        is no peak: on peaks over a curved background with white noise
        (the tests) it recovers the background to 0.2 noise standard
        deviations (``"asls"`` with its defaults: 9, below the noise;
        ``"snip"`` and ``"mor"`` stay under the data, by about the noise).
        Clipping the noise below zero then leaves 0.4 noise standard
        deviations on average where there is no signal.
    **options
        Passed to the method, e.g. ``lam`` (arpls, asls: the stiffness,
        default 1e5, suited to a few hundred channels; larger for more
        channels or broader peaks), ``max_half_window`` (snip, mor); see
        pybaselines' documentation.

    Returns
    -------
    SpectralImage
        A new float array, non-negative. Its step in
        ``metadata["preprocessing"]`` records the method, the options,
        how many values were below zero and set to zero (``clipped``,
        ``clipped_share``) and how many of them lay beyond the noise
        (``beyond_noise``: more than 3 standard deviations below zero).

    Warns
    -----
    UserWarning
        When more than 1 % (:data:`BASELINE_OVERSHOOT_WARN`) of the values
        lie more than 3 noise standard deviations below the baseline: the
        baseline lies above the data there, and a stiffer one (a larger
        ``lam``) or one that stays under the data (``"snip"``, ``"mor"``)
        fits better.

    Raises
    ------
    ImportError
        When pybaselines (the optional extra ``unmix[baseline]``) is not
        installed.

    References
    ----------
    S.-J. Baek, A. Park, Y.-J. Ahn and J. Choo, "Baseline correction using
    asymmetrically reweighted penalized least squares smoothing", Analyst
    140, 250–257 (2015). D. Erb, pybaselines,
    https://github.com/derb12/pybaselines.
    """
    image = _check_image(image)
    if not isinstance(method, str):
        raise TypeError(f"method must be the name of a pybaselines method (e.g. "
                        f"{', '.join(map(repr, BASELINE_METHODS[:4]))}), got {method!r}")
    pb = _pybaselines()
    X = _matrix(image)
    if X.size and not np.isfinite(X).all():
        raise ValueError(f"{described(image)} must be finite for baseline removal, got "
                         f"{int(np.size(X) - np.isfinite(X).sum())} NaN or infinite values")
    x = np.asarray(image.channels, dtype=np.float64)
    fitter = pb.Baseline(x_data=x, check_finite=False)
    fit = None if method.startswith("_") or method in ("banded_solver", "pentapy_solver") \
        else getattr(fitter, method, None)
    if not callable(fit):
        raise ValueError(f"method must be a 1-D baseline method of pybaselines.Baseline, such "
                         f"as {', '.join(map(repr, BASELINE_METHODS))}; got {method!r}")
    out = np.empty(X.shape, dtype=X.dtype)
    for i in range(X.shape[0]):
        try:
            b = fit(X[i], **options)[0]
        except TypeError as err:
            if i == 0:  # an option the method does not take
                raise TypeError(f"baseline(method={method!r}): {err}") from None
            raise
        out[i] = X[i] - b
    beyond = int(np.count_nonzero(out < -3.0 * _spectrum_noise(X).astype(X.dtype)[:, None]))
    clipped = int(np.count_nonzero(out < 0))
    np.maximum(out, 0, out=out)
    size = max(out.size, 1)
    if beyond > BASELINE_OVERSHOOT_WARN * size:
        warnings.warn(
            f"baseline(method={method!r}): {100 * beyond / size:.2g} % of the values lie more "
            "than 3 noise standard deviations below the baseline (set to zero): the baseline "
            "lies above the data there; a stiffer one (a larger lam) or method='snip' or "
            "'mor', which stay under the data, fits better", UserWarning, stacklevel=2)
    return _with(image, out.reshape(image.data.shape), "baseline", method=method,
                 options={k: (v if isinstance(v, (int, float, str, bool)) else repr(v))
                          for k, v in options.items()},
                 clipped=clipped, clipped_share=clipped / size, beyond_noise=beyond)


def log(image: SpectralImage, offset: float = 1.0) -> SpectralImage:
    """``log(offset + x)``, for data spanning decades (display, PCA).

    This breaks linear mixing: the log of a mixture is not a mixture of
    logs, so unmix a log-transformed image only to explore it, never to
    quantify abundances.

    Parameters
    ----------
    image : SpectralImage
        The image to transform.
    offset : float
        Added before the logarithm (1 keeps zero counts at 0); ``offset +
        x`` must be > 0 everywhere.

    Returns
    -------
    SpectralImage
        A new float array.
    """
    image = _check_image(image)
    if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not np.isfinite(
            offset):
        raise TypeError(f"offset must be a finite real number, got {offset!r}")
    X = _matrix(image)
    low = X.min()
    if not low + offset > 0:
        raise ValueError(f"offset + data must be > 0 everywhere for the logarithm, got offset "
                         f"{offset} and a data minimum of {low}")
    out = np.log(X + X.dtype.type(offset))
    return _with(image, out.reshape(image.data.shape), "log", offset=float(offset))


def center(image: SpectralImage) -> tuple[SpectralImage, np.ndarray]:
    """Subtracts the mean spectrum from every pixel — for PCA only.

    Centred data has negative entries, which NMF cannot fit (and a mean
    spectrum is not a physical component); give NMF the uncentred data.

    Parameters
    ----------
    image : SpectralImage
        The image to centre.

    Returns
    -------
    image : SpectralImage
        A new float array, ``X - mean``.
    mean : ndarray of shape (channels,), float64
        The mean spectrum subtracted.
    """
    image = _check_image(image)
    X = _matrix(image)
    mean = X.mean(axis=0, dtype=np.float64)
    out = X - mean.astype(X.dtype)
    return _with(image, out.reshape(image.data.shape), "center"), mean


@dataclass(frozen=True)
class PixelWeighting:
    """The square-root weights :func:`weight_pixels` scaled the pixels by.

    Parameters
    ----------
    sqrt_weights : ndarray of shape (*spatial)
        ``√w`` of each pixel.
    """

    sqrt_weights: np.ndarray

    def unscale(self, W: Any) -> np.ndarray:
        """Abundances of the weighted problem from the NMF of the scaled data:
        ``a_i = ã_i / √w_i``. Zero-weight pixels were not fitted: their rows
        are NaN (estimate them with ``H`` fixed, e.g.
        ``unmix.NMF.transform``).

        Parameters
        ----------
        W : array of shape (n_pixels, k) or (*spatial, k)

        Returns
        -------
        ndarray
            A new array of the shape of ``W``.
        """
        s = self.sqrt_weights.reshape(-1)
        inverse = np.full_like(s, np.nan)
        np.divide(1.0, s, out=inverse, where=s > 0)
        return _scale_rows(W, inverse, self.sqrt_weights.shape, "W")

    __call__ = unscale


def weight_pixels(image: SpectralImage, weights: Any) -> tuple[SpectralImage, PixelWeighting]:
    r"""Scales each pixel by the square root of its weight, turning plain
    NMF into weighted least squares over pixels.

    .. math::

        \sum_i w_i \|x_i - a_i E\|^2 = \sum_i \|\sqrt{w_i}\,x_i
        - \tilde a_i E\|^2 \quad\text{with}\quad \tilde a_i = \sqrt{w_i}\,a_i,

    so plain NMF of ``diag(√w) X`` gives ``E`` (``H``) directly and the
    abundances ``a_i = ã_i / √w_i`` (:meth:`PixelWeighting.unscale`). Use
    weights such as the inverse noise variance of each pixel, or 0 to
    exclude bad pixels.

    Parameters
    ----------
    image : SpectralImage
        The image to weight.
    weights : array of shape (*spatial) or (n_pixels,)
        Finite, >= 0.

    Returns
    -------
    image : SpectralImage
        A new float array.
    weighting : PixelWeighting
        The square-root weights, to undo the scaling on the abundances.
    """
    image = _check_image(image)
    w = _pixel_vector(weights, image.spatial_shape, "weights")
    if w.min() < 0:
        raise ValueError(f"weights must be >= 0, got a minimum of {w.min()}")
    s = np.sqrt(w)
    X = _matrix(image)
    out = X * s.astype(X.dtype)[:, None]
    return (_with(image, out.reshape(image.data.shape), "weight_pixels"),
            PixelWeighting(s.reshape(image.spatial_shape)))


# ---------------------------------------------------------------------------
# sliding-window FFT
# ---------------------------------------------------------------------------


def sliding_fft(image2d: Any, window: int = 64, step: int = 16,
                window_fn: Optional[str] = "hann", log: bool = False,  # noqa: A002
                subtract_mean: bool = True, dtype: Any = np.float32) -> SpectralImage:
    """Local diffraction patterns of an atomic-resolution image: the FFT
    magnitude of each window of a sliding grid, as a spectral image whose
    "spectrum" is the flattened pattern, so that NMF separates the lattices
    (phases, orientations) and maps where each one is.

    Window ``(iy, ix)`` covers rows ``iy*step : iy*step+window`` and columns
    ``ix*step : ix*step+window``. Each window has its mean subtracted (the
    DC peak would otherwise dominate), is multiplied by the 2-D window
    function (the outer product of the 1-D one, which tames the edge
    streaks of the periodic FFT), and transformed: ``|fftshift(fft2(w))|``,
    zero frequency at ``(window//2, window//2)``, flattened in C order so
    channel ``c`` is frequency ``divmod(c, window)`` (row, column) of the
    shifted pattern.

    The windows are computed one row of windows at a time, so the only
    large allocation is the output; with the default float32 output, a
    2048² image with a 500 px window and a 100 px step (16 × 16 windows) is
    256 MB.

    Parameters
    ----------
    image2d : array-like of shape (y, x), or SpectralImage with 2 spatial axes and 1 channel
        Real values; read a row band at a time, so a memory map, an
        :class:`h5py.Dataset` or an :class:`unmix.io.LazyArray` works.
    window : int
        Window side in pixels, >= 2 and <= both image sides.
    step : int
        Distance between window origins, >= 1.
    window_fn : {"hann", "hamming", "blackman"} or None
        Periodic window from :func:`scipy.signal.get_window`; None: none.
    log : bool
        Store ``log(1 + |F|)`` instead of ``|F|`` (compresses the dynamic
        range; still >= 0, so NMF applies).
    subtract_mean : bool
        Subtract each window's mean before the window function.
    dtype : float32 or float64
        Output and computation precision.

    Returns
    -------
    SpectralImage
        Shape ``(n_win_y, n_win_x, window*window)`` with
        ``n_win = (side - window) // step + 1``; ``channels`` the flat
        frequency index; ``metadata["sliding_fft"]`` the parameters,
        window origins (``"positions_y"``, ``"positions_x"``) and
        ``"frequencies"`` (cycles per pixel along each axis of the shifted
        pattern); ``metadata["spatial_axes"]`` put each window at its
        centre, in input pixels.
    """
    import scipy.fft
    from scipy.signal import get_window

    name = ""
    if isinstance(image2d, SpectralImage):
        if len(image2d.spatial_shape) != 2 or image2d.n_channels != 1:
            raise ValueError("image2d must be a 2-D array or a SpectralImage with 2 spatial axes "
                             f"and 1 channel, got {image2d!r}")
        name = image2d.name
        src = image2d.data[..., 0]
    else:
        src = image2d if hasattr(image2d, "shape") and hasattr(image2d, "dtype") else \
            np.asarray(image2d)
    if len(src.shape) != 2:
        raise ValueError(f"image2d must be 2-D (y, x), got shape {tuple(src.shape)}")
    if np.dtype(src.dtype).kind not in "biuf":
        raise TypeError(f"image2d must hold real numbers, got dtype {src.dtype}")
    window = check_int(window, "window", 2)
    step = check_int(step, "step", 1)
    ny, nx = (int(n) for n in src.shape)
    if window > min(ny, nx):
        raise ValueError(f"window must be <= the smaller image side {min(ny, nx)} (image shape "
                         f"{(ny, nx)}), got {window}")
    if window_fn is not None:
        window_fn = check_choice(window_fn, "window_fn", WINDOWS)
    if not isinstance(log, (bool, np.bool_)):
        raise TypeError(f"log must be True or False, got {log!r}")
    if not isinstance(subtract_mean, (bool, np.bool_)):
        raise TypeError(f"subtract_mean must be True or False, got {subtract_mean!r}")
    try:
        out_dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if out_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {out_dtype}")

    taper = None
    if window_fn is not None:
        w1 = get_window(window_fn, window)  # periodic (DFT-even)
        taper = np.outer(w1, w1).astype(out_dtype)
    nwy = (ny - window) // step + 1
    nwx = (nx - window) // step + 1
    out = np.empty((nwy, nwx, window * window), dtype=out_dtype)
    for iy in range(nwy):
        y0 = iy * step
        band = np.asarray(src[y0:y0 + window], dtype=out_dtype)  # (window, nx)
        views = np.lib.stride_tricks.sliding_window_view(band, window, axis=1)[:, ::step]
        blocks = np.ascontiguousarray(views.transpose(1, 0, 2))  # (nwx, window, window)
        if subtract_mean:
            blocks -= blocks.mean(axis=(1, 2), keepdims=True)
        if taper is not None:
            blocks *= taper
        mag = np.abs(scipy.fft.fft2(blocks, axes=(1, 2)))
        mag = scipy.fft.fftshift(mag, axes=(1, 2))
        if log:
            np.log1p(mag, out=mag)
        out[iy] = mag.reshape(nwx, -1)

    centre = (window - 1) / 2
    meta = {
        "sliding_fft": {
            "window": window, "step": step, "window_fn": window_fn, "log": bool(log),
            "subtract_mean": bool(subtract_mean), "image_shape": (ny, nx),
            "positions_y": np.arange(nwy) * step, "positions_x": np.arange(nwx) * step,
            "frequencies": np.fft.fftshift(np.fft.fftfreq(window)),
        },
        "spatial_axes": [{"name": "y", "units": "px", "offset": centre, "scale": float(step)},
                         {"name": "x", "units": "px", "offset": centre, "scale": float(step)}],
    }
    return SpectralImage(out, channels=np.arange(window * window, dtype=float),
                         channel_unit="", name=f"{name} sliding FFT".strip(), metadata=meta)


# ---------------------------------------------------------------------------
# Noise level, and the weights it sets
# ---------------------------------------------------------------------------

#: ``smooth_W="auto"`` in :func:`unmix.nmf` is ``AUTO_SMOOTH_W * sigma²``, with
#: ``sigma²`` the noise variance per entry (:func:`noise_variance`). For
#: abundances on the simplex (``sum_to_one=True``),
#: ``1/(2 sigma²) ||X - WH||² + 1/(2 tau²) Σ_edges ||w_i - w_j||²`` is the
#: negative log-posterior of Gaussian noise of variance ``sigma²`` and Gaussian
#: abundance steps of size ``tau`` between neighbouring pixels; times
#: ``sigma²`` it is ``½ ||X - WH||² + ½ smooth_W tr(Wᵀ L W)`` with
#: ``smooth_W = sigma² / tau²``. The strength ``1 / tau²`` is dimensionless
#: (abundances are fractions), so it does not depend on the data's units,
#: scale or SNR; the noise variance does, and sets the weight. 30 (``tau`` ≈
#: 0.18 on ``unmix.graphs.grid(shape, 8)``) held over 2 abundance maps × 2
#: SNRs × 3 noise seeds × 3 starts of the synthetic USGS mixtures when it was
#: set (the sweep script has since given way to ``bench/real_data.py``).
AUTO_SMOOTH_W = 30.0

# noise_variance takes the eigenvalues of the Gram matrix of the smaller side
# of X up to this size (n * size² flops); past it, Lanczos on its products.
_GRAM_MAX = 512


def noise_variance(X: Any, n_components: int) -> float:
    r"""The noise variance per entry of X: what its best rank-k approximation
    leaves, per degree of freedom.

    .. math::

        \hat\sigma^2 = \frac{\|X - X_k\|_F^2}{(N - k)(C - k)}
                     = \frac{\|X\|_F^2 - \sum_{i \le k} s_i^2}{(N - k)(C - k)}

    with :math:`X_k` the truncated SVD of rank :math:`k` = ``n_components``,
    :math:`s_i` the singular values, :math:`N` the samples (pixels) and
    :math:`C` the features (channels). For a rank-k signal plus white noise
    of variance :math:`\sigma^2`, the residual is noise in
    :math:`(N - k)(C - k)` dimensions (``N C`` entries less the
    :math:`k(N + C - k)` parameters of a rank-k matrix), so the estimate is
    :math:`\sigma^2` up to a relative error of about
    :math:`\sqrt{2 / (N C)}`; noise that is not white (Poisson counts) gives
    its mean variance. A signal of rank above k counts as noise: give the
    number of components the data hold.

    Parameters
    ----------
    X : array-like, scipy.sparse matrix or SpectralImage
        The data, (n_samples, n_features); an image stands for its
        (pixels × channels) matrix :attr:`SpectralImage.X`.
    n_components : int
        k, with ``1 <= k < min(n_samples, n_features)``.

    Returns
    -------
    float
        :math:`\hat\sigma^2 \ge 0` (0 for data of rank k or less; rounding
        never makes it negative).

    Notes
    -----
    The squared singular values are the eigenvalues of the Gram matrix of
    the smaller side of X, formed in float64 over row blocks (no copy of X)
    when that side has at most 512 entries; otherwise its k largest are
    found by block subspace iteration on products with X
    (:func:`unmix.noise.top_eigenvalues`). Sparse X is used as it is.
    """
    M = matrix(X.X if isinstance(X, SpectralImage) else X, "X", sparse=True)
    n, p = M.shape
    k = check_int(n_components, "n_components", 1, min(n, p) - 1)
    # YᵀY is the Gram matrix of the smaller side; its eigenvalues are the s_i².
    Y = M.T if p > n else M
    m = Y.shape[1]

    def blocks() -> Any:
        if sp.issparse(Y):
            yield Y.astype(np.float64)
            return
        step = block_step(m)
        for i in range(0, Y.shape[0], step):
            yield np.asarray(Y[i:i + step], dtype=np.float64)

    if m <= _GRAM_MAX:
        G = np.zeros((m, m))
        for B in blocks():
            G += B.T @ B
        total, top = float(np.trace(G)), float(np.linalg.eigvalsh(G)[-k:].sum())
    else:
        from .noise import top_eigenvalues

        total = sum(float(np.sum((B.data if sp.issparse(B) else B) ** 2)) for B in blocks())
        # The same eigenvalues from either side: iterate on M's own rows.
        top = float(top_eigenvalues(M, k, total).sum())
    return max(total - top, 0.0) / ((n - k) * (p - k))
