"""What readers say about the sample (the metadata contract: elements,
xray_lines, signal_type, beam_energy as plain Python values), and that
third-party readers' log messages are kept, not printed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from unmix import SpectralImage, cli
from unmix import io as uio
from unmix.io._logs import captured

REAL = Path(os.environ.get("UNMIX_DATA") or Path(__file__).resolve().parents[2].parent
            / "shared" / "data") / "real"
ESPM = REAL / "espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy"
SILICATE = REAL / "bruker_30x30_SEM-EDS_silicate.bcf"
ALAGCU = REAL / "bruker_50x50_SEM-EDS_AlAgCu.bcf"
RAMAN = REAL / "renishaw_streamline_Raman_45x49x394.wdf"


def needs(path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not found (set UNMIX_DATA)")


def assert_plain(metadata):
    """The contract's values are builtins, never numpy objects."""
    for key in ("elements", "xray_lines"):
        if key in metadata:
            assert type(metadata[key]) is list
            assert all(type(v) is str for v in metadata[key])
    if "signal_type" in metadata:
        assert type(metadata["signal_type"]) is str and metadata["signal_type"]
    if "beam_energy" in metadata:
        assert type(metadata["beam_energy"]) is float


@needs(ESPM)
def test_hspy_file_read_with_h5py_has_the_sample():
    image = uio.read(ESPM)
    md = image.metadata
    assert md["format"] == "hspy"
    assert {"Mg", "Al", "Si", "Ca", "Fe", "O"} <= set(md["elements"])
    assert "Fe_Ka" in md["xray_lines"] and len(md["xray_lines"]) == len(md["elements"])
    assert md["signal_type"] == "EDS_TEM"
    assert md["beam_energy"] == 200.0
    assert_plain(md)


@needs(SILICATE)
def test_bruker_silicate():
    md = uio.read(SILICATE).metadata
    assert {"O", "Mg", "Al", "Si", "K", "Ca", "Ti", "Fe"} <= set(md["elements"])
    assert "Si_Ka" in md["xray_lines"]
    assert md["signal_type"] == "EDS_SEM" and md["beam_energy"] == 20.0
    assert_plain(md)


@needs(ALAGCU)
def test_bruker_alagcu():
    md = uio.read(ALAGCU).metadata
    assert md["elements"] == ["Ag", "Al", "C", "Cu", "O"]
    assert md["xray_lines"] == ["Ag_La", "Al_Ka", "C_Ka", "Cu_Ka", "O_Ka"]
    assert md["signal_type"] == "EDS_SEM" and md["beam_energy"] == 20.0
    assert_plain(md)


@needs(RAMAN)
def test_raman_has_no_sample_and_its_reader_warning_is_kept_not_printed(capfd):
    md = uio.read(RAMAN).metadata
    assert not {"elements", "xray_lines", "signal_type", "beam_energy"} & set(md)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("lumispy" in m for m in md["reader_log"])


@needs(RAMAN)
def test_quiet_run_prints_no_reader_warning(tmp_path, capfd):
    assert cli.main(["run", str(RAMAN), "-k", "2", "-o", str(tmp_path / "out"), "-q",
                     "--max-iter", "5", "--crop", "0:8,0:8"]) == 0
    out, err = capfd.readouterr()
    assert "WARNING" not in out + err and "lumispy" not in out + err
    assert out.startswith("unmix run: ")


def test_captured_takes_third_party_warnings_and_restores_the_loggers(capfd):
    logger = logging.getLogger("rsciio")
    before = (logger.handlers[:], logger.propagate)
    with captured() as log:
        logging.getLogger("rsciio.some_reader").warning("something %s", "odd")
        logging.getLogger("hyperspy.io").info("not a warning")
    assert log == ["rsciio.some_reader: something odd"]
    assert (logger.handlers, logger.propagate) == before
    assert capfd.readouterr() == ("", "")


@pytest.fixture
def eds_signal():
    hs = pytest.importorskip("hyperspy.api")
    rng = np.random.default_rng(0)
    s = hs.signals.Signal1D(rng.poisson(3.0, (4, 5, 30)))
    s.metadata.set_item("Sample.elements", ["Fe", "Pt"])
    s.metadata.set_item("Sample.xray_lines", ["Fe_Ka", "Pt_La"])
    s.metadata.set_item("Signal.signal_type", "EDS_SEM")
    s.metadata.set_item("Acquisition_instrument.SEM.beam_energy", 15)
    s.metadata.General.title = "FePt"
    return s


def test_hspy_written_by_hyperspy(tmp_path, eds_signal):
    path = tmp_path / "fept.hspy"
    eds_signal.save(path)
    md = uio.read(path).metadata
    assert md["elements"] == ["Fe", "Pt"] and md["xray_lines"] == ["Fe_Ka", "Pt_La"]
    assert md["signal_type"] == "EDS_SEM" and md["beam_energy"] == 15.0
    assert_plain(md)


def test_from_and_to_hyperspy_carry_the_sample(eds_signal):
    image = uio.from_hyperspy(eds_signal)
    assert image.metadata["elements"] == ["Fe", "Pt"]
    assert image.metadata["beam_energy"] == 15.0 and image.metadata["signal_type"] == "EDS_SEM"
    assert_plain(image.metadata)
    back = uio.to_hyperspy(image)
    assert back.metadata.get_item("Sample.xray_lines") == ["Fe_Ka", "Pt_La"]
    assert back.metadata.get_item("Acquisition_instrument.SEM.beam_energy") == 15.0
    # a signal without any: no keys at all (not empty values)
    plain = uio.from_hyperspy(uio.to_hyperspy(SpectralImage(np.ones((2, 3, 4)))))
    assert not {"elements", "xray_lines", "signal_type", "beam_energy"} & set(plain.metadata)
