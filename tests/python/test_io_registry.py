"""unmix.io is a package of one module per format behind one registry: a
format is found by its extension, a new one is one registration, and a file
of no known format gets a message naming the ones that are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import unmix.io as uio
from unmix.io import _registry
from unmix.io._common import _Raw


def test_the_package_and_its_public_names():
    assert Path(uio.__file__).name == "__init__.py" and Path(uio.__file__).parent.name == "io"
    assert set(uio.__all__) == {"LazyArray", "SUPPORTED_EXTENSIONS", "VENDOR_FORMATS",
                                "from_hyperspy", "read", "save_hyperspy", "save_npz",
                                "to_hyperspy"}
    for name in uio.__all__:
        assert getattr(uio, name) is not None


def test_every_supported_extension_has_one_reader():
    assert uio.SUPPORTED_EXTENSIONS == _registry.extensions()
    assert len(set(uio.SUPPORTED_EXTENSIONS)) == len(uio.SUPPORTED_EXTENSIONS)
    for ext in uio.SUPPORTED_EXTENSIONS:
        assert _registry.format_of(ext.upper()) is _registry.format_of(ext) is not None
    assert {".npy", ".npz", ".h5", ".hspy", ".tif", ".mat", ".bcf", ".3ds"} <= set(
        uio.SUPPORTED_EXTENSIONS)
    assert set(uio.VENDOR_FORMATS) <= set(uio.SUPPORTED_EXTENSIONS)


@pytest.fixture
def registered():
    """A format registered for the test, taken out again after it."""
    added = []

    def add(name, extensions, reader):
        _registry.register(name, extensions, reader)
        added.extend(extensions)

    yield add
    for ext in added:
        _registry._FORMATS.pop(ext, None)


def test_a_new_format_is_one_registration(tmp_path, registered):
    def read_lines(path, dataset, partial):  # rows of numbers, one spectrum per line
        rows = np.loadtxt(path, ndmin=2)
        return _Raw(rows, True, "lines", name=path.stem, metadata={"dataset": dataset})

    registered("spectra as lines", (".lines",), read_lines)
    path = tmp_path / "two.lines"
    path.write_text("1 2 3\n4 5 6\n")
    image = uio.read(path, crop=(None, (1, 3)))
    np.testing.assert_array_equal(image.data, [[2.0, 3.0], [5.0, 6.0]])
    assert image.metadata["format"] == "lines"
    with pytest.raises(ValueError, match=r"'\.lines' is already read as spectra as lines"):
        _registry.register("again", (".lines",), read_lines)
    with pytest.raises(ValueError, match=r"lower-case strings starting with '\.'"):
        _registry.register("bad", ("LINES",), read_lines)


@pytest.mark.parametrize("name, says", [
    ("data.xyz", "unknown extension '.xyz'"),
    ("table.csv", "unknown extension '.csv' — it looks like a text table: load it with "
                  "numpy.loadtxt"),
    ("spectra.txt", "it looks like a text table"),
    ("photo.png", "it looks like a picture"),
    ("noextension", "no extension to tell its format by"),
])
def test_unknown_formats_name_the_formats_read(tmp_path, name, says):
    path = tmp_path / name
    path.write_text("1,2,3\n")
    with pytest.raises(ValueError) as err:
        uio.read(path)
    message = str(err.value)
    assert message.startswith(repr(str(path)) + ": ") and says in message
    for fmt in _registry.formats():
        assert f"{fmt.name} ({' '.join(fmt.extensions)})" in message
