"""An unmixing written as a HyperSpy file: hs.load opens it with the
decomposition attached, in the unmixing's numbers and the image's axes."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import unmix
from unmix import SpectralImage, cli
from unmix import io as uio

pytest.importorskip("rsciio.hspy")

# exspy (the EDS signal class hs.load picks for EDS_TEM) imports HyperSpy names
# HyperSpy has deprecated: theirs, not ours.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Importing `\w+` from `hyperspy\._signals")


@pytest.fixture(scope="module")
def unmixing():
    """Integer EDS-like counts of 3 phases on a 9 x 8 grid, calibrated axes."""
    rng = np.random.default_rng(0)
    H = rng.random((3, 60))
    W = rng.dirichlet(np.ones(3), size=(9, 8))
    counts = rng.poisson(40 * W @ H).astype(np.int64)
    image = SpectralImage(
        counts, channels=0.3 + 0.02 * np.arange(60), channel_unit="keV", name="FePt map",
        metadata={"spatial_axes": [{"name": "y", "units": "nm", "offset": 5.0, "scale": 2.5},
                                   {"name": "x", "units": "nm", "offset": 0.0, "scale": 2.5}],
                  "channel_name": "Energy", "signal_type": "EDS_TEM",
                  "elements": ["Fe", "Pt"], "xray_lines": ["Fe_Ka", "Pt_La"],
                  "beam_energy": 200.0})
    return unmix.unmix(image, 3, random_state=0, max_iter=200)


@pytest.fixture(scope="module")
def hs():
    return pytest.importorskip("hyperspy.api")


def check_signal(s, u):
    """The loaded or converted signal against the unmixing's numbers."""
    W, H = u.unnormalized()
    lr = s.learning_results
    np.testing.assert_allclose(lr.factors, H.T, rtol=1e-12)
    np.testing.assert_allclose(lr.loadings, W, rtol=1e-12)
    assert lr.output_dimension == 3 and "unmix" in lr.decomposition_algorithm
    assert not lr.poissonian_noise_normalized
    # loadings @ factors.T is the fitted model of the data
    model = lr.loadings @ lr.factors.T
    X = u.image.X.astype(float)
    assert np.linalg.norm(X - model) / np.linalg.norm(X) == pytest.approx(u.rel_error, rel=1e-6)
    factors = s.get_decomposition_factors()
    loadings = s.get_decomposition_loadings()
    assert factors.data.shape == (3, 60)
    assert loadings.data.shape == (3, 9, 8)
    np.testing.assert_allclose(loadings.data[1], u.unnormalized()[0][:, 1].reshape(9, 8))
    sig = s.axes_manager.signal_axes[0]
    assert (sig.units, sig.name) == ("keV", "Energy")
    assert (sig.offset, sig.scale) == pytest.approx((0.3, 0.02), rel=1e-12)
    np.testing.assert_allclose(sig.axis, u.channels)
    x, y = s.axes_manager.navigation_axes  # HyperSpy lists x (the last array axis) first
    assert (y.name, y.units, y.offset, y.scale) == ("y", "nm", 5.0, 2.5)
    assert (x.name, x.units, x.offset, x.scale) == ("x", "nm", 0.0, 2.5)
    assert s.metadata.General.title == "FePt map"
    assert s.metadata.get_item("Sample.elements") == ["Fe", "Pt"]
    assert s.metadata.get_item("Acquisition_instrument.TEM.beam_energy") == 200.0


def test_save_hyperspy_then_hs_load(tmp_path, unmixing, hs):
    path = uio.save_hyperspy(unmixing, tmp_path / "result.hspy")
    assert path == tmp_path / "result.hspy"
    s = hs.load(path)
    np.testing.assert_array_equal(s.data, unmixing.image.data)
    check_signal(s, unmixing)
    assert s.original_metadata.unmix.model == unmixing.params["model"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s.plot_decomposition_results()
    assert plt.get_fignums()  # the factors and loadings were drawn
    plt.close("all")
    # written again over the first: replaced whole, nothing left beside it
    uio.save_hyperspy(unmixing, path)
    assert [p.name for p in tmp_path.iterdir()] == ["result.hspy"]


def test_to_hyperspy_of_an_unmixing(unmixing, hs):
    s = unmixing.to_hyperspy()
    assert s.data is unmixing.image.data
    check_signal(s, unmixing)


def test_non_uniform_channels_round_trip(tmp_path, hs):
    rng = np.random.default_rng(1)
    channels = np.array([1.0, 2, 4, 8, 16, 32, 64, 128])
    image = SpectralImage(rng.random((5, 4, 8)), channels=channels, channel_unit="m/z")
    u = unmix.unmix(image, 2, random_state=0, max_iter=50)
    s = hs.load(uio.save_hyperspy(u, tmp_path / "nu.hspy"))
    np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, channels)
    np.testing.assert_allclose(s.learning_results.factors, u.unnormalized()[1].T)


def test_zspy_needs_zarr(tmp_path, unmixing, hs):
    try:
        import zarr  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"\.zspy.*needs zarr: pip install zarr"):
            uio.save_hyperspy(unmixing, tmp_path / "r.zspy")
        return
    check_signal(hs.load(uio.save_hyperspy(unmixing, tmp_path / "r.zspy")), unmixing)


def test_bad_arguments(tmp_path, unmixing):
    with pytest.raises(TypeError, match="unmixing must be an Unmixing"):
        uio.save_hyperspy(unmixing.image, tmp_path / "x.hspy")
    with pytest.raises(ValueError, match=r"path must end in \.hspy or \.zspy.*x\.h5"):
        uio.save_hyperspy(unmixing, tmp_path / "x.h5")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        uio.save_hyperspy(unmixing, 3)


def test_without_rosettasciio(tmp_path, unmixing, monkeypatch):
    monkeypatch.setitem(sys.modules, "rsciio.hspy", None)
    with pytest.raises(ImportError, match=r'needs RosettaSciIO: pip install "unmix\[vendor\]"'):
        uio.save_hyperspy(unmixing, tmp_path / "x.hspy")
    written = unmixing.save(tmp_path / "out")  # the rest is written all the same
    assert "unmixing.h5" in {p.name for p in written}
    assert not (tmp_path / "out" / "unmixing.hspy").exists()


def test_unmix_run_writes_unmixing_hspy(tmp_path, unmixing, hs, capsys):
    path = tmp_path / "map.npz"
    uio.save_npz(unmixing.image, path)
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "-k", "3", "-o", str(out), "-q", "--seed", "0"]) == 0
    assert "unmixing.hspy" in capsys.readouterr().out
    s = hs.load(out / "unmixing.hspy")
    H = np.load(out / "H.npy")
    # the factors are the endmembers at the fit's scale: the same shapes, up to the scales
    ratio = s.learning_results.factors.T / np.where(H > 0, H, np.nan)
    assert np.allclose(np.nanmin(ratio, axis=1), np.nanmax(ratio, axis=1), rtol=1e-9)
    assert s.learning_results.loadings.shape == (72, 3)
    np.testing.assert_allclose(s.axes_manager.signal_axes[0].axis, unmixing.channels)
