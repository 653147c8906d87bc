"""unmix.io: readers round-trip, lazy and cropped HDF5, errors, HyperSpy."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

from unmix import SpectralImage
from unmix import io as uio
from unmix import preprocess as pp


@pytest.fixture
def cube():
    rng = np.random.default_rng(0)
    return rng.random((4, 5, 6))


# --------------------------------------------------------------------------
# .npy / .npz
# --------------------------------------------------------------------------


def test_npy_round_trip(tmp_path, cube):
    path = tmp_path / "cube.npy"
    np.save(path, cube)
    image = uio.read(path)
    assert isinstance(image, SpectralImage)
    np.testing.assert_array_equal(image.data, cube)
    assert type(image.data) is np.ndarray
    np.testing.assert_array_equal(image.channels, np.arange(6.0))
    assert image.name == "cube"
    assert image.metadata["source"] == str(path)
    assert image.metadata["format"] == "npy"


def test_npy_channel_axis_moved_last(tmp_path, cube):
    path = tmp_path / "c.npy"
    np.save(path, np.moveaxis(cube, -1, 0))  # stored (channels, y, x)
    image = uio.read(path, channel_axis=0)
    np.testing.assert_array_equal(image.data, cube)


def test_npy_lazy_is_a_memory_map_and_crop_reads_a_copy(tmp_path, cube):
    path = tmp_path / "c.npy"
    np.save(path, cube)
    lazy = uio.read(path, lazy=True)
    assert isinstance(lazy.data, np.memmap)
    np.testing.assert_array_equal(lazy.data, cube)

    cropped = uio.read(path, crop=(slice(1, 3), (0, 2), slice(2, None)))
    assert type(cropped.data) is np.ndarray and not isinstance(cropped.data, np.memmap)
    np.testing.assert_array_equal(cropped.data, cube[1:3, 0:2, 2:])
    np.testing.assert_array_equal(cropped.channels, [2.0, 3.0, 4.0, 5.0])
    assert cropped.metadata["crop"][0] == [1, 3, None]


def test_one_spectrum_is_a_one_pixel_image(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.arange(7.0))
    image = uio.read(path)
    assert image.data.shape == (1, 7)


def test_save_npz_round_trip(tmp_path, cube):
    image = SpectralImage(cube, channels=np.linspace(10, 20, 6), channel_unit="eV", name="map")
    written = uio.save_npz(image, tmp_path / "saved")
    assert written.name == "saved.npz"
    back = uio.read(written)
    np.testing.assert_array_equal(back.data, cube)
    np.testing.assert_array_equal(back.channels, image.channels)
    assert back.channel_unit == "eV" and back.name == "map"
    with np.load(written, allow_pickle=False) as z:  # no pickled objects
        assert set(z.files) == {"data", "channels", "channel_unit", "name"}
    compressed = uio.save_npz(image, tmp_path / "z.npz", compressed=True)
    np.testing.assert_array_equal(uio.read(compressed).data, cube)


def test_npz_dataset_choice(tmp_path, cube):
    path = tmp_path / "several.npz"
    np.savez(path, vector=np.arange(3.0), image=cube, other=cube[..., :2],
             channels=np.arange(6.0) * 2, channel_unit="nm")
    image = uio.read(path)  # the first array of at least 2 dimensions
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_array_equal(image.channels, np.arange(6.0) * 2)
    assert image.channel_unit == "nm"
    with pytest.raises(ValueError, match=r"dataset 'nope' is not in .*several\.npz.*image"):
        uio.read(path, dataset="nope")
    with pytest.raises(ValueError, match="channel axis values have 6 entries but the data has 2"):
        uio.read(path, dataset="other")


# --------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------


def test_hdf5_round_trip_with_attributes(tmp_path, cube):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("entry/cube", data=cube)
        ds.attrs["channels"] = np.linspace(1.0, 2.0, 6)
        ds.attrs["units"] = "keV"
        f.create_dataset("entry/vector", data=np.arange(5))
    image = uio.read(path)
    np.testing.assert_array_equal(image.data, cube)
    assert type(image.data) is np.ndarray
    np.testing.assert_allclose(image.channels, np.linspace(1.0, 2.0, 6))
    assert image.channel_unit == "keV"
    assert image.metadata["dataset"] == "/entry/cube"


def test_hdf5_sibling_channels_dataset(tmp_path, cube):
    path = tmp_path / "c.hdf5"
    with h5py.File(path, "w") as f:
        f["data"] = np.moveaxis(cube, -1, 0)
        f["channels"] = np.arange(6.0) + 0.5
        f["channels"].attrs["unit"] = "m/z"
    image = uio.read(path, channel_axis=0)
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_array_equal(image.channels, np.arange(6.0) + 0.5)
    assert image.channel_unit == "m/z"


def test_hdf5_lazy_keeps_the_dataset_and_crop_reads_only_the_crop(tmp_path, cube):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["cube"] = np.moveaxis(cube, -1, 0)  # (channels, y, x) on disk
    lazy = uio.read(path, lazy=True, channel_axis=0)
    assert isinstance(lazy.data, uio.LazyArray)
    assert isinstance(lazy.data.dataset, h5py.Dataset)
    assert lazy.data.shape == cube.shape
    np.testing.assert_array_equal(np.asarray(lazy.data), cube)

    # cropping the lazy image stays lazy, then reads the crop
    part = pp.crop(lazy, spatial=((1, 3), slice(0, 4, 2)), channels=slice(1, 4))
    assert isinstance(part.data, uio.LazyArray) and part.data.shape == (2, 2, 3)
    np.testing.assert_array_equal(np.asarray(part.data), cube[1:3, 0:4:2, 1:4])

    eager = uio.read(path, channel_axis=0, crop=(slice(2, 4), None, slice(0, 2)))
    assert type(eager.data) is np.ndarray and eager.data.shape == (2, 5, 2)
    np.testing.assert_array_equal(eager.data, cube[2:4, :, 0:2])
    lazy_crop = uio.read(path, channel_axis=0, crop=(slice(2, 4),), lazy=True)
    assert isinstance(lazy_crop.data, uio.LazyArray) and lazy_crop.data.shape == (2, 5, 6)


class _Recorder:
    """An on-disk array stand-in that records what is read."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.reads = []

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]


