"""Element markers on spectra: X-ray lines (EDS) and ionization edges
(EELS) from eXSpy's elements database.

eXSpy is an optional dependency (``pip install unmix[eds]``). Without it
spectra carry no markers and :func:`database_missing` gives the hint the
reports show; nothing fails.

Which elements: those the user names (``elements=``, ``lines=``), else
those of the file (``image.metadata["elements"]`` / ``["xray_lines"]``,
filled by :func:`unmix.io.read`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

__all__ = ["Marker", "database_missing", "markers", "requested"]

#: The X-ray lines drawn for an element given by symbol: the strongest line
#: of each shell (more, such as K beta, crowd the labels; ask for them with
#: ``lines=["Fe_Kb"]``).
MAIN_LINES = ("Ka", "La", "Ma")

#: The EELS edges drawn: those the database calls major.
_EDGE_RELEVANCE = "Major"

_GREEK = {"a": "α", "b": "β", "g": "γ", "n": "η", "l": "ℓ", "z": "ζ"}

_INSTALL_HINT = "element markers need eXSpy: pip install exspy (or unmix[eds])"


@dataclass(frozen=True)
class Marker:
    """A line or edge of ``element`` at ``position`` (in the spectrum's
    channel unit), with its label ("Fe Kα", "Fe L3")."""

    element: str
    name: str
    position: float
    label: str


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """HyperSpy logs at import ("Numba is not installed") through a handler
    it installs during that import, so no handler set beforehand can catch
    it: logging is switched off below errors for the import's time. The
    library never prints, and tests turn the deprecation warnings of the
    import into errors."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@functools.lru_cache(maxsize=1)
def _database() -> Optional[dict]:
    """eXSpy's elements database as a plain dict, or None without eXSpy.

    The table is read from its own module (``exspy/_misc/elements.py``,
    which needs only a small part of HyperSpy) without running eXSpy's
    package import: that imports all of HyperSpy and pyplot (2 s, 2000
    modules, and pyplot's global state in a library that avoids it). Where
    the file has moved, the public ``exspy.material.elements``."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("exspy")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        path = Path(folder) / "_misc" / "elements.py"
        if path.is_file():
            try:
                with _quiet():
                    source = importlib.util.spec_from_file_location("unmix._exspy_elements",
                                                                    path)
                    module = importlib.util.module_from_spec(source)
                    source.loader.exec_module(module)  # type: ignore[union-attr]
                table = module.elements
                return table if isinstance(table, dict) else table.as_dictionary()
            except Exception:  # a changed layout: the public way below
                break
    try:
        with _quiet():
            from exspy.material import elements
    except ImportError:
        return None
    return elements.as_dictionary()


def database_missing() -> Optional[str]:
    """None when the line database is there, else what to install."""
    return None if _database() is not None else _INSTALL_HINT


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of str, a comma-separated str or None, "
                        f"got {value!r}")
    return list(value)


def requested(metadata: Any, elements: Any = None, lines: Any = None
              ) -> tuple[list[str], list[str]]:
    """The elements and lines to mark: those given, else the metadata's."""
    elements = _names(elements, "elements")
    lines = _names(lines, "lines")
    if not elements and not lines and isinstance(metadata, dict):
        elements = _from_file(metadata.get("elements"))
        lines = _from_file(metadata.get("xray_lines"))
    return elements, lines


def _from_file(value: Any) -> list[str]:
    """Names from metadata, which a figure takes as it comes: an array of
    str, a str, or nothing usable (no markers rather than no figure)."""
    if isinstance(value, np.ndarray):
        value = [str(v) for v in value.reshape(-1)]
    try:
        return _names(value, "metadata")
    except TypeError:
        return []


def _label(element: str, line: str) -> str:
    shell, rest = line[:1], line[1:]
    greek = _GREEK.get(rest[:1], rest[:1]) + rest[1:] if rest else ""
    return f"{element} {shell}{greek}"


def signal_kind(metadata: Any, unit: str) -> Optional[str]:
    """"eds", "eels" or None: what the spectrum's markers are."""
    kind = str(metadata.get("signal_type", "") if isinstance(metadata, dict) else "").upper()
    if "EELS" in kind:
        return "eels" if unit == "eV" else None
    if unit in ("keV", "eV"):
        return "eds"  # X-ray energies: the EDS lines, whatever the file's type says
    return None


