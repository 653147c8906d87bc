"""unmix.datasets: finding the reference data, its readers and the USGS mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from unmix import datasets
from unmix.endmembers import abundances_from_endmembers
from unmix.metrics import abundance_rmse


def _data_or_skip():
    try:
        return datasets.data_folder()
    except FileNotFoundError as err:
        pytest.skip(f"the reference data is absent: {err}")


@pytest.fixture(scope="module")
def samson():
    _data_or_skip()
    return datasets.load_samson()


@pytest.fixture(scope="module")
def library():
    _data_or_skip()
    return datasets.usgs_library()


def _snr_db(signal, noise):
    return 10 * np.log10(np.sum(signal**2) / np.sum(noise**2))


# --------------------------------------------------------------------------
# finding the data
# --------------------------------------------------------------------------


def test_folder_from_argument_then_env_then_cache(tmp_path, monkeypatch):
    given, env, cache = tmp_path / "given", tmp_path / "env", tmp_path / "xdg" / "unmix"
    for folder in (given, env, cache):
        folder.mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("UNMIX_DATA", str(env))
    assert datasets.data_folder(given) == given
    assert datasets.data_folder() == env
    monkeypatch.delenv("UNMIX_DATA")
    assert datasets.cache_folder() == cache
    assert datasets.data_folder() == cache


def test_a_parent_holding_shared_data_is_not_used(tmp_path, monkeypatch):
    # The old lookup walked up from the working directory to any
    # shared/data: a convention of this repository, not of a user's machine.
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "samson.mat").write_bytes(b"not read")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    monkeypatch.delenv("UNMIX_DATA", raising=False)
    cache = tmp_path / "xdg" / "unmix"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(FileNotFoundError) as info:
        datasets.data_folder()
    message = str(info.value)
    assert str(tmp_path / "shared") not in message
    # It says what to do: the three places, and the files to put there.
    assert "pass folder=..." in message and "set UNMIX_DATA" in message
    assert repr(str(cache)) in message
    for name in ("samson.mat", "usgs_1995_library.mat", "abundance_spatial_3em.mat"):
        assert name in message
    cache.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"samson.mat is not in the data folder .*"
                                                r"put it there, or pass folder="):
        datasets.load_samson()


def test_folder_absent(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"folder must be an existing directory"):
        datasets.load_samson(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"samson.mat is not in the data folder"):
        datasets.load_samson(tmp_path)
    monkeypatch.setenv("UNMIX_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"UNMIX_DATA must name an existing directory"):
        datasets.data_folder()
    with pytest.raises(TypeError, match=r"folder must be a path"):
        datasets.data_folder(3)


def test_cache_needs_pooch(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pooch", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "unmix\[data\]".*set UNMIX_DATA'):
        datasets.cache_folder()


# --------------------------------------------------------------------------
# Samson
# --------------------------------------------------------------------------


def test_samson_shapes(samson):
    assert samson.X.shape == (9025, 156)
    assert samson.X.flags.c_contiguous and samson.X.dtype == np.float64
    assert samson.abundances.shape == (9025, 3)
    assert samson.endmembers.shape == (3, 156)
    assert samson.spatial_shape == (95, 95)
    assert samson.endmember_names == ("soil", "tree", "water")
    assert samson.scale is None
    np.testing.assert_array_equal(samson.channels, np.arange(156))
    np.testing.assert_allclose(samson.abundances.sum(axis=1), 1.0, atol=1e-10)
    np.testing.assert_allclose(samson.endmembers.max(axis=1), 1.0, rtol=1e-3)  # water: 0.999
    assert 0.0 <= samson.X.min() and samson.X.max() <= 1.0


def test_samson_pixel_order_is_row_major(samson):
    from scipy.io import loadmat

    raw = loadmat(str(datasets.data_folder() / "samson.mat"))
    cube = samson.X.reshape(95, 95, 156)
    for r, c in [(0, 0), (0, 1), (1, 0), (17, 80), (94, 3)]:
        np.testing.assert_array_equal(cube[r, c], raw["Y"][:, r + 95 * c])
        np.testing.assert_array_equal(samson.abundances.reshape(95, 95, 3)[r, c],
                                      raw["S_GT"][r, c])


def test_samson_abundances_match_the_pixels(samson):
    # Least squares on the ground-truth spectra agrees with S_GT in our pixel
    # order (0.90-0.98, as the data README says), not in the transposed one.
    A = np.linalg.lstsq(samson.endmembers.T, samson.X.T, rcond=None)[0].T
    corr = [np.corrcoef(A[:, i], samson.abundances[:, i])[0, 1] for i in range(3)]
    assert min(corr) > 0.89 and max(corr) < 0.99
    swapped = samson.abundances.reshape(95, 95, 3).transpose(1, 0, 2).reshape(-1, 3)
    assert max(np.corrcoef(A[:, i], swapped[:, i])[0, 1] for i in range(3)) < 0.8
    # S_GT is (almost exactly) NNLS on GT followed by sum-to-one.
    nnls = abundances_from_endmembers(samson.X, samson.endmembers)
    assert abundance_rmse(samson.abundances, nnls) < 0.01


# --------------------------------------------------------------------------
# USGS library and mixtures
# --------------------------------------------------------------------------


def test_usgs_library(library):
    assert library.wavelengths.shape == (224,)
    assert np.all(np.diff(library.wavelengths) > 0)
    assert 0.38 < library.wavelengths[0] < 0.39 and 2.50 < library.wavelengths[-1] < 2.51
    assert library.spectra.shape == (498, 224)
    assert len(library.names) == 498
    assert 0 < library.spectra.min() and library.spectra.max() < 1.1
    for name in datasets.DEFAULT_MINERALS:
        assert name in library.names


@pytest.mark.parametrize("file, side", [("abundance_spatial_3em.mat", 50),
                                        ("abundance_squares_3em.mat", 70)])
def test_usgs_mixture_noiseless(library, file, side):
    img = datasets.usgs_mixture(file, snr_db=None)
    assert img.X.shape == (side * side, 224) and img.X.flags.c_contiguous
    assert img.abundances.shape == (side * side, 3)
    assert img.endmembers.shape == (3, 224)
    assert img.spatial_shape == (side, side)
    assert img.endmember_names == datasets.DEFAULT_MINERALS
    assert img.channel_unit == "µm" and img.scale == 1.0
    np.testing.assert_allclose(img.abundances.sum(axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(img.X, img.abundances @ img.endmembers)
    np.testing.assert_array_equal(img.channels, library.wavelengths)
    idx = [library.names.index(n) for n in datasets.DEFAULT_MINERALS]
    np.testing.assert_array_equal(img.endmembers, library.spectra[idx])


@pytest.mark.parametrize("snr", [20.0, 30.0, 45.0])
@pytest.mark.parametrize("poisson", [False, True])
def test_usgs_mixture_snr(library, snr, poisson):
    img = datasets.usgs_mixture(snr_db=snr, poisson=poisson, seed=3)
    clean = img.scale * (img.abundances @ img.endmembers)
    assert abs(_snr_db(clean, img.X - clean) - snr) < 0.5
    assert img.X.min() >= 0
    if poisson:
        np.testing.assert_array_equal(img.X, np.round(img.X))
        assert img.scale > 1.0
    else:
        assert img.scale == 1.0


def test_usgs_mixture_seed(library):
    a = datasets.usgs_mixture("abundance_squares_3em.mat", seed=7)
    b = datasets.usgs_mixture("abundance_squares_3em.mat", seed=7)
    c = datasets.usgs_mixture("abundance_squares_3em.mat", seed=8)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    np.testing.assert_array_equal(a.abundances, c.abundances)
    p1 = datasets.usgs_mixture(poisson=True, seed=np.random.default_rng(1))
    p2 = datasets.usgs_mixture(poisson=True, seed=1)
    np.testing.assert_array_equal(p1.X, p2.X)


def test_usgs_mixture_minerals(library):
    names = ("kaolinite cm9", "Calcite   WS272", 80)
    img = datasets.usgs_mixture(minerals=names, snr_db=None)
    assert img.endmember_names == ("Kaolinite CM9", "Calcite WS272", library.names[80])
    np.testing.assert_array_equal(img.endmembers[2], library.spectra[80])
    as_array = datasets.usgs_mixture(minerals=np.array([5, 80, 7]), snr_db=None)
    np.testing.assert_array_equal(as_array.endmembers, library.spectra[[5, 80, 7]])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"minerals": ["Kaolinite CM9"]}, ValueError, r"minerals must name 3 minerals"),
    ({"minerals": "Kaolinite CM9"}, TypeError, r"minerals must be a sequence of 3"),
    ({"minerals": ["Kaolinite CM9", "Kaolinite  cm9", 1]}, ValueError, r"3 distinct spectra"),
    ({"minerals": ["Kaolinit CM9", 0, 1]}, ValueError,
     r"'Kaolinit CM9' is not in the USGS library; close names: \['Kaolinite CM9'"),
    ({"minerals": [0, 1, 498]}, ValueError, r"indices must be in \[0, 498\), got 498"),
    ({"minerals": [0, 1, 2.0]}, TypeError, r"names \(str\) or library indices \(int\), got 2.0"),
    ({"abundance_file": "nope.mat"}, ValueError, r"abundance_file must be one of"),
    ({"snr_db": "30"}, TypeError, r"snr_db must be a real number"),
    ({"poisson": 1}, TypeError, r"poisson must be True or False, got 1"),
    ({"poisson": True, "snr_db": None}, ValueError, r"poisson=True needs a finite snr_db"),
    ({"seed": -1}, ValueError, r"seed must be a non-negative integer, got -1"),
])
def test_usgs_mixture_errors(library, kwargs, error, match):
    with pytest.raises(error, match=match):
        datasets.usgs_mixture(**kwargs)