def test_lazy_array_reads_only_the_selection():
    source = _Recorder(np.arange(6 * 7 * 8.0).reshape(6, 7, 8))
    view = uio.LazyArray(source).transpose(1, 2, 0)[2:5, ::3, 4]
    assert source.reads == []
    np.testing.assert_array_equal(np.asarray(view), source.array.transpose(1, 2, 0)[2:5, ::3, 4])
    assert source.reads == [(4, slice(2, 5, 1), slice(0, 7, 3))]


@pytest.mark.parametrize("key", [
    (slice(None, None, -1),),
    (Ellipsis, 3),
    (1, slice(5, 0, -2), Ellipsis),
    (slice(2, 2),),
    (-1, slice(-3, None), slice(None, None, -3)),
])
def test_lazy_array_indexing_matches_numpy(key):
    a = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    lazy = uio.LazyArray(a).transpose(2, 0, 1)
    expected = a.transpose(2, 0, 1)[key]
    got = lazy[key]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.asarray(got), expected)
    np.testing.assert_array_equal(np.asarray(got[..., ::-2]), expected[..., ::-2])


def test_lazy_array_rejects_fancy_indexing():
    with pytest.raises(TypeError, match="integers and slices only"):
        uio.LazyArray(np.zeros((3, 4)))[[0, 1]]


def test_hdf5_dataset_choice_errors(tmp_path, cube):
    path = tmp_path / "few.h5"
    with h5py.File(path, "w") as f:
        f["a"] = cube
        f["b"] = cube[..., :3]
        f["v"] = np.arange(4)
    with pytest.raises(ValueError, match=r"several datasets.*dataset=.*/a \(4, 5, 6\).*/b"):
        uio.read(path)
    np.testing.assert_array_equal(uio.read(path, dataset="b").data, cube[..., :3])
    with pytest.raises(ValueError, match=r"dataset 'c' is not a dataset of .*few\.h5"):
        uio.read(path, dataset="c")
    with pytest.raises(TypeError, match="dataset must be a path"):
        uio.read(path, dataset=1)

    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        f["v"] = np.arange(4.0)
        f["s"] = "text"
    with pytest.raises(ValueError, match=r"flat\.h5.* is not a spectral image: no numeric "
                                         r"dataset with at least 2 dimensions.*/v"):
        uio.read(flat)