def markers(metadata: Any, channel_unit: str, channels: np.ndarray, *,
            elements: Any = None, lines: Any = None) -> list[Marker]:
    """The markers within the range of ``channels``: the :data:`MAIN_LINES`
    of each element (the major edges for EELS) and every line named in
    ``lines`` ("Fe_Ka"), X-ray lines only below the beam energy
    (``metadata["beam_energy"]``, keV) when known. Empty when there is
    nothing to mark, no database, or the channels are not energies."""
    elements, named = requested(metadata, elements, lines)
    kind = signal_kind(metadata, channel_unit)
    db = _database() if (elements or named) and kind else None
    if db is None:
        return []
    channels = np.asarray(channels, dtype=np.float64)
    lo, hi = float(np.nanmin(channels)), float(np.nanmax(channels))
    to_unit = 1.0 if channel_unit == "keV" else 1000.0
    beam = metadata.get("beam_energy") if isinstance(metadata, dict) else None
    try:
        beam = float(beam) if beam is not None else None
    except (TypeError, ValueError):
        beam = None
    out: dict[tuple[str, str], Marker] = {}
    if kind == "eels":
        for element in elements:
            edges = db.get(element, {}).get("Atomic_properties", {}).get("Binding_energies", {})
            for name, edge in edges.items():
                energy = edge.get("onset_energy (eV)")
                if edge.get("relevance") == _EDGE_RELEVANCE and energy and lo <= energy <= hi:
                    out[(element, name)] = Marker(element, name, float(energy),
                                                  f"{element} {name}")
        return sorted(out.values(), key=lambda m: m.position)
    wanted = [(e, line) for e in elements for line in MAIN_LINES]
    for entry in named:
        element, _, line = entry.partition("_")
        wanted.append((element, line))
    for element, line in wanted:
        data = (db.get(element, {}).get("Atomic_properties", {}).get("Xray_lines", {})
                .get(line))
        if not data:
            continue
        energy = float(data["energy (keV)"])
        if beam is not None and energy >= beam:
            continue
        position = energy * to_unit
        if lo <= position <= hi:
            out[(element, line)] = Marker(element, line, position, _label(element, line))
    return sorted(out.values(), key=lambda m: m.position)


def unknown_elements(elements: Sequence[str]) -> list[str]:
    """The symbols the database does not know (a typo in ``--elements``)."""
    db = _database()
    return [] if db is None else [e for e in elements if e not in db]


def draw(ax: Any, found: Sequence[Marker], *, size_px: tuple[float, float],
         fontsize: float = 7.5, max_rows: int = 4) -> float:
    """Marks ``found`` on ``ax``: a dotted vertical line at each position
    and its label in rows at the top, a label going to the next row down
    where it would overlap one already placed; labels of lines too close to
    tell apart are joined ("Ag Lα/Cu Lα"). ``size_px`` is the axes' (width,
    height) in pixels, estimated by the caller (the layout is not done
    yet). Returns the fraction of the axes' height the labels take, for
    the caller's y-limit."""
    if not found:
        return 0.0
    x0, x1 = ax.get_xlim()
    span = (x1 - x0) or 1.0
    width_px, height_px = (max(float(v), 1.0) for v in size_px)
    em = fontsize * ax.figure.dpi / 72.0
    char = 0.65 * em / width_px  # a character's width in axes fractions
    gap = 0.5 * char
    groups: list[list[Marker]] = []
    for m in found:
        # Lines a few pixels apart draw as one stroke: one label for both.
        if groups and (m.position - groups[-1][0].position) / span < 0.6 * char:
            groups[-1].append(m)
        else:
            groups.append([m])
    ends: list[float] = []  # per row, where its last label ends (axes fraction)
    placed = []
    for group in groups:
        label = "/".join(m.label if i == 0 or m.element != group[i - 1].element
                         else m.label.split(" ", 1)[1] for i, m in enumerate(group))
        width = len(label) * char
        centre = (float(np.mean([m.position for m in group])) - x0) / span
        # Kept inside the axes: a label at the edge would be cut.
        wanted = min(max(centre - 0.5 * width, 0.0), max(1.0 - width, 0.0))
        starts = [max(wanted, end + gap) for end in ends]
        row = next((r for r, start in enumerate(starts) if start == wanted), None)
        if row is None and len(ends) < max_rows:
            row = len(ends)
            ends.append(-1.0)
            starts.append(wanted)
        if row is None:
            # Every row taken here: the one where the label moves least
            # off its line, moved right of the label before it.
            row = int(np.argmin(starts))
        ends[row] = starts[row] + width
        placed.append((group, label, starts[row] + 0.5 * width, row))
    step = 1.3 * em / height_px
    top = 0.99
    for group, label, centre, row in placed:
        y = top - row * step
        for m in group:
            ax.axvline(m.position, ymax=y - step, color="0.45", lw=0.7, ls=":", zorder=0)
        ax.text(centre, y, label, transform=ax.transAxes, ha="center", va="top",
                fontsize=fontsize, color="0.2", gid="element-marker")
    return 1.0 - top + len(ends) * step
