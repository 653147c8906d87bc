"""Arrays of more than three axes (a grid of several channels' sweeps): the
signal axis and the index on the others said explicitly, in Python and on
the command line; and the command line's crops (empty fields, channel units)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from unmix import cli
from unmix import io as uio


@pytest.fixture
def grid(tmp_path):
    """(y, x, channel, bias), as a Nanonis export gives it; channel 1 positive."""
    rng = np.random.default_rng(5)
    values = rng.random((6, 5, 3, 20))
    values[:, :, 0] -= 0.5  # a current: negative half of the time
    path = tmp_path / "grid.npy"
    np.save(path, values)
    return path, values


def test_an_ambiguous_4d_array_is_refused_with_the_options(grid):
    path, _ = grid
    with pytest.raises(ValueError, match=r"grid\.npy.*4-D array of shape \(6, 5, 3, 20\).*"
                                         r"channel_axis=.*select=\{axis: index\}.*"
                                         r"--channel-axis AXIS, --select AXIS=INDEX"):
        uio.read(path)


def test_select_takes_an_index_and_the_channel_axis_is_the_sweep(grid):
    path, values = grid
    image = uio.read(path, channel_axis=-1, select={2: 1})
    np.testing.assert_array_equal(image.data, values[:, :, 1, :])
    assert image.metadata["select"] == {2: 1}
    # the same with negative numbers, and the channel axis left to its default (the last)
    np.testing.assert_array_equal(uio.read(path, select={-2: -2}).data, values[:, :, 1, :])
    # the bias axis elsewhere in the file: moved last after the selection
    moved = path.with_name("moved.npy")
    np.save(moved, np.moveaxis(values, 3, 0))  # (bias, y, x, channel)
    image = uio.read(moved, channel_axis=0, select={3: 1})
    np.testing.assert_array_equal(image.data, values[:, :, 1, :])


def test_select_with_a_crop_and_lazily(grid):
    path, values = grid
    image = uio.read(path, select={2: 1}, crop=((1, 4), None, (5, 15)))
    np.testing.assert_array_equal(image.data, values[1:4, :, 1, 5:15])
    lazy = uio.read(path, select={2: 1}, lazy=True)
    assert isinstance(lazy.data, np.memmap)
    np.testing.assert_array_equal(lazy.data, values[:, :, 1, :])


def test_an_explicit_channel_axis_makes_a_volume(grid):
    path, values = grid
    image = uio.read(path, channel_axis=-1)  # the user says: a volume (z, y, x, channels)
    assert image.data.shape == (6, 5, 3, 20)


@pytest.mark.parametrize("select, message", [
    ({5: 0}, r"axis 5 is not an axis of the 4-D array"),
    ({2: 3}, r"index 3 is out of range for axis 2 of size 3"),
    ({3: 0}, r"select takes an index on axis 3, the channel axis"),
    ({0: 0, 1: 0, 2: 0}, r"must leave at least 2 axes"),
    ({2: 1, -2: 0}, r"names axis 2 twice"),
])
def test_bad_selections_say_what_is_wrong(grid, select, message):
    with pytest.raises(ValueError, match=message):
        uio.read(grid[0], select=select)


def test_select_must_be_a_dict_of_integers(grid):
    for bad in ([2, 1], {2: 1.0}, {"2": 1}, {2: True}):
        with pytest.raises(TypeError, match=r"select must be a dict \{axis: index\}"):
            uio.read(grid[0], select=bad)


def test_hdf5_with_hyperspy_axes_is_known_and_plain_hdf5_selects(tmp_path, grid):
    _, values = grid
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f["data"] = values
    with pytest.raises(ValueError, match=r"4-D array"):
        uio.read(path)
    image = uio.read(path, select={2: 1})
    assert image.data.shape == (6, 5, 20)
    np.testing.assert_array_equal(image.data, values[:, :, 1, :])
    # a HyperSpy file says which axes navigate: a volume, no question asked
    hspy = tmp_path / "v.hspy"
    with h5py.File(hspy, "w") as f:
        g = f.create_group("Experiments/vol")
        g["data"] = values
        for i in range(4):
            g.create_group(f"axis-{i}").attrs["navigate"] = i < 3
    assert uio.read(hspy).data.shape == (6, 5, 3, 20)


def test_cli_select_and_channel_axis(grid, tmp_path, capsys):
    path, values = grid
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "-k", "2", "-o", str(out), "-q"]) == 2
    assert "--select AXIS=INDEX" in capsys.readouterr().err
    assert cli.main(["run", str(path), "-k", "2", "-o", str(out), "-q", "--max-iter", "20",
                     "--channel-axis", "-1", "--select", "2=1"]) == 0
    assert "6 x 5 pixels x 20 channels" in capsys.readouterr().out
    assert np.load(out / "H.npy").shape == (2, 20)
    assert cli.main(["pca", str(path), "-o", str(tmp_path / "pca"), "-q",
                     "--select", "2=0"]) == 0  # the current: negative values are fine for PCA
    with pytest.raises(SystemExit):
        cli.main(["run", str(path), "-k", "2", "-o", str(out), "--select", "2:1"])
    assert "must be AXIS=INDEX" in capsys.readouterr().err


@pytest.fixture
def spectra(tmp_path):
    """An EDS-like map whose channels are 0.01 keV apart from -0.2 keV."""
    rng = np.random.default_rng(7)
    path = tmp_path / "eds.npz"
    np.savez(path, data=rng.poisson(5.0, (6, 7, 100)).astype(np.int64),
             channels=-0.2 + 0.01 * np.arange(100), channel_unit="keV")
    return path


def test_cli_crop_empty_fields_are_whole_axes(spectra, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(spectra), "-k", "2", "-o", str(out), "-q", "--max-iter", "20",
                     "--crop", ",,40:"]) == 0
    text = capsys.readouterr().out
    assert "6 x 7 pixels x 60 channels (keV)" in text
    # the crop in indices and in the file's units
    assert "crop :,:,40: (channels 0.2 to 0.79 keV)" in text
    np.testing.assert_allclose(np.load(out / "channels.npy"), 0.2 + 0.01 * np.arange(60))


def test_cli_channel_range_in_the_files_units(spectra, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["run", str(spectra), "-k", "2", "-o", str(out), "-q", "--max-iter", "20",
                     "--channel-range", "0.2:0.5"]) == 0
    text = capsys.readouterr().out
    assert "channel range 0.2 to 0.5 keV: channels 40:71 of 100" in text
    channels = np.load(out / "channels.npy")
    assert channels.min() >= 0.2 - 1e-12 and channels.max() <= 0.5 + 1e-12
    assert len(channels) == 31
    # an open end, and together with an index crop of the spatial axes
    assert cli.main(["run", str(spectra), "-k", "2", "-o", str(out), "-q", "--max-iter", "20",
                     "--crop", "0:3", "--channel-range", "0.5:"]) == 0
    assert "3 x 7 pixels x 30 channels" in capsys.readouterr().out
    assert cli.main(["run", str(spectra), "-k", "2", "-o", str(out), "-q",
                     "--channel-range", "5:6"]) == 2
    assert "holds no channel" in capsys.readouterr().err
    for bad in ("0.5", "a:b", "2:1"):
        with pytest.raises(SystemExit):
            cli.main(["run", str(spectra), "-k", "2", "-o", str(out), "--channel-range", bad])
        assert "--channel-range" in capsys.readouterr().err
