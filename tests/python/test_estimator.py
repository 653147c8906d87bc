"""unmix.NMF as a scikit-learn estimator (and as a HyperSpy decomposition)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import nnls
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import unmix
from unmix import NMF


#: scikit-learn's model (plain NMF of X as given): the tests of its exact
#: properties set it; the estimator's default is unmix.unmix's fit.
PLAIN = {"sum_to_one": False, "noise": "gaussian"}

def _data(n_samples=120, n_features=30, rank=3, noise=0.01, seed=0, dtype=np.float64):
    """Non-negative data of the given rank plus a little non-negative noise."""
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, rank)) @ rng.random((rank, n_features))
    X += noise * rng.random((n_samples, n_features))
    return X.astype(dtype)


# --------------------------------------------------------------------------
# scikit-learn's own estimator checks
# --------------------------------------------------------------------------

# Nothing is waived. Two notes on the choice of instances:
# * The default solver (BPP) is checked, with and without penalties. HALS and
#   MU are first-order methods: on the checks' tiny exact-rank data (e.g. 2
#   features, 2 components) they need more than the default 500 iterations,
#   so they would fail only by emitting a (correct) ConvergenceWarning.
# * n_components=2 rather than None: with n_components=None every check runs
#   at n_components == n_features, where NMF has infinitely many exact
#   factorizations and alternating NNLS creeps towards one (relative error
#   ~5e-3 after 500 iterations on check_n_features_in_after_fitting's 15x4
#   data), which again only means a correct ConvergenceWarning.
# check_array_api_input is skipped by scikit-learn itself unless
# SCIPY_ARRAY_API is set before SciPy is imported; it is run in a subprocess
# by test_array_api_check below.
@parametrize_with_checks(
    [
        NMF(n_components=2, random_state=0),
        NMF(n_components=2, l1_W=0.1, l2_H=0.1, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name == "check_array_api_input" and "SCIPY_ARRAY_API" not in os.environ:
        pytest.skip("needs SCIPY_ARRAY_API=1 before SciPy is imported; "
                    "run in a subprocess by test_array_api_check")
    check(estimator)


def test_array_api_check():
    """check_array_api_input (NumPy namespace, array API dispatch on), which
    needs SCIPY_ARRAY_API=1 before SciPy is imported: in a fresh interpreter."""
    code = (
        "from sklearn.utils.estimator_checks import check_array_api_input\n"
        "import unmix\n"
        "check_array_api_input('NMF', unmix.NMF(n_components=2, random_state=0),\n"
        "                      array_namespace='numpy', expect_only_array_outputs=False)\n"
    )
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------

def test_attributes_and_tags():
    X = _data()
    est = NMF(n_components=3, random_state=0)
    assert not hasattr(est, "components_")
    W = est.fit_transform(X)
    assert W.shape == (120, 3)
    assert est.components_.shape == (3, 30)
    assert est.n_components_ == 3
    assert est.n_features_in_ == 30
    assert 1 <= est.n_iter_ < est.max_iter
    assert est.objective_.shape == (est.n_iter_ + 1,)
    assert (W >= 0).all() and (est.components_ >= 0).all()
    # Not centred: HyperSpy reads a mean_ attribute as "centred data".
    assert not hasattr(est, "mean_")

    tags = get_tags(est)
    assert tags.input_tags.positive_only
    assert tags.input_tags.sparse
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]


def test_n_components_none_keeps_all_features():
    X = _data(n_samples=40, n_features=4)
    est = NMF(random_state=0, max_iter=2000).fit(X)
    assert est.n_components_ == 4
    assert est.components_.shape == (4, 4)


def test_fit_transform_matches_fit_then_transform():
    X = _data()
    est_a = NMF(n_components=3, random_state=0, tol=1e-8, max_iter=3000, **PLAIN)
    W_a = est_a.fit_transform(X)
    est_b = NMF(n_components=3, random_state=0, tol=1e-8, max_iter=3000, **PLAIN).fit(X)
    # Same seed, same fit.
    assert_array_equal(est_a.components_, est_b.components_)
    assert est_a.n_iter_ == est_b.n_iter_
    # fit_transform's W is the last W update (against the previous H);
    # transform solves against the final H: equal up to convergence.
    W_b = est_b.transform(X)
    assert_allclose(W_a, W_b, rtol=0, atol=1e-4 * W_a.max())


def test_transform_is_the_exact_nnls_solution():
    X = _data()
    est = NMF(n_components=3, random_state=0, **PLAIN).fit(X)
    X_new = _data(n_samples=10, seed=1)  # same features, other samples
    for data in (X, X_new):
        W = est.transform(data)
        for i in (0, 3, 7):
            w_ref, _ = nnls(est.components_.T, data[i])
            assert_allclose(W[i], w_ref, rtol=0, atol=1e-10)


# H is penalized too: with W alone penalized, shrinking W and growing H
# lowers the objective forever and the fit never converges.
@pytest.mark.parametrize("l1_W, l2_W", [(0.3, 0.0), (0.0, 2.0), (0.3, 1.0)])
def test_transform_with_W_penalties_is_exact(l1_W, l2_W):
    """transform minimizes 1/2 ||x - H^T w||^2 + l1 sum(w) + l2/2 ||w||^2 over
    w >= 0: the NNLS problem with Gram G = H H^T + l2 I and right-hand side
    H x - l1, written as a least-squares problem through G = L L^T."""
    X = _data()
    # init="nndsvd": under these penalties a filled start (nndsvda) can switch
    # components off, and the property needs all three.
    est = NMF(n_components=3, random_state=0, l1_W=l1_W, l2_W=l2_W, l2_H=1.0, init="nndsvd",
              **PLAIN).fit(X)
    H = est.components_
    assert (H.sum(axis=1) > 0).all()  # no component switched off: G = L L^T exists
    W = est.transform(X)
    G = H @ H.T + l2_W * np.eye(3)
    L = np.linalg.cholesky(G)
    for i in (0, 5, 11):
        b = H @ X[i] - l1_W
        w_ref, _ = nnls(L.T, np.linalg.solve(L, b))
        assert_allclose(W[i], w_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("fmt", ["dense_c", "dense_f", "csr", "csc", "float32"])
def test_reconstruction_err_is_the_frobenius_residual(fmt):
    X = _data()
    if fmt == "dense_f":
        X = np.asfortranarray(X)
    elif fmt in ("csr", "csc"):
        X = X * (X > 0.8)  # some zeros
        X = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    elif fmt == "float32":
        X = X.astype(np.float32)
    est = NMF(n_components=3, random_state=0)
    W = est.fit_transform(X)
    dense = X.toarray() if sp.issparse(X) else X
    expected = np.linalg.norm(dense.astype(np.float64) - W.astype(np.float64) @ est.components_)
    rtol = 1e-5 if fmt == "float32" else 1e-12
    assert_allclose(est.reconstruction_err_, expected, rtol=rtol)
    assert isinstance(est.reconstruction_err_, float)


def test_reconstruction_err_of_a_near_exact_fit():
    """Also exact when the residual is tiny compared to X (where the expanded
    ||X||^2 - 2<X, WH> + ||WH||^2 has lost its digits)."""
    X = _data(noise=0.0)
    est = NMF(n_components=3, random_state=0, tol=1e-9, max_iter=3000)
    W = est.fit_transform(X)
    assert_allclose(est.reconstruction_err_, np.linalg.norm(X - W @ est.components_),
                    rtol=1e-9)


def test_explained_variance_is_the_energy_of_each_rank_one_term():
    X = _data(noise=0.1)
    est = NMF(n_components=3, random_state=0)
    W = est.fit_transform(X)
    H = est.components_
    expected = [np.linalg.norm(np.outer(W[:, i], H[i])) ** 2 / X.shape[0] for i in range(3)]
    assert_allclose(est.explained_variance_, expected, rtol=1e-12)
    # The terms are not orthogonal: no reason to add up to the data's energy.
    assert est.explained_variance_.shape == (3,)
    est32 = NMF(n_components=3, random_state=0)
    W32 = est32.fit_transform(X.astype(np.float32))
    assert est32.explained_variance_.dtype == np.float64
    expected32 = (np.sum(W32.astype(np.float64) ** 2, axis=0)
                  * np.sum(est32.components_.astype(np.float64) ** 2, axis=1) / X.shape[0])
    assert_allclose(est32.explained_variance_, expected32, rtol=1e-10)


def test_float32_in_float32_out():
    X = _data(dtype=np.float32)
    est = NMF(n_components=3, random_state=0)
    W = est.fit_transform(X)
    assert W.dtype == np.float32
    assert est.components_.dtype == np.float32
    assert est.transform(X).dtype == np.float32
    assert est.inverse_transform(W).dtype == np.float32
    # float64 in: float64 out
    est64 = NMF(n_components=3, random_state=0).fit(X.astype(np.float64))
    assert est64.components_.dtype == np.float64
    assert est64.transform(X.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input(fmt):
    X = _data()
    X[X < 0.6] = 0.0
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    dense = NMF(n_components=3, random_state=0)
    W_dense = dense.fit_transform(X)
    est = NMF(n_components=3, random_state=0)
    W = est.fit_transform(Xs)
    assert isinstance(W, np.ndarray)
    assert W.shape == (120, 3) and est.components_.shape == (3, 30)
    # Same problem, same start: same factorization as dense.
    assert_allclose(W @ est.components_, W_dense @ dense.components_, atol=1e-6)
    assert_allclose(est.transform(Xs), est.transform(X), atol=1e-12)
    # Sparse arrays (not only matrices) work too.
    assert_allclose(est.transform(sp.csr_array(X)), est.transform(X), atol=1e-12)


def test_get_feature_names_out():
    est = NMF(n_components=4, random_state=0, tol=1e-4).fit(_data(rank=4))
    names = est.get_feature_names_out()
    assert list(names) == ["nmf0", "nmf1", "nmf2", "nmf3"]
    assert names.dtype == object


def test_inverse_transform():
    X = _data()
    est = NMF(n_components=3, random_state=0)
    W = est.fit_transform(X)
    assert_allclose(est.inverse_transform(W), W @ est.components_)
    with pytest.raises(ValueError, match="n_samples, 3"):
        est.inverse_transform(np.ones((5, 2)))


def test_custom_start_in_fit_transform():
    X = _data()
    rng = np.random.default_rng(3)
    W0, H0 = rng.random((120, 3)), rng.random((3, 30))
    est = NMF(n_components=3, random_state=0, **PLAIN)
    W = est.fit_transform(X, W=W0, H=H0)
    assert W.shape == (120, 3)
    assert est.reconstruction_err_ < 0.05 * np.linalg.norm(X)


def test_max_iter_warns():
    X = _data(noise=0.1)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations 2"):
        est = NMF(n_components=3, random_state=0, max_iter=2).fit(X)
    assert est.n_iter_ == 2


def test_converged_fit_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = NMF(n_components=3, random_state=0).fit(_data(noise=0.1))
    assert est.n_iter_ < est.max_iter


def test_exact_factorization_stops_without_warning():
    """With as many components as features the data has an exact
    factorization; the objective tends to zero and its relative decrease
    stays large. The fit stops once it reproduces X to a relative error of
    tol instead of running to max_iter."""
    rng = np.random.RandomState(0)
    X = rng.normal(loc=100, size=(100, 2))  # the data of check_n_features_in
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = NMF(n_components=2, random_state=0, **PLAIN).fit(X)
    assert est.n_iter_ < est.max_iter
    assert est.reconstruction_err_ <= 1.01 * est.tol * np.linalg.norm(X)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"solver": "xyz"}, "solver"),
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.5}, "n_components"),
        ({"l1_W": -1}, "l1_W"),
        ({"l1_H": -1.0}, "l1_H"),
        ({"l2_W": -0.5}, "l2_W"),
        ({"l2_H": "a"}, "l2_H"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1e-3}, "tol"),
        ({"init": "custom"}, "init"),
        ({"init": "xyz"}, "init"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_invalid_params_raise_value_error_naming_them(params, name):
    est = NMF(**params)  # __init__ only stores them
    with pytest.raises(ValueError, match=re.escape(f"'{name}' parameter")):
        est.fit(_data())


def test_clone_get_params_set_params():
    est = NMF(n_components=3, solver="hals", l1_H=0.1, random_state=7)
    params = est.get_params()
    assert params["n_components"] == 3 and params["solver"] == "hals"
    assert params["l1_H"] == 0.1 and params["random_state"] == 7
    twin = clone(est)
    assert twin is not est
    assert twin.get_params() == params
    assert est.set_params(n_components=2, solver="bpp", l1_H=0.0) is est
    assert est.n_components == 2 and est.solver == "bpp" and est.l1_H == 0.0
    # A clone of a fitted estimator is unfitted.
    est.fit(_data())
    assert not hasattr(clone(est), "components_")
    # Same parameters and seed: same fit.
    assert_array_equal(clone(est).fit(_data()).components_, est.components_)


def test_in_a_pipeline():
    X = _data()
    pipe = Pipeline([("scale", MaxAbsScaler()), ("nmf", NMF(n_components=3, random_state=0))])
    W = pipe.fit_transform(X)
    assert W.shape == (120, 3) and (W >= 0).all()
    assert_allclose(pipe.transform(X), pipe["nmf"].transform(pipe["scale"].transform(X)))
    assert list(pipe.get_feature_names_out()) == ["nmf0", "nmf1", "nmf2"]
    pipe.set_params(nmf__n_components=2)
    assert pipe.fit_transform(X).shape == (120, 2)
    assert clone(pipe).get_params()["nmf__n_components"] == 2
    # NMF feeding another step.
    pipe2 = make_pipeline(NMF(n_components=3, random_state=0), MaxAbsScaler())
    assert pipe2.fit_transform(X).shape == (120, 3)


# --------------------------------------------------------------------------
# HyperSpy
# --------------------------------------------------------------------------

def test_hyperspy_decomposition():
    hs = pytest.importorskip("hyperspy.api")
    # A 16 x 16 spectral image of 64 channels: three Gaussian peaks on a
    # small background (the endmembers) mixed by random abundances (exact
    # rank 3), plus 1% Gaussian noise clipped at zero.
    rng = np.random.default_rng(0)
    channels = np.arange(64)
    spectra = np.stack([np.exp(-0.5 * ((channels - c) / 4.0) ** 2) for c in (12, 32, 50)])
    spectra += 0.05
    abundances = 100 * rng.dirichlet(np.ones(3), size=256)
    X = abundances @ spectra
    X = np.clip(X + rng.normal(scale=0.01 * X.std(), size=X.shape), 0, None)
    data = X.reshape(16, 16, 64)
    s = hs.signals.Signal1D(data.copy())

    # output_dimension is optional for a custom estimator (HyperSpy only
    # uses it to crop the result); it is given here as a user would.
    s.decomposition(algorithm=unmix.NMF(n_components=3, random_state=0), output_dimension=3)

    lr = s.learning_results
    assert lr.factors.shape == (64, 3)
    assert lr.loadings.shape == (256, 3)
    assert (lr.factors >= 0).all()
    assert (lr.loadings >= 0).all()
    # Treated as NMF: no mean subtracted, not centred.
    assert lr.mean is None
    assert lr.centre is None
    assert isinstance(lr.decomposition_algorithm, unmix.NMF)
    # HyperSpy's scree data comes from explained_variance_.
    assert_allclose(lr.explained_variance, lr.decomposition_algorithm.explained_variance_)
    assert_allclose(lr.explained_variance_ratio.sum(), 1.0)

    model = s.get_decomposition_model(3)
    assert model.data.shape == data.shape
    rel = np.linalg.norm(model.data - data) / np.linalg.norm(data)
    assert rel < 0.02
    # The model is loadings @ factors.T, folded back into the image.
    assert_allclose(model.data.reshape(256, 64), lr.loadings @ lr.factors.T)