def test_hdf5_nexus_signal_and_axes(tmp_path, cube):
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "counts",
                           "axes": np.array([b"y", b"x", b"energy"])})
        data["counts"] = cube
        data["energy"] = np.linspace(0.1, 0.6, 6)
        data["energy"].attrs["units"] = "keV"
        entry["monitor"] = np.ones((4, 5))  # another 2-D dataset: the NXdata signal wins
    image = uio.read(path)
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_allclose(image.channels, np.linspace(0.1, 0.6, 6))
    assert image.channel_unit == "keV"
    assert image.metadata["channel_name"] == "energy"


def test_hspy_file_read_with_h5py(tmp_path, cube):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal1D(cube)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = 250.0, 0.5, "eV", "Energy"
    s.axes_manager.navigation_axes[0].scale = 2.0  # x: array axis 1
    s.metadata.General.title = "sample"
    path = tmp_path / "s.hspy"
    s.save(path)
    image = uio.read(path)
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_allclose(image.channels, 250.0 + 0.5 * np.arange(6))
    assert image.channel_unit == "eV" and image.name == "sample"
    assert image.metadata["spatial_axes"][1]["scale"] == 2.0
    lazy = uio.read(path, lazy=True, crop=(None, slice(1, 3)))
    assert isinstance(lazy.data, uio.LazyArray)
    np.testing.assert_array_equal(np.asarray(lazy.data), cube[:, 1:3])
    assert lazy.metadata["spatial_axes"][1]["offset"] == 2.0  # follows the crop


# --------------------------------------------------------------------------
# TIFF and MATLAB
# --------------------------------------------------------------------------


