"""HyperSpy: signals to and from :class:`~unmix.SpectralImage`, and an
unmixing written as a HyperSpy file with its decomposition attached."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..image import SpectralImage
from ._common import PathLike, _text
from ._lazy import LazyArray
from ._logs import captured
from ._metadata import sample_metadata


def from_hyperspy(signal: Any) -> SpectralImage:
    """A :class:`~unmix.SpectralImage` sharing a HyperSpy ``Signal1D``'s data.

    The navigation axes become the spatial axes and the signal axis the
    channels (values, units; its name goes to ``metadata["channel_name"]``).
    ``signal.data`` is used without a copy (a lazy signal's dask array stays
    lazy); a signal without navigation axes (one spectrum) becomes a
    one-pixel image.

    Parameters
    ----------
    signal : hyperspy.signals.Signal1D
        Or any HyperSpy signal with one signal axis.

    Returns
    -------
    SpectralImage
        Shape ``(*navigation in array order, channels)``; ``metadata``
        has ``"spatial_axes"`` (name, units, offset, scale) and, when the
        signal's metadata has them, ``"signal_type"``, ``"elements"``,
        ``"xray_lines"`` and ``"beam_energy"`` (keV).
    """
    am = getattr(signal, "axes_manager", None)
    if am is None or not hasattr(signal, "data"):
        raise TypeError(f"signal must be a HyperSpy signal, got {type(signal).__name__}")
    if am.signal_dimension != 1:
        raise ValueError("signal must have exactly one signal axis (a Signal1D: spectra on a "
                         f"navigation grid), got {am.signal_dimension} signal axes; use "
                         "signal.as_signal1D(axis) first")
    sig = am.signal_axes[0]
    data = signal.data
    src = sig.index_in_array
    if src != data.ndim - 1:
        data = np.moveaxis(data, src, -1)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    nav = sorted(am.navigation_axes, key=lambda a: a.index_in_array)
    spatial = [_hs_axis(a) for a in nav] or [{"name": "", "units": ""}]
    metadata = {"source": "hyperspy", "spatial_axes": spatial,
                **sample_metadata(signal.metadata.as_dictionary())}
    name = _text(sig.name) if sig.name is not None else ""
    if name:
        metadata["channel_name"] = name
    title = str(signal.metadata.get_item("General.title", "") or "")
    units = _text(sig.units) if sig.units is not None else ""
    return SpectralImage(data, channels=np.asarray(sig.axis, dtype=float), channel_unit=units,
                         name=title, metadata=metadata)


def _hs_axis(a: Any) -> dict:
    out = {"name": _text(a.name) if a.name is not None else "",
           "units": _text(a.units) if a.units is not None else ""}
    if hasattr(a, "scale") and hasattr(a, "offset") and getattr(a, "is_uniform", True):
        out["offset"], out["scale"] = float(a.offset), float(a.scale)
    else:
        out["values"] = np.asarray(a.axis, dtype=float)
    return out


def to_hyperspy(image: Any) -> Any:
    """A HyperSpy ``Signal1D`` sharing the image's data (no copy); for an
    :class:`~unmix.Unmixing`, the signal of its image with the
    decomposition attached.

    The channels become the signal axis (uniform offset/scale when evenly
    spaced, else a non-uniform axis), ``metadata["spatial_axes"]`` (as
    :func:`read` and :func:`from_hyperspy` set it) the navigation axes,
    ``name`` the title, and the image's ``signal_type``, ``elements``,
    ``xray_lines`` and ``beam_energy`` the signal's metadata. Dask data
    gives a lazy signal; a :class:`LazyArray` is read. Needs HyperSpy
    (``pip install hyperspy``).

    For an unmixing, ``signal.learning_results`` holds what
    :func:`save_hyperspy` writes (see there), so that
    ``get_decomposition_factors()``, ``get_decomposition_loadings()`` and
    ``plot_decomposition_results()`` show the endmembers and abundances.

    Parameters
    ----------
    image : SpectralImage or Unmixing
        What to convert.

    Returns
    -------
    hyperspy.signals.Signal1D
        Or a ``LazySignal1D`` for dask data.
    """
    from ..workflow import Unmixing

    unmixing = image if isinstance(image, Unmixing) else None
    if unmixing is not None:
        image = unmixing.image
    if not isinstance(image, SpectralImage):
        raise TypeError(f"image must be a SpectralImage or an Unmixing, got "
                        f"{type(image).__name__}")
    with captured():  # its import logs "Numba is not installed" and the like
        try:
            import hyperspy.api as hs
        except ImportError:
            raise ImportError("to_hyperspy needs HyperSpy: pip install hyperspy") from None
    data = image.data
    if isinstance(data, LazyArray):
        data = np.asarray(data)
    s = hs.signals.Signal1D(data, axes=_hs_axes(image))
    if hasattr(data, "dask"):  # a dask array (lazy RosettaSciIO read): a lazy signal
        s = s.as_lazy()
    s.metadata.add_dictionary(_hs_metadata(image))
    if unmixing is not None:
        for key, value in _learning_results(unmixing).items():
            setattr(s.learning_results, key, value)
    return s


def save_hyperspy(unmixing: Any, path: PathLike) -> Path:
    """Writes an unmixing as a HyperSpy file (``.hspy``, or ``.zspy`` when
    zarr is installed) that ``hyperspy.api.load`` opens with the
    decomposition attached.

    The signal is the unmixed image (``unmixing.image``: the data as
    fitted, after any crop or binning) with its calibrated axes and
    metadata (as :func:`to_hyperspy`); ``learning_results`` holds

    - ``factors``, shape (channels, k): the endmember spectra, and
      ``loadings``, shape (pixels, k): the abundances, pixels in C order
      of the image's spatial axes — scaled so that ``loadings @ factors.T``
      is the fitted model of the data (:meth:`unmix.Unmixing.unnormalized`;
      the fraction models' loadings are ``intensity * fractions / scales``);
    - ``decomposition_algorithm`` (``"unmix (<model>, <noise> noise)"``),
      ``output_dimension`` (k), ``poissonian_noise_normalized`` (False:
      unmix weights the counts itself) and HyperSpy's other fields.

    ``original_metadata.unmix`` keeps the fit's summary (version, model,
    noise, relative error, iterations) and the fractions' ``scales``.

    Written by RosettaSciIO's HyperSpy writers (HyperSpy itself reads
    through them), so HyperSpy need not be installed.

    Parameters
    ----------
    unmixing : Unmixing
        The result of :func:`unmix.unmix`.
    path : str or os.PathLike
        The file: ``.hspy`` (HDF5) or ``.zspy`` (a zarr folder); written
        whole or not at all (replacing an existing one).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from .._files import atomic_write
    from ..workflow import Unmixing

    if not isinstance(unmixing, Unmixing):
        raise TypeError(f"unmixing must be an Unmixing (what unmix.unmix returns), got "
                        f"{type(unmixing).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".hspy", ".zspy"):
        raise ValueError(f"path must end in .hspy or .zspy (HyperSpy's formats), got "
                         f"{str(path)!r}")
    try:
        module = "rsciio.hspy" if suffix == ".hspy" else "rsciio.zspy"
        writer = __import__(module, fromlist=["file_writer"]).file_writer
    except ImportError as err:
        if suffix == ".zspy" and getattr(err, "name", "") in ("zarr", "numcodecs"):
            raise ImportError(f"writing {str(path)!r} (.zspy) needs zarr: pip install zarr, "
                              "or write .hspy") from None
        raise ImportError(f"writing {str(path)!r} needs RosettaSciIO: pip install "
                          '"unmix[vendor]"') from None
    signal = _signal_dict(unmixing)

    def write(target: Path) -> None:
        with captured():
            writer(str(target), signal, show_progressbar=False)

    if suffix == ".hspy":
        return atomic_write(path, write)
    return _replace_folder(path, write)


def _replace_folder(path: Path, write: Any) -> Path:
    """``write`` into a new folder beside ``path``, then that folder in its place."""
    import secrets
    import shutil

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        if path.exists():
            old = tmp.with_name(tmp.name + ".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _hs_axes(image: SpectralImage) -> list[dict]:
    spatial = image.metadata.get("spatial_axes")
    if not isinstance(spatial, list) or len(spatial) != len(image.spatial_shape):
        spatial = [{} for _ in image.spatial_shape]
    axes = [_hs_axis_dict(a, size, navigate=True) for a, size in zip(spatial, image.spatial_shape)]
    axes.append(_hs_axis_dict({"name": image.metadata.get("channel_name", ""),
                               "units": image.channel_unit, "values": image.channels},
                              image.n_channels, navigate=False))
    return axes


def _hs_metadata(image: SpectralImage) -> dict:
    """HyperSpy's metadata tree from the image's name and sample metadata."""
    md = image.metadata
    tree: dict = {"General": {"title": image.name}}
    kind = str(md.get("signal_type") or "")
    if kind:
        tree["Signal"] = {"signal_type": kind}
    sample = {k: [str(v) for v in md[k]] for k in ("elements", "xray_lines") if md.get(k)}
    if sample:
        tree["Sample"] = sample
    if md.get("beam_energy") is not None:
        microscope = "SEM" if kind.endswith("SEM") else "TEM"
        tree["Acquisition_instrument"] = {microscope: {"beam_energy": float(md["beam_energy"])}}
    return tree


def _learning_results(u: Any) -> dict:
    W, H = u.unnormalized()
    model = u.params.get("model", "plain")
    noise = u.params.get("noise", "")
    return {
        "factors": np.ascontiguousarray(H.T), "loadings": np.ascontiguousarray(W),
        "explained_variance": None, "explained_variance_ratio": None,
        "number_significant_components": None,
        "decomposition_algorithm": f"unmix ({model}, {noise} noise)" if noise
        else f"unmix ({model})",
        "poissonian_noise_normalized": False, "output_dimension": int(u.n_components),
        "unfolded": False, "centre": None, "mean": None, "unmixing_matrix": None,
        "bss_algorithm": None, "original_shape": None,
    }


def _signal_dict(u: Any) -> dict:
    """The signal as RosettaSciIO's HyperSpy writers take it."""
    from .. import __version__

    image = u.image
    axes = []
    for ax in _hs_axes(image):
        ax = dict(ax, name=ax.get("name"), units=ax.get("units"), is_binned=False)
        ax["_type"] = "DataAxis" if "axis" in ax else "UniformDataAxis"
        ax.setdefault("size", len(ax["axis"]) if "axis" in ax else 1)
        axes.append(ax)
    metadata = _hs_metadata(image)
    metadata.setdefault("Signal", {}).setdefault("signal_type", "")
    r = u.result
    summary = {"version": __version__, "model": str(u.params.get("model", "plain")),
               "noise": str(u.params.get("noise", "")), "rel_error": float(u.rel_error),
               "n_iter": int(r.n_iter), "converged": bool(r.converged),
               "scales": np.asarray(u.scales, dtype=float)}
    return {
        "data": np.asarray(image.data), "axes": axes, "metadata": metadata,
        "original_metadata": {"unmix": summary}, "learning_results": _learning_results(u),
        "attributes": {"_lazy": False, "ragged": False}, "models": {},
        "tmp_parameters": {}, "package_info": {"package": "", "package_version": ""},
    }


def _hs_axis_dict(ax: dict, size: int, navigate: bool) -> dict:
    out: dict = {"size": size, "navigate": navigate}
    if ax.get("name"):
        out["name"] = ax["name"]
    if ax.get("units"):
        out["units"] = ax["units"]
    values = ax.get("values")
    if values is not None:
        values = np.asarray(values, dtype=float)
        step = np.diff(values)
        if size == 1 or (values.shape == (size,) and np.allclose(
                step, step[0], rtol=1e-9, atol=1e-12 * max(1.0, np.abs(values).max()))):
            out["offset"] = float(values[0])
            out["scale"] = float(step[0]) if size > 1 else 1.0
        elif values.shape == (size,):
            out["axis"] = values
            out.pop("size")
    elif "scale" in ax:
        out["offset"], out["scale"] = float(ax.get("offset", 0.0)), float(ax["scale"])
    return out


def save_hyperspy_beside(unmixing: Any, folder: Path) -> list[Path]:
    """``folder/unmixing.hspy`` by :func:`save_hyperspy` when RosettaSciIO is
    installed (it is optional: without it, nothing); for
    :func:`unmix.report.save`."""
    try:
        import rsciio.hspy  # noqa: F401
    except ImportError:
        return []
    return [save_hyperspy(unmixing, Path(folder) / "unmixing.hspy")]
