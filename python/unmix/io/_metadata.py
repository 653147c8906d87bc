"""What a file says about the sample and the instrument, in the plain form
every reader gives it (``metadata["elements"]`` ...): the contract the
figures and the user rely on, whatever the format.

Keys, each present only when the file has it:

``elements``
    list of str, element symbols (``["Fe", "Pt"]``)
``xray_lines``
    list of str, X-ray lines (``["Fe_Ka", "Pt_La"]``)
``signal_type``
    str, HyperSpy's signal type (``"EDS_SEM"``, ``"EDS_TEM"``, ``"EELS"`` …)
``beam_energy``
    float, the beam energy in keV
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from ._common import _text

#: The keys :func:`sample_metadata` may fill.
KEYS = ("elements", "xray_lines", "signal_type", "beam_energy")

# HyperSpy keeps the beam energy under the microscope's kind.
_INSTRUMENTS = ("TEM", "SEM")


def sample_metadata(tree: Any) -> dict:
    """The :data:`KEYS` found in a HyperSpy-style metadata tree (nested
    mappings ``Sample.elements``, ``Sample.xray_lines``,
    ``Signal.signal_type``, ``Acquisition_instrument.<SEM|TEM>.beam_energy``),
    as plain Python values."""
    out: dict = {}
    if not isinstance(tree, Mapping):
        return out
    sample = tree.get("Sample")
    if isinstance(sample, Mapping):
        for key in ("elements", "xray_lines"):
            names = _names(sample.get(key))
            if names:
                out[key] = names
    signal = tree.get("Signal")
    if isinstance(signal, Mapping):
        kind = _text(signal.get("signal_type", "") or "")
        if kind:
            out["signal_type"] = kind
    instrument = tree.get("Acquisition_instrument")
    if isinstance(instrument, Mapping):
        for kind in _INSTRUMENTS:
            energy = _number(instrument.get(kind, {}).get("beam_energy")
                             if isinstance(instrument.get(kind), Mapping) else None)
            if energy is not None:
                out["beam_energy"] = energy
                break
    return out


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    try:
        items = list(np.asarray(value, dtype=object).reshape(-1))
    except (TypeError, ValueError):
        return []
    return [t for t in (_text(v).strip() for v in items) if t]


def _number(value: Any) -> Optional[float]:
    try:
        v = float(np.asarray(value).reshape(-1)[0]) if np.size(value) == 1 else None
    except (TypeError, ValueError):
        return None
    return v if v is not None and np.isfinite(v) else None


def h5_tree(group: Any, depth: int = 4) -> dict:
    """A HyperSpy metadata group of an HDF5 file as nested dicts: attributes
    and small datasets, HyperSpy's ``_list_<name>`` datasets as lists under
    ``<name>``; deeper than ``depth`` groups is left out (nothing here needs
    it)."""
    import h5py

    out: dict = {}
    for k, v in group.attrs.items():
        out[k.removeprefix("_list_")] = v
    for k, obj in group.items():
        if isinstance(obj, h5py.Group):
            if depth > 0 and not k.startswith("_list_"):
                out[k] = h5_tree(obj, depth - 1)
        elif obj.size <= 4096:  # lists of names; never a data array
            out[k.removeprefix("_list_")] = obj[()]
    return out
