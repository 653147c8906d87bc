"""unmix.io reads Nanonis grid spectroscopy (.3ds): a file written here from
the format's description, and the real CITS grid when the data folder is there."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from unmix import cli
from unmix import io as uio

REAL = (Path(os.environ.get("UNMIX_DATA") or Path(__file__).resolve().parents[2].parent
             / "shared" / "data") / "real" / "nanonis_STS_grid_30x30x200.3ds")

CHANNELS = ["Current (A)", "LI Demod 1 X (A)", "LI Demod 1 Y (A)"]
PARAMS = ["Sweep Start", "Sweep End", "X (m)", "Y (m)"]


def write_3ds(path, values, *, start=-0.5, end=0.5, measured=None, angle=0.0,
              newline="\r\n"):
    """A .3ds file of ``values`` (ny, nx, channels, points): the header, then
    per grid point (x fastest) the parameters and each channel's sweep,
    big-endian float32; points after ``measured`` hold NaN."""
    ny, nx, nc, points = values.shape
    header = [f'Grid dim="{nx} x {ny}"',
              f"Grid settings=1.0E-7;2.0E-7;{4e-9 * nx:E};{3e-9 * ny:E};{angle:E}",
              'Sweep Signal="Bias (V)"',
              'Fixed parameters="Sweep Start;Sweep End"',
              'Experiment parameters="X (m);Y (m)"',
              f"# Parameters (4 byte)={len(PARAMS)}",
              f"Experiment size (bytes)={nc * points * 4}",
              f"Points={points}",
              'Channels="' + ";".join(CHANNELS[:nc]) + '"',
              "Experiment=Grid Spectroscopy", ":HEADER_END:"]
    records = []
    for i, v in enumerate(values.reshape(ny * nx, nc, points)):
        params = [start, end, 1e-9 * (i % nx), 1e-9 * (i // nx)]
        record = np.concatenate([params, v.reshape(-1)]).astype(">f4")
        if measured is not None and i >= measured:
            record[:] = np.nan
        records.append(record)
    path.write_bytes(newline.join(header).encode() + newline.encode()
                     + np.concatenate(records).astype(">f4").tobytes())
    return path


@pytest.fixture
def grid():
    rng = np.random.default_rng(3)
    return rng.random((4, 5, 3, 11)).astype(np.float32)


def test_default_is_the_didv_channel_with_the_bias_axis(tmp_path, grid):
    image = uio.read(write_3ds(tmp_path / "g.3ds", grid))
    np.testing.assert_array_equal(image.data, grid[:, :, 1, :])  # LI Demod 1 X
    assert image.data.dtype == np.float32 and image.data.dtype.isnative
    np.testing.assert_allclose(image.channels, np.linspace(-0.5, 0.5, 11), rtol=1e-6)
    assert image.channel_unit == "V" and image.metadata["channel_name"] == "Bias"
    assert image.metadata["dataset"] == "LI Demod 1 X (A)"
    assert "dI/dV" in image.metadata["channel_choice"]
    assert image.metadata["format"] == "nanonis"
    y, x = image.metadata["spatial_axes"]
    assert (y["units"], x["units"]) == ("nm", "nm")
    assert x["scale"] == pytest.approx(4.0) and y["scale"] == pytest.approx(3.0)


@pytest.mark.parametrize("name", ["Current (A)", "current", "CURRENT (A)", "li demod 1 y",
                                  "LI_Demod_1_Y (A)", 0])
def test_channel_by_name_case_and_unit_ignored(tmp_path, grid, name):
    image = uio.read(write_3ds(tmp_path / "g.3ds", grid), dataset=name)
    want = 0 if name in (0, "current", "Current (A)", "CURRENT (A)") else 2
    np.testing.assert_array_equal(image.data, grid[:, :, want, :])
    assert image.metadata["dataset"] == CHANNELS[want]


def test_wrong_channel_lists_the_channels(tmp_path, grid):
    path = write_3ds(tmp_path / "g.3ds", grid)
    with pytest.raises(ValueError, match=r"'Topography' is not a channel of .*g\.3ds.*"
                                         r"'Current \(A\)', 'LI Demod 1 X \(A\)'"):
        uio.read(path, dataset="Topography")
    with pytest.raises(ValueError, match=r"channel index in \[0, 3\).*got 3"):
        uio.read(path, dataset=3)


def test_no_didv_channel_asks_for_one(tmp_path, grid):
    values = grid[:, :, [0, 0], :]  # two channels, both named from CHANNELS[:2] ...
    path = write_3ds(tmp_path / "g.3ds", values)
    text = path.read_bytes().replace(b"LI Demod 1 X (A)", b"Z (m)")
    path.write_bytes(text)
    with pytest.raises(ValueError, match=r"none is a dI/dV lock-in channel; choose one with "
                                         r"dataset=.*'Current \(A\)', 'Z \(m\)'"):
        uio.read(path)


def test_unmeasured_points_are_nan_and_counted(tmp_path, grid):
    path = write_3ds(tmp_path / "g.3ds", grid, measured=13)  # 2 rows of 5 and 3 points
    image = uio.read(path)
    flat = image.data.reshape(20, 11)
    assert np.isfinite(flat[:13]).all() and np.isnan(flat[13:]).all()
    assert image.metadata["unmeasured_points"] == 7
    assert image.metadata["complete_rows"] == 2
    np.testing.assert_allclose(image.channels, np.linspace(-0.5, 0.5, 11), rtol=1e-6)


def test_cli_names_the_unmeasured_rows(tmp_path, grid, capsys):
    path = write_3ds(tmp_path / "g.3ds", grid, measured=13)
    code = cli.main(["run", str(path), "-k", "2", "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "7 grid points were never measured" in err and "--crop 0:2" in err
    assert cli.main(["run", str(path), "-k", "2", "-o", str(tmp_path / "out"), "-q",
                     "--crop", "0:2", "--max-iter", "20"]) == 0


def test_unix_newlines_and_a_truncated_file(tmp_path, grid):
    path = write_3ds(tmp_path / "g.3ds", grid, newline="\n")
    np.testing.assert_array_equal(uio.read(path).data, grid[:, :, 1, :])
    record = 4 * (len(PARAMS) + 3 * 11)
    whole = path.read_bytes()
    path.write_bytes(whole[:-2 * record])  # the last two points cut off: unmeasured
    image = uio.read(path)
    assert image.metadata["unmeasured_points"] == 2 and np.isnan(image.data[-1, -2:]).all()
    np.testing.assert_array_equal(image.data[:-1], grid[:-1, :, 1, :])
    path.write_bytes(whole[:-6])
    with pytest.raises(OSError, match=r"g\.3ds.*not a whole number of .*-byte records"):
        uio.read(path)
    path.write_bytes(whole.replace(b'Grid dim="5 x 4"', b'Grid dim="5000 x 4000"'))
    with pytest.raises(OSError, match=r"g\.3ds.*holds 20 of the 20000000 grid points"):
        uio.read(path)
    bad = tmp_path / "bad.3ds"
    bad.write_bytes(b'Grid dim="2 x 2"\r\n')
    with pytest.raises(OSError, match=r"bad\.3ds.*no :HEADER_END:"):
        uio.read(bad)


@pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} not found (set UNMIX_DATA)")
def test_real_cits_grid():
    image = uio.read(REAL)
    assert image.data.shape == (30, 30, 200)
    assert image.metadata["dataset"] == "LockinX (V)"
    assert image.channel_unit == "V"
    assert image.channels[0] == pytest.approx(-0.22) and image.channels[-1] == pytest.approx(0.22)
    assert np.isfinite(image.data).all() and "unmeasured_points" not in image.metadata
    assert image.data.max() == pytest.approx(10.0)  # the lock-in clips at 10 V (README)
    assert image.metadata["grid"]["angle_deg"] == 45.0
    # the grid points are 5 nm / 30 apart, as the X (m), Y (m) parameters say
    assert image.metadata["spatial_axes"][1]["scale"] == pytest.approx(5.0 / 30)
    current = uio.read(REAL, dataset="current")
    assert current.metadata["dataset"] == "Current (A)"
    assert not np.array_equal(current.data, image.data)
    with pytest.raises(ValueError, match=r"channels: 'Current \(A\)', 'LockinX \(V\)', "
                                         r"'LockinY \(V\)', 'Bias_m \(V\)'"):
        uio.read(REAL, dataset="dIdV")


@pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} not found (set UNMIX_DATA)")
def test_real_cits_grid_through_the_cli(tmp_path, capsys):
    assert cli.main(["run", str(REAL), "-k", "3", "-o", str(tmp_path / "out"), "-q",
                     "--max-iter", "50"]) == 0
    out = capsys.readouterr().out
    assert "30 x 30 pixels x 200 channels (V)" in out
    # LockinY goes negative: refused by name, with the channel in the message
    assert cli.main(["run", str(REAL), "--dataset", "LockinY", "-k", "3", "-o",
                     str(tmp_path / "y"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Negative values" in err and "LockinY (V)" in err
