"""A spectral image: data of shape (*spatial, channels) with its channel axis."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class SpectralImage:
    """Data of shape ``(*spatial, channels)`` — a line scan (1 spatial axis),
    a map (2) or a volume (3) — plus what the channels are.

    The array is kept as given (no copy); ``X`` is the (pixels × channels)
    matrix view that :func:`unmix.nmf` factors, a view too whenever the
    array's memory allows it (C-contiguous data always does).

    Attributes
    ----------
    data : ndarray, shape (*spatial, channels)
    channels : ndarray, shape (channels,)
        The channel axis values (mass, energy, wavenumber, bias …);
        ``arange(channels)`` when not given.
    channel_unit : str
        Unit of ``channels`` ("m/z", "eV", "cm⁻¹", "V", "" …).
    name : str
    metadata : dict
        Free-form; readers put the source file and its attributes here.
    """

    data: Any
    channels: np.ndarray = field(default=None)  # type: ignore[assignment]
    channel_unit: str = ""
    name: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            data = np.asarray(data)
            object.__setattr__(self, "data", data)
        if len(data.shape) < 2:
            raise ValueError(
                "data must have shape (*spatial, channels) with at least one spatial axis, "
                f"got shape {tuple(data.shape)}")
        n = data.shape[-1]
        if self.channels is None:
            object.__setattr__(self, "channels", np.arange(n, dtype=float))
        else:
            axis = np.asarray(self.channels)
            if axis.shape != (n,):
                raise ValueError(f"channels must have shape ({n},) to match the data's last "
                                 f"axis, got {axis.shape}")
            object.__setattr__(self, "channels", axis)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:-1])

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.spatial_shape))

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[-1])

    @property
    def X(self) -> np.ndarray:
        """The (pixels × channels) matrix, pixels in C order of the spatial
        axes; a view of ``data`` when its memory allows (reshape semantics)."""
        return np.asarray(self.data).reshape(self.n_pixels, self.n_channels)

    def maps(self, values: np.ndarray) -> np.ndarray:
        """Per-pixel values (pixels, …) reshaped to (*spatial, …)."""
        values = np.asarray(values)
        return values.reshape(self.spatial_shape + values.shape[1:])

    def with_data(self, data: Any, channels: Optional[np.ndarray] = None,
                  **changes: Any) -> "SpectralImage":
        """A new image sharing this one's description, for a preprocessing
        step's output."""
        return replace(self, data=data,
                       channels=self.channels if channels is None else channels, **changes)

    @classmethod
    def from_matrix(cls, X: Any, spatial_shape: tuple[int, ...], **kw: Any) -> "SpectralImage":
        """An image from a (pixels × channels) matrix and the spatial shape."""
        X = np.asarray(X)
        return cls(X.reshape(tuple(spatial_shape) + (X.shape[-1],)), **kw)

    def __repr__(self) -> str:
        unit = f" [{self.channel_unit}]" if self.channel_unit else ""
        return (f"SpectralImage({self.name!r}, spatial {self.spatial_shape}, "
                f"{self.n_channels} channels{unit}, {self.data.dtype})")


def described(image: SpectralImage, what: str = "image") -> str:
    """``what``, and the file (and the dataset in it) that :func:`unmix.io.read`
    read the image from, for messages: "image read from 'scan.h5' (dataset
    '/data/cube')"."""
    source = image.metadata.get("source")
    if not source:
        return what
    dataset = image.metadata.get("dataset")
    return f"{what} read from {str(source)!r}" + (f" (dataset {dataset!r})" if dataset is not None
                                                 else "")