def test_tiff_stack_frames_become_channels(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    stack = np.arange(5 * 4 * 3, dtype=np.uint16).reshape(5, 4, 3)  # (frames, y, x)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    image = uio.read(path)
    assert image.data.shape == (4, 3, 5)
    np.testing.assert_array_equal(image.data, np.moveaxis(stack, 0, -1))
    assert image.metadata["tiff_axes"] == "QYX"
    np.testing.assert_array_equal(uio.read(path, channel_axis=-1).data, stack)
    lazy = uio.read(path, lazy=True)
    assert isinstance(lazy.data.base, np.memmap) or isinstance(lazy.data, np.memmap)
    np.testing.assert_array_equal(lazy.data, np.moveaxis(stack, 0, -1))
    cropped = uio.read(path, crop=((1, 3), None, slice(0, 2)))
    np.testing.assert_array_equal(cropped.data, np.moveaxis(stack, 0, -1)[1:3, :, 0:2])


def test_tiff_single_image_is_one_channel(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    picture = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "img.tiff"
    tifffile.imwrite(path, picture)
    image = uio.read(path)
    assert image.data.shape == (3, 4, 1)
    np.testing.assert_array_equal(image.data[..., 0], picture)


def test_mat_v5_round_trip(tmp_path, cube):
    from scipy.io import savemat

    path = tmp_path / "cube.mat"
    savemat(path, {"cube": cube, "small": np.ones((2, 6)), "channels": np.arange(6.0) * 3,
                   "channel_unit": "nm"})
    image = uio.read(path)  # the largest numeric variable
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_array_equal(image.channels, np.arange(6.0) * 3)
    assert image.channel_unit == "nm" and image.name == "cube"
    small = uio.read(path, dataset="small")
    assert small.data.shape == (2, 6) and small.channels[1] == 3.0
    with pytest.raises(ValueError, match=r"dataset 'nope' is not a variable of .*cube\.mat"):
        uio.read(path, dataset="nope")


def test_mat_v73_read_with_h5py(tmp_path, cube):
    path = tmp_path / "big.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        # MATLAB writes column-major arrays: HDF5 sees the axes reversed.
        f["cube"] = cube.T
        f["cube"].attrs["MATLAB_class"] = np.bytes_("double")
        f["channels"] = (np.arange(6.0) + 1)[None, :].T
        f["channels"].attrs["MATLAB_class"] = np.bytes_("double")
        f["channel_unit"] = np.array([[ord(c)] for c in "cm-1"], dtype=np.uint16)
        f["channel_unit"].attrs["MATLAB_class"] = np.bytes_("char")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(128))
    image = uio.read(path)
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_array_equal(image.channels, np.arange(6.0) + 1)
    assert image.channel_unit == "cm-1"
    lazy = uio.read(path, lazy=True, crop=(slice(1, 2),))
    assert isinstance(lazy.data, uio.LazyArray)
    np.testing.assert_array_equal(np.asarray(lazy.data), cube[1:2])


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.npy.*no such file"):
        uio.read(tmp_path / "nothere.npy")


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("1 2 3")
    with pytest.raises(ValueError, match=r"data\.xyz.*unknown extension '\.xyz'.*\.npy.*\.h5.*"
                                         r"\.tif.*\.mat.*\.bcf"):
        uio.read(path)


def test_corrupted_npy(tmp_path, cube):
    path = tmp_path / "trunc.npy"
    np.save(path, cube)
    path.write_bytes(path.read_bytes()[:150])
    with pytest.raises(OSError, match=r"trunc\.npy.*cannot be read as a \.npy file"):
        uio.read(path)
    with pytest.raises(OSError, match=r"trunc\.npy"):
        uio.read(path, lazy=True)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy at all")
    with pytest.raises(OSError, match=r"junk\.npy"):
        uio.read(junk)


def test_corrupted_hdf5(tmp_path, cube):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(OSError, match=r"junk\.h5.*cannot be read as an HDF5 file"):
        uio.read(junk)
    path = tmp_path / "trunc.h5"
    with h5py.File(path, "w") as f:
        f["cube"] = cube
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(OSError, match=r"trunc\.h5"):
        uio.read(path)


def test_not_a_spectral_image(tmp_path):
    path = tmp_path / "text.npy"
    np.save(path, np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"text\.npy.*not a spectral image.*not numeric"):
        uio.read(path)
    scalar = tmp_path / "scalar.npy"
    np.save(scalar, np.float64(3.0))
    with pytest.raises(ValueError, match=r"scalar\.npy.*single number"):
        uio.read(scalar)


def test_bad_arguments(tmp_path, cube):
    path = tmp_path / "c.npy"
    np.save(path, cube)
    with pytest.raises(ValueError, match=r"channel_axis must be in \[-3, 2\].*got 3"):
        uio.read(path, channel_axis=3)
    with pytest.raises(TypeError, match="channel_axis must be an integer"):
        uio.read(path, channel_axis=1.0)
    with pytest.raises(TypeError, match="path must be a str"):
        uio.read(3)
    with pytest.raises(TypeError, match=r"crop\[0\] must be a slice"):
        uio.read(path, crop=(1,))
    with pytest.raises(ValueError, match="crop must have at most 3 entries"):
        uio.read(path, crop=(None,) * 4)
    with pytest.raises(ValueError, match="crop must leave a non-empty image"):
        uio.read(path, crop=(slice(3, 3),))


def test_optional_readers_say_what_to_install(tmp_path, monkeypatch):
    bcf = tmp_path / "map.bcf"
    bcf.write_bytes(b"\x00")
    tif = tmp_path / "map.tif"
    tif.write_bytes(b"\x00")
    monkeypatch.setitem(sys.modules, "rsciio", None)
    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(ImportError, match=r'map\.bcf.*RosettaSciIO: pip install "unmix\[vendor\]"'):
        uio.read(bcf)
    with pytest.raises(ImportError, match=r'map\.tif.*tifffile: pip install "unmix\[io\]"'):
        uio.read(tif)


# --------------------------------------------------------------------------
# RosettaSciIO and HyperSpy
# --------------------------------------------------------------------------


@pytest.fixture
def signal(cube):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal1D(cube)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units, ax.name = -3.0, 0.25, "keV", "Energy"
    nav = s.axes_manager.navigation_axes  # x (array axis 1) first
    nav[0].scale, nav[0].units = 5.0, "nm"
    s.metadata.General.title = "EDS map"
    return s


def test_rsciio_ripple_file(tmp_path, signal, cube):
    pytest.importorskip("rsciio.ripple")
    path = tmp_path / "map.rpl"
    signal.save(path)  # HyperSpy writes through RosettaSciIO's ripple writer
    image = uio.read(path)
    np.testing.assert_array_equal(image.data, cube)
    np.testing.assert_allclose(image.channels, -3.0 + 0.25 * np.arange(6))
    assert image.channel_unit == "keV" and image.name == "EDS map"
    assert image.metadata["format"] == "ripple"
    assert image.metadata["spatial_axes"][1]["units"] == "nm"
    cropped = uio.read(path, crop=((1, 3), None, (2, 5)))
    assert type(cropped.data) is np.ndarray
    np.testing.assert_array_equal(cropped.data, cube[1:3, :, 2:5])
    np.testing.assert_allclose(cropped.channels, -3.0 + 0.25 * np.arange(2, 5))


def test_rsciio_single_spectrum(tmp_path, signal, cube):
    pytest.importorskip("rsciio.msa")
    path = tmp_path / "spectrum.msa"
    signal.inav[2, 1].save(path)
    image = uio.read(path)
    assert image.data.shape == (1, 6)
    np.testing.assert_allclose(image.data[0], cube[1, 2], rtol=1e-5)  # written as text
    np.testing.assert_allclose(image.channels, -3.0 + 0.25 * np.arange(6))


def test_rsciio_corrupted_and_empty_files(tmp_path):
    pytest.importorskip("rsciio.ripple")
    path = tmp_path / "bad.rpl"
    path.write_text("garbage\n")
    with pytest.raises(OSError, match=r"bad\.rpl.*cannot be read as a \.rpl file"):
        uio.read(path)
    empty = tmp_path / "empty.msa"
    empty.write_text("#FORMAT : EMSA/MAS Spectral Data File\n")
    with pytest.raises(ValueError, match=r"empty\.msa.*not a spectral image.*empty"):
        uio.read(empty)


def test_from_hyperspy_shares_data_and_axes(signal, cube):
    image = uio.from_hyperspy(signal)
    assert image.data is signal.data
    np.testing.assert_allclose(image.channels, -3.0 + 0.25 * np.arange(6))
    assert image.channel_unit == "keV" and image.name == "EDS map"
    assert image.metadata["channel_name"] == "Energy"
    assert image.metadata["spatial_axes"][1] == {"name": "", "units": "nm", "offset": 0.0,
                                                 "scale": 5.0}
    back = uio.to_hyperspy(image)
    assert back.data is signal.data
    ax = back.axes_manager.signal_axes[0]
    assert (ax.offset, ax.scale, ax.units, ax.name) == (-3.0, 0.25, "keV", "Energy")
    assert back.axes_manager.navigation_axes[0].scale == 5.0
    assert back.metadata.General.title == "EDS map"


def test_to_hyperspy_non_uniform_channels(cube):
    pytest.importorskip("hyperspy.api")
    image = SpectralImage(cube, channels=np.array([1.0, 2, 4, 8, 16, 32]), channel_unit="m/z")
    s = uio.to_hyperspy(image)
    np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, image.channels)
    np.testing.assert_array_equal(uio.from_hyperspy(s).channels, image.channels)


def test_from_hyperspy_rejects_images(cube):
    hs = pytest.importorskip("hyperspy.api")
    with pytest.raises(ValueError, match="exactly one signal axis.*got 2"):
        uio.from_hyperspy(hs.signals.Signal2D(cube))
    with pytest.raises(TypeError, match="signal must be a HyperSpy signal"):
        uio.from_hyperspy(cube)
