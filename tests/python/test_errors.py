"""Invalid input to :func:`unmix.nmf`: every error names the parameter and the
value it was given."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp

import unmix


@pytest.fixture
def X():
    return np.random.default_rng(0).random((6, 5))


def _with(X, i, j, value):
    Y = X.copy()
    Y[i, j] = value
    return Y


# --------------------------------------------------------------------------
# X
# --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("form", ["C", "F", "csr", "csc", "float32"])
def test_nonfinite_X(X, value, form):
    Y = _with(X, 1, 2, value)
    Y[4, 0] = value  # two bad entries: the count is reported
    data = {
        "C": np.ascontiguousarray(Y),
        "F": np.asfortranarray(Y),
        "csr": sp.csr_matrix(Y),
        "csc": sp.csc_matrix(Y),
        "float32": Y.astype(np.float32),
    }[form]
    with pytest.raises(ValueError, match=r"X must be finite, got 2 entries that are NaN or infinity"):
        unmix.nmf(data, 2)


@pytest.mark.parametrize("form", ["C", "F", "csr", "csc", "coo", "int"])
def test_negative_X(X, form):
    Y = _with(X, 1, 2, -0.5)
    Y[3, 3] = -2.0
    data = {
        "C": np.ascontiguousarray(Y),
        "F": np.asfortranarray(Y),
        "csr": sp.csr_matrix(Y),
        "csc": sp.csc_matrix(Y),
        "coo": sp.coo_matrix(Y),
        "int": np.round(Y * 4).astype(np.int64),
    }[form]
    minimum = "-8" if form == "int" else "-2"
    with pytest.raises(ValueError,
                       match=rf"X: it must be non-negative, got 2 negative entries "
                             rf"\(minimum {minimum}\.0+\)"):
        unmix.nmf(data, 2)


def test_negative_zero_is_allowed(X):
    res = unmix.nmf(_with(X, 0, 0, -0.0), 2, max_iter=3)
    assert np.all(res.W >= 0)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_empty_X(shape):
    msg = re.escape(f"X must be a non-empty matrix (at least 1 sample and 1 feature), got shape {shape}")
    with pytest.raises(ValueError, match=msg):
        unmix.nmf(np.zeros(shape), 1)
    with pytest.raises(ValueError, match=msg):
        unmix.nmf(sp.csr_matrix(shape), 1)


@pytest.mark.parametrize(
    "data, ndim, shape",
    [
        (np.ones(5), 1, (5,)),
        ([1.0, 2.0, 3.0], 1, (3,)),
        (np.ones((2, 3, 4)), 3, (2, 3, 4)),
        (np.float64(3.0), 0, ()),
    ],
    ids=["1-D", "1-D list", "3-D", "0-D"],
)
def test_X_not_2d(data, ndim, shape):
    with pytest.raises(ValueError,
                       match=re.escape(f"X must be a 2-D array (n_samples, n_features), "
                                       f"got a {ndim}-D array with shape {shape}")):
        unmix.nmf(data, 1)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_X(X, dtype):
    with pytest.raises(TypeError, match=rf"X must have a real numeric dtype.*got dtype {np.dtype(dtype)}"):
        unmix.nmf(X.astype(dtype), 2)
    with pytest.raises(TypeError, match=rf"X must have a real numeric dtype.*got dtype {np.dtype(dtype)}"):
        unmix.nmf(sp.csr_matrix(X.astype(dtype)), 2)


def test_string_X():
    with pytest.raises(TypeError, match=r"X must have a real numeric dtype.*got dtype <U1"):
        unmix.nmf([["a", "b"], ["c", "d"]], 1)
    with pytest.raises(TypeError, match=r"X must have a real numeric dtype.*got dtype <U3"):
        unmix.nmf(np.array([["1.5", "2"], ["3", "4"]]), 1)
    with pytest.raises(TypeError, match=r"X must hold numbers, got dtype object.*'a'"):
        unmix.nmf(np.array([["a", 1], [2, 3]], dtype=object), 1)


def test_object_array_of_numbers_is_fine():
    res = unmix.nmf(np.array([[1, 2.5], [3, 4]], dtype=object), 1, max_iter=3)
    assert res.W.dtype == np.float64


# --------------------------------------------------------------------------
# n_components and init
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, -100])
def test_n_components_below_one(X, k):
    with pytest.raises(ValueError, match=rf"n_components must be an integer >= 1, got {k}$"):
        unmix.nmf(X, k)


@pytest.mark.parametrize("k", [2.0, 2.5, "2", None, True, np.float64(2)])
def test_n_components_not_an_int(X, k):
    with pytest.raises(TypeError, match=r"n_components must be an integer >= 1, got " + re.escape(repr(k))):
        unmix.nmf(X, k)


def test_n_components_numpy_int_is_fine(X):
    res = unmix.nmf(X, np.int64(2), max_iter=3)
    assert res.W.shape == (6, 2)


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("k", [6, 7, 50])
def test_n_components_above_min_shape_with_nndsvd(X, init, k):
    with pytest.raises(ValueError,
                       match=re.escape(f"n_components must be <= min(n_samples, n_features) = 5 "
                                       f"for init={init!r}") + r".*got " + str(k)):
        unmix.nmf(X, k, init=init)
    with pytest.raises(ValueError, match=r"min\(n_samples, n_features\) = 5"):
        unmix.nmf(X.T.copy(), k, init=init)
    # a random start has no such limit, only a warning
    with pytest.warns(UserWarning, match=rf"n_components={k} is above min\(n_samples, n_features\)"):
        res = unmix.nmf(X, k, init="random", random_state=0, max_iter=5)
    assert res.W.shape == (6, k) and res.H.shape == (k, 5)
    assert np.all(np.isfinite(res.W)) and np.all(res.W >= 0)


def test_n_components_equal_to_min_shape_with_nndsvd(X):
    res = unmix.nmf(X, 5, init="nndsvd", max_iter=3)
    assert res.H.shape == (5, 5)


@pytest.mark.parametrize("init", ["svd", "NNDSVD", "", 3])
def test_unknown_init(X, init):
    with pytest.raises(ValueError, match=r"init must be one of 'nndsvda', .*'vca', got " + re.escape(repr(init))):
        unmix.nmf(X, 2, init=init)


@pytest.mark.parametrize("solver", ["als", "BPP", "", 1])  # None picks the default
def test_unknown_solver(X, solver):
    with pytest.raises(ValueError, match=r"solver must be one of 'bpp', 'hals', 'mu', 'admm', got " + re.escape(repr(solver))):
        unmix.nmf(X, 2, solver=solver)


# --------------------------------------------------------------------------
# Penalties, max_iter, tol, time_limit, random_state
# --------------------------------------------------------------------------


PENALTY_NAMES = ["l1_W", "l1_H", "l2_W", "l2_H"]


@pytest.mark.parametrize("name", PENALTY_NAMES)
@pytest.mark.parametrize("value", [-0.1, -1e-300, -np.inf, np.inf, np.nan])
def test_bad_penalty(X, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number >= 0, got {value}$"):
        unmix.nmf(X, 2, **{name: value})


@pytest.mark.parametrize("name", PENALTY_NAMES)
@pytest.mark.parametrize("value", ["1", None, [0.1], True])
def test_penalty_not_a_number(X, name, value):
    with pytest.raises(TypeError, match=rf"{name} must be a real number >= 0, got " + re.escape(repr(value))):
        unmix.nmf(X, 2, **{name: value})


@pytest.mark.parametrize("name", PENALTY_NAMES)
def test_penalty_integer_and_numpy_scalars_are_fine(X, name):
    unmix.nmf(X, 2, max_iter=2, **{name: 1})
    unmix.nmf(X, 2, max_iter=2, **{name: np.float32(0.5)})


@pytest.mark.parametrize("max_iter", [0, -5])
def test_max_iter_below_one(X, max_iter):
    with pytest.raises(ValueError, match=rf"max_iter must be an integer >= 1, got {max_iter}$"):
        unmix.nmf(X, 2, max_iter=max_iter)


@pytest.mark.parametrize("max_iter", [10.0, "10", None])
def test_max_iter_not_an_int(X, max_iter):
    with pytest.raises(TypeError, match=r"max_iter must be an integer >= 1, got " + re.escape(repr(max_iter))):
        unmix.nmf(X, 2, max_iter=max_iter)


@pytest.mark.parametrize("tol", [-1e-3, -np.inf, np.nan])
def test_bad_tol(X, tol):
    with pytest.raises(ValueError, match=rf"tol must be a finite number >= 0, got {tol}$"):
        unmix.nmf(X, 2, tol=tol)


def test_tol_not_a_number(X):
    with pytest.raises(TypeError, match=r"tol must be a real number >= 0, got '1e-3'"):
        unmix.nmf(X, 2, tol="1e-3")


def test_bad_time_limit(X):
    with pytest.raises(ValueError, match=r"time_limit must be > 0 seconds or None, got 0"):
        unmix.nmf(X, 2, time_limit=0)
    with pytest.raises(ValueError, match=r"time_limit must be a finite number >= 0, got -1"):
        unmix.nmf(X, 2, time_limit=-1)


@pytest.mark.parametrize("seed, exc", [(-1, ValueError), (2**64, ValueError),
                                       ("a", TypeError), (1.5, TypeError)])
def test_bad_random_state(X, seed, exc):
    with pytest.raises(exc, match=r"random_state must be .*got " + re.escape(repr(seed))):
        unmix.nmf(X, 2, random_state=seed)


# --------------------------------------------------------------------------
# Custom starting factors
# --------------------------------------------------------------------------


@pytest.fixture
def WH():
    rng = np.random.default_rng(1)
    return rng.random((6, 2)), rng.random((2, 5))


def test_custom_init_works(X, WH):
    W, H = WH
    res = unmix.nmf(X, 2, init="custom", W=W, H=H, max_iter=3)
    assert res.W.shape == (6, 2)
    # W and H without init mean init="custom"
    res2 = unmix.nmf(X, 2, W=W, H=H, max_iter=3)
    np.testing.assert_array_equal(res.W, res2.W)


@pytest.mark.parametrize(
    "which, shape",
    [("W", (5, 2)), ("W", (6, 3)), ("W", (2, 6)), ("H", (2, 4)), ("H", (3, 5)), ("H", (5, 2))],
)
def test_custom_factor_wrong_shape(X, WH, which, shape):
    W, H = WH
    bad = np.ones(shape)
    kw = {"W": bad, "H": H} if which == "W" else {"W": W, "H": bad}
    want = (6, 2) if which == "W" else (2, 5)
    with pytest.raises(ValueError, match=re.escape(f"{which} must have shape {want}, got {shape}")):
        unmix.nmf(X, 2, init="custom", **kw)


@pytest.mark.parametrize("which", ["W", "H"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.complex128])
def test_custom_factor_wrong_dtype(X, WH, which, dtype):
    W, H = WH
    kw = {"W": W, "H": H, which: (W if which == "W" else H).astype(dtype)}
    with pytest.raises(TypeError,
                       match=re.escape(f"{which} must have the dtype of X (float64), got {np.dtype(dtype)}")):
        unmix.nmf(X, 2, init="custom", **kw)


def test_custom_factor_float64_for_float32_X(X, WH):
    W, H = WH
    with pytest.raises(TypeError, match=re.escape("W must have the dtype of X (float32), got float64")):
        unmix.nmf(X.astype(np.float32), 2, init="custom", W=W, H=H.astype(np.float32))


@pytest.mark.parametrize("which", ["W", "H"])
def test_custom_factor_not_an_array(X, WH, which):
    W, H = WH
    kw = {"W": W, "H": H, which: (W if which == "W" else H).tolist()}
    with pytest.raises(TypeError, match=rf"{which} must be a numpy array of shape .*got list"):
        unmix.nmf(X, 2, init="custom", **kw)


@pytest.mark.parametrize("which", ["W", "H"])
def test_custom_factor_negative_or_nonfinite(X, WH, which):
    W, H = WH
    F = (W if which == "W" else H).copy()
    F[0, 0] = -0.25
    kw = {"W": W, "H": H, which: F}
    with pytest.raises(ValueError, match=rf"{which} must be non-negative, got a minimum of -0.25"):
        unmix.nmf(X, 2, init="custom", **kw)
    F[0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"{which} must be finite"):
        unmix.nmf(X, 2, init="custom", **kw)


def test_custom_init_without_factors(X, WH):
    W, H = WH
    with pytest.raises(ValueError, match=r"init='custom' needs both W and H, got W=None, H=None"):
        unmix.nmf(X, 2, init="custom")
    with pytest.raises(ValueError, match=r"init='custom' needs both W and H, got W=an array, H=None"):
        unmix.nmf(X, 2, init="custom", W=W)
    with pytest.raises(ValueError, match=r"init='custom' needs both W and H, got W=None, H=an array"):
        unmix.nmf(X, 2, init="custom", H=H)


@pytest.mark.parametrize("init", [None, "random", "nndsvda"])
def test_factors_without_custom_init(X, WH, init):
    W, H = WH
    with pytest.raises(ValueError, match=r"W and H are used only with init='custom', got init="):
        unmix.nmf(X, 2, init=init, W=W)
    if init is not None:
        with pytest.raises(ValueError, match=rf"W and H are used only with init='custom', got init='{init}'"):
            unmix.nmf(X, 2, init=init, W=W, H=H)


def test_extrapolation_is_refused_where_the_half_steps_are_not_exact():
    X = np.random.default_rng(0).random((30, 20))
    for solver in ("hals", "mu"):
        with pytest.raises(ValueError, match=rf"extrapolate works with the Frobenius loss and solvers "
                                             rf"'bpp' or 'admm'.*got solver '{solver}'"):
            unmix.nmf(X, 3, solver=solver, extrapolate=True)
    with pytest.raises(ValueError, match=r"got solver 'mu' with the KL loss"):
        unmix.nmf(X, 3, loss="kl", extrapolate=True)
    with pytest.raises(TypeError, match=r"extrapolate must be True or False, got 'yes'"):
        unmix.nmf(X, 3, extrapolate="yes")


def test_extrapolation_reaches_the_plain_error_in_fewer_iterations():
    """On a problem like the benchmark's (rank k plus noise, C order: the fused
    pass), bpp with extrapolation reaches the error plain bpp has after 60
    iterations in at most half as many."""
    rng = np.random.default_rng(3)
    X = rng.random((3000, 8)) @ rng.random((8, 300)) ** 4
    X += 0.01 * X.mean() * np.abs(rng.standard_normal(X.shape))
    W0, H0 = rng.random((3000, 8)), rng.random((8, 300))
    plain = unmix.nmf(X, 8, init="custom", W=W0, H=H0, max_iter=60, tol=0)
    fast = unmix.nmf(X, 8, init="custom", W=W0, H=H0, max_iter=60, tol=0, extrapolate=True)
    reached = np.flatnonzero(np.asarray(fast.rel_error) <= plain.rel_error[-1])
    assert reached.size and reached[0] <= 30, (plain.rel_error[-1], fast.rel_error[::10])


# --------------------------------------------------------------------------
# Data read from a file: the message names the file and the dataset
# --------------------------------------------------------------------------


@pytest.fixture
def bad_files(tmp_path):
    """A 4 x 5 x 6 image with one NaN, one with one negative value, as
    .npy and as a dataset of an HDF5 file."""
    import h5py

    cube = np.random.default_rng(0).random((4, 5, 6)) + 1.0
    nan, negative = cube.copy(), cube.copy()
    nan[1, 2, 3] = np.nan
    negative[0, 0, 0] = -4.0  # binned with its neighbours it would be hidden
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "neg.npy", negative)
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["/entry/nan"] = nan
        f["/entry/neg"] = negative
    return tmp_path


NAMED = [
    (["run", "nan.npy", "-k", "2"], "image read from '{dir}/nan.npy' must be finite, got 1 "
                                    "entries that are NaN or infinity"),
    (["run", "scan.h5", "--dataset", "/entry/neg", "-k", "2", "--bin", "2"],
     "Negative values in data passed to image read from '{dir}/scan.h5' (dataset '/entry/neg'): "
     "it must be non-negative, got 1 negative entries (minimum -4.000000)"),
    (["run", "neg.npy", "-k", "2", "--normalize", "total"],
     "Negative values in data passed to image read from '{dir}/neg.npy': it must be "
     "non-negative, got 1 negative entries (minimum -4.000000)"),
    (["run", "neg.npy", "-k", "2", "--poisson-scale"],
     "Negative values in data passed to image read from '{dir}/neg.npy'"),
    (["rank", "scan.h5", "--dataset", "/entry/nan", "--k", "1:2"],
     "image read from '{dir}/scan.h5' (dataset '/entry/nan') must be finite"),
    (["pca", "nan.npy"], "image read from '{dir}/nan.npy' must be finite"),
]


@pytest.mark.parametrize("argv, message", NAMED, ids=[" ".join(a) for a, _ in NAMED])
def test_bad_data_in_a_file_is_named_by_the_command_line(bad_files, argv, message, capsys):
    from unmix import cli

    argv = [str(bad_files / a) if a.endswith((".npy", ".h5")) else a for a in argv]
    code = cli.main([*argv, "--quiet", "-o", str(bad_files / "out")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.startswith(f"unmix {argv[0]}: error: {message.format(dir=bad_files)}"), err
    assert not (bad_files / "out").exists()


@pytest.mark.parametrize("call", ["unmix", "select_rank", "pca", "poisson_scale"])
def test_bad_data_in_a_file_is_named_by_the_functions(bad_files, call):
    from unmix import io, preprocess

    dataset = "/entry/nan" if call == "pca" else "/entry/neg"
    image = io.read(bad_files / "scan.h5", dataset=dataset)
    run = {"unmix": lambda: unmix.unmix(image, 2), "pca": lambda: unmix.pca(image),
           "select_rank": lambda: unmix.select_rank(image, ks=[1, 2]),
           "poisson_scale": lambda: preprocess.poisson_scale(image)}[call]
    where = re.escape(f"image read from '{bad_files / 'scan.h5'}' (dataset '{dataset}')")
    with pytest.raises(ValueError, match=where):
        run()
