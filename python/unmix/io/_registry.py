"""The one table from a file extension to the reader of its format.

A format is one module of this package that calls :func:`register` when it
is imported (and is imported by the package's ``__init__``): nothing else
needs to know about it. A reader is called as ``reader(path, dataset,
partial)`` — ``partial`` asks for a view (memory map, lazy dataset, dask
array) because only a part, or nothing yet, will be read — and returns a
:class:`~unmix.io._common._Raw`, which :func:`unmix.io.read` finishes the same
way for every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ._common import _Raw

Reader = Callable[[Path, Any, bool], _Raw]


@dataclass(frozen=True)
class Format:
    """A registered format: its name (for messages), extensions, reader, and
    the optional package it needs (``""``: none beyond unmix's own)."""

    name: str
    extensions: tuple[str, ...]
    reader: Reader
    needs: str = ""


_FORMATS: dict[str, Format] = {}  # extension (lower case, with the dot) -> format


def register(name: str, extensions: tuple[str, ...], reader: Reader, *, needs: str = "") -> None:
    """Makes :func:`unmix.io.read` read files with these extensions by ``reader``."""
    for ext in extensions:
        if not (isinstance(ext, str) and ext.startswith(".") and ext == ext.lower()):
            raise ValueError(f"extensions must be lower-case strings starting with '.', got "
                             f"{ext!r}")
        if ext in _FORMATS:
            raise ValueError(f"extension {ext!r} is already read as {_FORMATS[ext].name}")
    fmt = Format(name, tuple(extensions), reader, needs)
    for ext in extensions:
        _FORMATS[ext] = fmt


def format_of(suffix: str) -> Optional[Format]:
    """The format reading files ending in ``suffix`` (case ignored), or None."""
    return _FORMATS.get(suffix.lower())


def extensions() -> tuple[str, ...]:
    """Every registered extension, in the order registered."""
    return tuple(_FORMATS)


def formats() -> list[Format]:
    """The registered formats, each once, in the order registered."""
    seen: dict[str, Format] = {}
    for fmt in _FORMATS.values():
        seen.setdefault(fmt.name, fmt)
    return list(seen.values())
