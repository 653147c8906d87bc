"""unmix.preprocess: every step against a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from unmix import SpectralImage
from unmix import preprocess as pp


def _image(data, **kw):
    return SpectralImage(np.asarray(data), **kw)


# --------------------------------------------------------------------------
# crop
# --------------------------------------------------------------------------


def test_crop_spatial_is_a_view():
    data = np.arange(4 * 5 * 3.0).reshape(4, 5, 3)
    image = _image(data, channels=np.array([10.0, 20.0, 30.0]), channel_unit="eV",
                   metadata={"spatial_axes": [{"name": "y", "units": "nm", "offset": 0.0,
                                               "scale": 2.0}, {"name": "x", "units": "nm",
                                                               "offset": 1.0, "scale": 1.0}]})
    out = pp.crop(image, spatial=((1, 3), slice(0, 5, 2)))
    np.testing.assert_array_equal(out.data, data[1:3, 0:5:2])
    assert np.shares_memory(out.data, data)
    np.testing.assert_array_equal(out.channels, image.channels)
    assert out.metadata["spatial_axes"][0]["offset"] == 2.0
    assert out.metadata["spatial_axes"][1]["scale"] == 2.0
    assert out.metadata["preprocessing"][-1]["step"] == "crop"
    assert "preprocessing" not in image.metadata  # the input is untouched


def test_crop_channels_by_units_and_by_index():
    data = np.arange(2 * 2 * 6.0).reshape(2, 2, 6)
    image = _image(data, channels=np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5]))
    out = pp.crop(image, channels=(1.5, 3.0))  # both ends included
    np.testing.assert_array_equal(out.channels, [1.5, 2.0, 2.5, 3.0])
    np.testing.assert_array_equal(out.data, data[..., 1:5])
    assert np.shares_memory(out.data, data)
    by_index = pp.crop(image, channels=slice(1, 5))
    np.testing.assert_array_equal(by_index.data, out.data)
    # a decreasing channel axis still gives a contiguous range
    down = _image(data, channels=np.array([3.5, 3.0, 2.5, 2.0, 1.5, 1.0]))
    np.testing.assert_array_equal(pp.crop(down, channels=(1.2, 2.2)).channels, [2.0, 1.5])
    # a non-monotonic axis selects a copy
    odd = _image(data, channels=np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0]))
    picked = pp.crop(odd, channels=(1, 3))
    np.testing.assert_array_equal(picked.data, data[..., [0, 2, 4]])


def test_crop_errors():
    image = _image(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"channels range \(10, 20\) holds no channel.*\[0, 4\]"):
        pp.crop(image, channels=(10, 20))
    with pytest.raises(ValueError, match="lo <= hi"):
        pp.crop(image, channels=(3, 1))
    with pytest.raises(TypeError, match="channels must be a slice"):
        pp.crop(image, channels="all")
    with pytest.raises(ValueError, match="spatial must have at most 2 entries"):
        pp.crop(image, spatial=(None, None, None))
    with pytest.raises(ValueError, match="crop must leave a non-empty image"):
        pp.crop(image, spatial=((2, 2),))
    with pytest.raises(TypeError, match="image must be a SpectralImage"):
        pp.crop(np.ones((3, 4)))


# --------------------------------------------------------------------------
# bin
# --------------------------------------------------------------------------


def test_bin_sums_blocks_and_averages_channels():
    data = np.arange(5 * 4 * 7).reshape(5, 4, 7)
    image = _image(data, channels=np.arange(7.0) * 10,
                   metadata={"spatial_axes": [{"offset": 0.0, "scale": 1.0},
                                              {"offset": 0.0, "scale": 3.0}]})
    out = pp.bin(image, spatial=(2, 2), channels=3)
    assert out.data.shape == (2, 2, 2)  # remainders dropped: 5 -> 2, 7 -> 2
    expected = np.zeros((2, 2, 2))
    for i in range(2):
        for j in range(2):
            for c in range(2):
                expected[i, j, c] = data[2 * i:2 * i + 2, 2 * j:2 * j + 2, 3 * c:3 * c + 3].sum()
    np.testing.assert_array_equal(out.data, expected)
    assert out.data.dtype == np.int64
    np.testing.assert_array_equal(out.channels, [10.0, 40.0])  # mean of 0,10,20 and 30,40,50
    assert out.metadata["spatial_axes"][1] == {"offset": 1.5, "scale": 6.0}  # bin centres


def test_bin_small_cases():
    line = _image(np.array([[1, 2], [3, 4], [5, 6]], dtype=np.uint16))
    np.testing.assert_array_equal(pp.bin(line, spatial=2).data, [[4, 6]])
    np.testing.assert_array_equal(pp.bin(line, channels=2).data, [[3], [7], [11]])
    big = _image(np.full((2, 1), 60000, dtype=np.uint16))
    assert pp.bin(big, spatial=2).data[0, 0] == 120000  # summed as uint64, no overflow
    f32 = _image(np.ones((4, 2), dtype=np.float32))
    assert pp.bin(f32, spatial=2).data.dtype == np.float32
    assert pp.bin(line) is line


def test_bin_errors():
    image = _image(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="spatial factor of axis 0 must be <= the axis length 3"):
        pp.bin(image, spatial=4)
    with pytest.raises(ValueError, match="channels must be <= the axis length 5"):
        pp.bin(image, channels=6)
    with pytest.raises(ValueError, match="spatial must be an integer or 2 integers"):
        pp.bin(image, spatial=(1, 2, 3))
    with pytest.raises(TypeError, match="channels must be an integer >= 1"):
        pp.bin(image, channels=1.5)
    with pytest.raises(ValueError, match=r"spatial\[1\] must be an integer >= 1, got 0"):
        pp.bin(image, spatial=(1, 0))


# --------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method, scale", [
    ("total", [4.0, 0.0, 7.0]),
    ("max", [3.0, 0.0, 4.0]),
    ("l2", [np.sqrt(10.0), 0.0, 5.0]),
])
def test_normalize(method, scale):
    data = np.array([[1.0, 3.0], [0.0, 0.0], [3.0, 4.0]])
    out, s = pp.normalize(_image(data), method)
    np.testing.assert_allclose(s, scale)
    expected = data.copy()
    expected[[0, 2]] /= np.array(scale)[[0, 2], None]
    np.testing.assert_allclose(out.data, expected)
    np.testing.assert_allclose(out.data * s[..., None], data)  # the round trip


def test_normalize_spatial_shape_and_denormalize():
    data = np.array([[[2.0, 2.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 5.0]]])  # (2, 2, 2)
    out, scale = pp.normalize(_image(data), "total")
    np.testing.assert_allclose(scale, [[4.0, 1.0], [0.0, 5.0]])
    W_tilde = np.array([[0.5], [1.0], [0.0], [1.0]])  # X̃ = W̃ H with H = [[0.5, 0.5]] etc.
    np.testing.assert_allclose(pp.denormalize_abundances(W_tilde, scale), [[2.0], [1.0], [0.0],
                                                                           [5.0]])
    np.testing.assert_allclose(pp.denormalize_abundances(W_tilde.reshape(2, 2, 1), scale),
                               [[[2.0], [1.0]], [[0.0], [5.0]]])
    with pytest.raises(ValueError, match=r"W must have shape \(4, k\)"):
        pp.denormalize_abundances(np.ones((3, 1)), scale)
    with pytest.raises(ValueError, match="method must be one of 'total', 'max', 'l2'"):
        pp.normalize(_image(data), "sum")


# --------------------------------------------------------------------------
# Poisson scaling
# --------------------------------------------------------------------------


def test_poisson_scale_hand_case():
    X = np.array([[1.0, 3.0], [2.0, 6.0]])
    out, scaling = pp.poisson_scale(_image(X))
    g = np.array([2.0, 4.0])  # mean count of each pixel over the 2 channels
    h = np.array([1.5, 4.5])  # mean count of each channel over the 2 pixels
    np.testing.assert_allclose(scaling.pixel_scale, np.sqrt(g))
    np.testing.assert_allclose(scaling.channel_scale, np.sqrt(h))
    np.testing.assert_allclose(out.data, X / np.sqrt(np.outer(g, h)))
    # rank-one mean: the scaled noise variance x_ij / (g_i h_j) is the same everywhere
    np.testing.assert_allclose(out.data**2 / X, np.full((2, 2), 1 / 3))


def test_poisson_unscale_restores_the_factorization_with_zero_pixels_and_channels():
    rng = np.random.default_rng(3)
    W0 = rng.random((6, 2))
    H0 = rng.random((2, 5))
    W0[4] = 0.0  # a pixel without counts
    H0[:, 1] = 0.0  # a channel without counts
    X = W0 @ H0
    image = SpectralImage.from_matrix(X, (2, 3))
    out, scaling = pp.poisson_scale(image)
    assert np.isfinite(out.data).all()
    assert np.all(out.X[4] == 0) and np.all(out.X[:, 1] == 0)
    # X̃ = G^-1/2 X H^-1/2 factors exactly as (G^-1/2 W0)(H0 H^-1/2)
    a = np.zeros(6)
    a[scaling.pixel_scale.reshape(-1) > 0] = 1 / scaling.pixel_scale.reshape(-1)[
        scaling.pixel_scale.reshape(-1) > 0]
    b = np.zeros(5)
    b[scaling.channel_scale > 0] = 1 / scaling.channel_scale[scaling.channel_scale > 0]
    W_t, H_t = a[:, None] * W0, H0 * b
    np.testing.assert_allclose(W_t @ H_t, out.X)
    W, H = scaling.unscale(W_t, H_t)
    np.testing.assert_allclose(W @ H, X, atol=1e-15)
    W_sp, _ = scaling.unscale(W_t.reshape(2, 3, 2), H_t)
    np.testing.assert_allclose(W_sp.reshape(6, 2), W)
    with pytest.raises(ValueError, match=r"H must have shape \(k, 5\)"):
        scaling.unscale(W_t, H_t.T)


def test_poisson_scale_rejects_negative_data():
    with pytest.raises(ValueError, match="non-negative counts.*minimum of -1"):
        pp.poisson_scale(_image([[1.0, -1.0]]))


# --------------------------------------------------------------------------
# log, center, weights
# --------------------------------------------------------------------------


def test_log():
    data = np.array([[0.0, 1.0], [9.0, 99.0]])
    np.testing.assert_allclose(pp.log(_image(data)).data, np.log([[1.0, 2.0], [10.0, 100.0]]))
    np.testing.assert_allclose(pp.log(_image(data), offset=0.5).data, np.log(data + 0.5))
    assert pp.log(_image(data.astype(np.float32))).data.dtype == np.float32
    with pytest.raises(ValueError, match="offset \\+ data must be > 0.*minimum of 0"):
        pp.log(_image(data), offset=0.0)
    with pytest.raises(TypeError, match="offset must be a finite real number"):
        pp.log(_image(data), offset=np.inf)


def test_center():
    data = np.array([[1.0, 2.0], [3.0, 6.0]])
    out, mean = pp.center(_image(data))
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(out.data, [[-1.0, -2.0], [1.0, 2.0]])


def test_weight_pixels_is_weighted_least_squares():
    rng = np.random.default_rng(0)
    X = rng.random((4, 3))
    w = np.array([4.0, 1.0, 0.25, 0.0])
    out, weighting = pp.weight_pixels(SpectralImage.from_matrix(X, (2, 2)), w.reshape(2, 2))
    np.testing.assert_allclose(out.X, np.sqrt(w)[:, None] * X)
    # Σ w_i ||x_i - a_i E||² equals the plain objective of the scaled problem
    A, E = rng.random((4, 2)), rng.random((2, 3))
    weighted = np.sum(w * np.sum((X - A @ E) ** 2, axis=1))
    A_t = np.sqrt(w)[:, None] * A
    assert np.isclose(weighted, np.sum((out.X - A_t @ E) ** 2))
    back = weighting.unscale(A_t)
    np.testing.assert_allclose(back[:3], A[:3])
    assert np.isnan(back[3]).all()  # zero weight: not fitted
    np.testing.assert_allclose(weighting(A_t.reshape(2, 2, 2))[0, 0], A[0])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        pp.weight_pixels(SpectralImage.from_matrix(X, (2, 2)), -w)
    with pytest.raises(ValueError, match=r"weights must have the spatial shape \(2, 2\) or "
                                         r"\(4,\), got shape \(3,\)"):
        pp.weight_pixels(SpectralImage.from_matrix(X, (2, 2)), w[:3])


# --------------------------------------------------------------------------
# sliding FFT
# --------------------------------------------------------------------------


def _periodic(name, n):
    k = np.arange(n)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * k / n)
    return 0.54 - 0.46 * np.cos(2 * np.pi * k / n)


@pytest.mark.parametrize("window_fn", ["hann", "hamming"])
def test_sliding_fft_matches_numpy_at_one_window(window_fn):
    rng = np.random.default_rng(1)
    img = rng.random((40, 50))
    out = pp.sliding_fft(img, window=16, step=6, window_fn=window_fn, dtype=np.float64)
    assert out.data.shape == ((40 - 16) // 6 + 1, (50 - 16) // 6 + 1, 256) == (5, 6, 256)
    iy, ix = 3, 4
    win = img[iy * 6:iy * 6 + 16, ix * 6:ix * 6 + 16]
    taper = np.outer(_periodic(window_fn, 16), _periodic(window_fn, 16))
    expected = np.fft.fftshift(np.abs(np.fft.fft2((win - win.mean()) * taper)))
    np.testing.assert_allclose(out.data[iy, ix].reshape(16, 16), expected, rtol=1e-10,
                               atol=1e-12)
    meta = out.metadata["sliding_fft"]
    assert meta["positions_y"][iy] == 18 and meta["positions_x"][ix] == 24
    assert meta["frequencies"][8] == 0.0  # zero frequency at window // 2
    assert out.metadata["spatial_axes"][1] == {"name": "x", "units": "px", "offset": 7.5,
                                               "scale": 6.0}


def test_sliding_fft_options():
    rng = np.random.default_rng(2)
    img = rng.random((20, 20))
    raw = pp.sliding_fft(img, window=8, step=4, window_fn=None, subtract_mean=False,
                         dtype="float64")
    win = img[4:12, 8:16]
    np.testing.assert_allclose(raw.data[1, 2], np.fft.fftshift(np.abs(np.fft.fft2(win))).ravel())
    logged = pp.sliding_fft(img, window=8, step=4, window_fn=None, subtract_mean=False,
                            log=True, dtype=np.float64)
    np.testing.assert_allclose(logged.data, np.log1p(raw.data))
    f32 = pp.sliding_fft(img, window=8, step=4)
    assert f32.data.dtype == np.float32
    f64 = pp.sliding_fft(img, window=8, step=4, dtype=np.float64)
    np.testing.assert_allclose(f32.data, f64.data, rtol=1e-4, atol=1e-5)
    # a one-channel SpectralImage gives the same
    one = SpectralImage(img[..., None], name="HRTEM")
    from_image = pp.sliding_fft(one, window=8, step=4, dtype=np.float64)
    np.testing.assert_array_equal(from_image.data, f64.data)
    assert from_image.name == "HRTEM sliding FFT"


def test_sliding_fft_reads_on_disk_data(tmp_path):
    h5py = pytest.importorskip("h5py")
    from unmix import io as uio

    img = np.random.default_rng(4).random((24, 30))
    expected = pp.sliding_fft(img, window=8, step=8, dtype=np.float64).data
    with h5py.File(tmp_path / "img.h5", "w") as f:
        f["image"] = img
    with h5py.File(tmp_path / "img.h5", "r") as f:
        for source in (f["image"], uio.LazyArray(f["image"])):  # read a band at a time
            out = pp.sliding_fft(source, window=8, step=8, dtype=np.float64)
            np.testing.assert_allclose(out.data, expected)


def test_sliding_fft_errors():
    img = np.zeros((10, 12))
    with pytest.raises(ValueError, match=r"window must be <= the smaller image side 10"):
        pp.sliding_fft(img, window=11)
    with pytest.raises(ValueError, match=r"image2d must be 2-D \(y, x\), got shape \(2, 10, 12\)"):
        pp.sliding_fft(np.zeros((2, 10, 12)), window=4)
    with pytest.raises(ValueError, match="window_fn must be one of"):
        pp.sliding_fft(img, window=4, window_fn="kaiser")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        pp.sliding_fft(img, window=4, dtype=np.int32)
    with pytest.raises(ValueError, match="SpectralImage with 2 spatial axes and 1 channel"):
        pp.sliding_fft(SpectralImage(np.zeros((10, 12, 2))), window=4)
    with pytest.raises(TypeError, match="step must be an integer >= 1"):
        pp.sliding_fft(img, window=4, step=2.0)
