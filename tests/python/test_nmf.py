"""Properties of the function API :func:`unmix.nmf`, checked against numpy/scipy."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from conftest import SOLVERS, make_noisy, penalized_objective

import unmix

PENALTIES = [
    {},
    {"l1_W": 0.5},
    {"l1_H": 0.5},
    {"l2_W": 1.0},
    {"l2_H": 1.0},
    {"l1_W": 0.05, "l1_H": 0.1, "l2_W": 0.2, "l2_H": 0.3},
]
# Allowed increase of the objective between iterations, relative to its value:
# only rounding. float32 products carry ~1e-7 relative error per entry.
MONOTONE_RTOL = {np.float64: 1e-11, np.float32: 1e-5}
# The core computes the objective from Gram matrices, not from X - W H; it
# must agree with the direct computation to rounding.
OBJECTIVE_RTOL = {np.float64: 1e-9, np.float32: 1e-4}


def _pen_id(p):
    return ",".join(f"{k}={v}" for k, v in p.items()) or "none"


# --------------------------------------------------------------------------
# Objective: monotone, and what the docstring says it is
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("penalty", PENALTIES, ids=_pen_id)
@pytest.mark.parametrize("solver", SOLVERS)
def test_objective_never_increases_and_matches_numpy(solver, penalty, dtype):
    X = make_noisy(seed=2).astype(dtype)
    res = unmix.nmf(X, 6, solver=solver, max_iter=150, tol=0.0, random_state=0, **penalty)

    obj = res.objective
    assert obj.dtype == np.float64
    assert len(obj) == res.n_iter + 1 == len(res.rel_error)
    assert res.n_iter >= 10  # enough steps for the property to mean something
    assert np.all(np.isfinite(obj))
    increase = np.diff(obj)
    slack = MONOTONE_RTOL[dtype] * np.abs(obj[:-1])
    assert np.all(increase <= slack), (
        f"objective increased by up to {increase.max():.3e} "
        f"(at iteration {int(np.argmax(increase - slack)) + 1})"
    )
    # Something really happened.
    assert obj[-1] < 0.9 * obj[0]

    direct = penalized_objective(X, res.W, res.H, **penalty)
    assert res.objective[-1] == pytest.approx(direct, rel=OBJECTIVE_RTOL[dtype])

    # rel_error is ||X - WH|| / ||X||, data_norm is ||X||.
    Xd = X.astype(np.float64)
    assert res.data_norm == pytest.approx(np.linalg.norm(Xd), rel=OBJECTIVE_RTOL[dtype])
    rel = np.linalg.norm(Xd - res.W.astype(np.float64) @ res.H.astype(np.float64))
    rel /= np.linalg.norm(Xd)
    assert res.rel_error[-1] == pytest.approx(rel, rel=1e-6 if dtype == np.float64 else 1e-3)


def test_start_objective_is_that_of_the_initialization():
    """objective[0] is the penalized objective of the starting factors."""
    X = make_noisy(seed=3)
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((X.shape[0], 4)), rng.random((4, X.shape[1]))
    for solver in SOLVERS:
        res = unmix.nmf(X, 4, solver=solver, init="custom", W=W0, H=H0, max_iter=1,
                        tol=0.0, l1_W=0.1, l2_H=0.2)
        assert res.objective[0] == pytest.approx(
            penalized_objective(X, W0, H0, l1_W=0.1, l2_H=0.2), rel=1e-10)
        assert res.objective[1] < res.objective[0]


# --------------------------------------------------------------------------
# Factors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["nndsvda", "nndsvd", "nndsvdar", "random"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_factors_nonnegative_and_shaped(solver, init):
    if solver == "mu" and init == "nndsvd":
        init = "nndsvda"
    X = make_noisy(seed=4, shape=(30, 50))
    res = unmix.nmf(X, 7, solver=solver, init=init, max_iter=30, random_state=0,
                    l1_H=0.01)
    assert res.W.shape == (30, 7) and res.H.shape == (7, 50)
    assert res.W.dtype == res.H.dtype == np.float64
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))


@pytest.mark.parametrize("solver", ["hals", "bpp"])
@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_exact_low_rank_recovered(low_rank, solver, init):
    X, W_true, H_true = low_rank
    t0 = time.perf_counter()
    res = unmix.nmf(X, 5, solver=solver, init=init, tol=1e-14, max_iter=20000,
                    random_state=0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10  # a hang guard, not a speed test
    err = np.linalg.norm(X - res.W @ res.H) / np.linalg.norm(X)
    assert err <= 1e-6, f"relative error {err:.3e} after {res.n_iter} iterations"

    # The factorization is essentially unique: the recovered spectra are the
    # true ones up to order and scale.
    def unit_rows(A):
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    cos = unit_rows(res.H) @ unit_rows(H_true).T
    best = cos.max(axis=0)
    assert np.all(best > 1 - 1e-6), best


# --------------------------------------------------------------------------
# BPP's NNLS is exact (transform solves one NNLS per row)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_estimator():
    X = make_noisy(seed=5, shape=(60, 30))
    # scikit-learn's model: transform is then the exact NNLS on components_.
    est = unmix.NMF(n_components=8, tol=1e-4, max_iter=2000, random_state=0, sum_to_one=False,
                    noise="gaussian")
    est.fit(X)
    H = est.components_
    assert np.linalg.cond(H) < 1e4  # a well-posed NNLS
    return est


def _rows_with_active_constraints(H, n, seed):
    """Non-negative rows c @ H + noise with half of c negative (then clipped):
    many NNLS coefficients end on the constraint w >= 0."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n, H.shape[0]))
    return np.maximum(C @ H + 0.05 * rng.random((n, H.shape[1])), 0.0)


def _transform_rows(est, X_new, **penalties):
    est.set_params(**penalties)
    try:
        return est.transform(X_new)
    finally:
        est.set_params(l1_W=0.0, l2_W=0.0)


def test_bpp_nnls_matches_scipy(fitted_estimator):
    est = fitted_estimator
    H = est.components_
    X_new = _rows_with_active_constraints(H, 80, seed=6)
    W = _transform_rows(est, X_new)
    assert W.shape == (80, 8)
    ref = np.array([scipy.optimize.nnls(H.T, x)[0] for x in X_new])
    zero_fraction = np.mean(ref == 0)
    assert zero_fraction > 0.3, f"test data too easy: only {zero_fraction:.0%} active"
    assert np.sum(ref.max(axis=1) > 0) > 60
    for i, (w, r) in enumerate(zip(W, ref)):
        scale = np.abs(r).max()  # 0 for a row whose solution is w = 0: exact then
        assert np.abs(w - r).max() <= 1e-10 * scale, (i, w, r)
        np.testing.assert_array_equal(w == 0, r == 0, err_msg=f"active set of row {i}")


def test_bpp_nnls_with_penalties_matches_scipy(fitted_estimator):
    """The W penalties as augmented least squares:
    min 1/2||x - wH||^2 + l1 sum(w) + 1/2 l2 ||w||^2, w >= 0, is
    nnls([H.T; sqrt(l2) I], [x - l1 * 1^T (H H^T)^-1 H; 0]): both have the
    gradient w (H H^T + l2 I) - x H^T + l1 1."""
    est = fitted_estimator
    H = est.components_
    k = H.shape[0]
    X_new = _rows_with_active_constraints(H, 40, seed=7)
    l1, l2 = 0.05, 0.3
    W = _transform_rows(est, X_new, l1_W=l1, l2_W=l2)
    A = np.vstack([H.T, np.sqrt(l2) * np.eye(k)])
    shift = l1 * np.linalg.solve(H @ H.T, np.ones(k)) @ H
    ref = np.array(
        [scipy.optimize.nnls(A, np.concatenate([x - shift, np.zeros(k)]))[0] for x in X_new]
    )
    assert np.mean(ref == 0) > 0.3
    for w, r in zip(W, ref):
        assert np.abs(w - r).max() <= 1e-10 * np.abs(r).max(), (w, r)


# --------------------------------------------------------------------------
# Input formats: sparse, layout, dtype
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_equals_dense(solver, fmt):
    X = make_noisy(seed=8, shape=(50, 35), zero_fraction=0.5)
    kw = dict(solver=solver, init="random", random_state=42, tol=0.0, max_iter=25)
    dense = unmix.nmf(X, 4, **kw)
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    assert Xs.format == fmt and Xs.nnz < 0.6 * X.size
    sparse = unmix.nmf(Xs, 4, **kw)
    assert sparse.n_iter == dense.n_iter == 25
    np.testing.assert_allclose(sparse.W, dense.W, rtol=1e-9, atol=1e-12 * dense.W.max())
    np.testing.assert_allclose(sparse.H, dense.H, rtol=1e-9, atol=1e-12 * dense.H.max())
    np.testing.assert_allclose(sparse.objective, dense.objective, rtol=1e-10)
    assert sparse.data_norm == pytest.approx(dense.data_norm, rel=1e-14)


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_float32_and_int64_indices(solver):
    X = make_noisy(seed=9, shape=(40, 30), zero_fraction=0.5)
    kw = dict(solver=solver, init="random", random_state=1, tol=0.0, max_iter=10)
    ref = unmix.nmf(X, 3, **kw)
    X64 = sp.csr_matrix(X)
    X64.indptr = X64.indptr.astype(np.int64)
    X64.indices = X64.indices.astype(np.int64)
    res64 = unmix.nmf(X64, 3, **kw)
    np.testing.assert_allclose(res64.W, ref.W, rtol=1e-9, atol=1e-12)
    res32 = unmix.nmf(sp.csc_matrix(X, dtype=np.float32), 3, **kw)
    assert res32.W.dtype == res32.H.dtype == np.float32
    assert np.abs(res32.W - ref.W).max() <= 1e-3 * ref.W.max()


@pytest.mark.parametrize("solver", SOLVERS)
def test_other_sparse_formats_and_duplicates(solver):
    X = make_noisy(seed=10, shape=(30, 20), zero_fraction=0.5)
    kw = dict(solver=solver, init="random", random_state=1, tol=0.0, max_iter=10)
    ref = unmix.nmf(X, 3, **kw)
    coo = sp.coo_matrix(X)
    # Split every entry into two duplicates that sum to it.
    dup = sp.coo_matrix(
        (np.concatenate([coo.data * 0.25, coo.data * 0.75]),
         (np.concatenate([coo.row, coo.row]), np.concatenate([coo.col, coo.col]))),
        shape=X.shape,
    )
    for M in (coo, dup, dup.tocsr(), sp.lil_matrix(X)):
        res = unmix.nmf(M, 3, **kw)
        np.testing.assert_allclose(res.W, ref.W, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_memory_order_does_not_matter(solver, init):
    X = make_noisy(seed=11, shape=(45, 30))
    kw = dict(solver=solver, init=init, random_state=7, tol=0.0, max_iter=20)
    C = unmix.nmf(np.ascontiguousarray(X), 4, **kw)
    F = unmix.nmf(np.asfortranarray(X), 4, **kw)
    strided = unmix.nmf(np.repeat(X, 2, axis=1)[:, ::2], 4, **kw)  # neither C nor F
    for other in (F, strided):
        np.testing.assert_allclose(other.W, C.W, rtol=1e-10, atol=1e-10 * C.W.max())
        np.testing.assert_allclose(other.H, C.H, rtol=1e-10, atol=1e-10 * C.H.max())
    Rr = unmix.nmf(sp.csr_matrix(X), 4, **kw)
    Rc = unmix.nmf(sp.csc_matrix(X), 4, **kw)
    np.testing.assert_allclose(Rr.W, Rc.W, rtol=1e-10, atol=1e-10 * Rc.W.max())
    np.testing.assert_allclose(Rr.H, Rc.H, rtol=1e-10, atol=1e-10 * Rc.H.max())


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_stays_float32_and_agrees_with_float64(solver):
    X = make_noisy(seed=12, shape=(50, 40))
    rng = np.random.default_rng(3)
    W0 = rng.random((50, 5))
    H0 = rng.random((5, 40))
    kw = dict(solver=solver, tol=0.0, max_iter=5, random_state=0)  # the seed of any re-seeding
    r64 = unmix.nmf(X, 5, init="custom", W=W0, H=H0, **kw)
    r32 = unmix.nmf(X.astype(np.float32), 5, init="custom", W=W0.astype(np.float32),
                    H=H0.astype(np.float32), **kw)
    assert r64.W.dtype == r64.H.dtype == np.float64
    assert r32.W.dtype == r32.H.dtype == np.float32
    assert r32.n_iter == r64.n_iter == 5
    for a32, a64 in ((r32.W, r64.W), (r32.H, r64.H)):
        rel = np.linalg.norm(a32.astype(np.float64) - a64) / np.linalg.norm(a64)
        assert rel < 1e-3
        assert rel > 0  # really computed in single precision
    np.testing.assert_allclose(r32.objective, r64.objective, rtol=1e-4)

    # A random start in single precision is the double one, rounded.
    k32 = unmix.nmf(X.astype(np.float32), 5, solver=solver, init="random", random_state=3,
                    tol=0.0, max_iter=3)
    k64 = unmix.nmf(X, 5, solver=solver, init="random", random_state=3, tol=0.0, max_iter=3)
    assert np.abs(k32.W - k64.W).max() <= 1e-3 * k64.W.max()


def test_more_input_forms_give_the_same_result(tmp_path):
    """Read-only and memory-mapped arrays, non-native byte order, scipy sparse
    arrays, unsorted sparse indices and stored zeros all give the same fit."""
    X = make_noisy(seed=28, shape=(30, 20), zero_fraction=0.5)
    kw = dict(init="random", random_state=0, tol=0.0, max_iter=8)
    ref = unmix.nmf(X, 3, **kw)

    readonly = X.copy()
    readonly.setflags(write=False)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    mapped = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)

    A = sp.csr_matrix(X)
    indices, data = A.indices.copy(), A.data.copy()
    for i in range(A.shape[0]):  # reverse the column order inside every row
        a, b = A.indptr[i], A.indptr[i + 1]
        indices[a:b], data[a:b] = indices[a:b][::-1], data[a:b][::-1]
    unsorted = sp.csr_matrix((data, indices, A.indptr), shape=A.shape)
    assert not unsorted.has_sorted_indices
    stored_zeros = sp.csr_matrix(X + 1.0)
    stored_zeros.data -= 1.0  # the zeros of X become explicitly stored zeros
    assert stored_zeros.nnz == X.size

    forms = {
        "readonly": readonly, "memmap": mapped, "big-endian": X.astype(">f8"),
        "csr_array": sp.csr_array(X), "csc_array": sp.csc_array(X),
        "coo_array": sp.coo_array(X), "unsorted": unsorted, "stored zeros": stored_zeros,
    }
    for name, data in forms.items():
        res = unmix.nmf(data, 3, **kw)
        assert res.W.dtype == np.float64, name
        np.testing.assert_allclose(res.W, ref.W, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(res.H, ref.H, rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(np.asarray(mapped), X)  # and nothing wrote to it


def test_single_row_and_single_column():
    for X in (np.full((1, 5), 2.0), np.full((5, 1), 2.0)):
        res = unmix.nmf(X, 1, tol=1e-12, max_iter=50)
        np.testing.assert_allclose(res.W @ res.H, X, rtol=1e-10)


def test_integer_bool_and_list_input_become_float64():
    X = make_noisy(seed=13, shape=(20, 15))
    Xi = np.round(10 * X).astype(np.int32)
    kw = dict(init="random", random_state=0, tol=0.0, max_iter=10)
    ref = unmix.nmf(Xi.astype(np.float64), 3, **kw)
    for data in (Xi, Xi.astype(np.uint8), Xi.astype(np.int64), Xi.tolist(),
                 Xi.astype(np.float16)):
        res = unmix.nmf(data, 3, **kw)
        assert res.W.dtype == res.H.dtype == np.float64
        np.testing.assert_allclose(res.W, ref.W, rtol=1e-12, atol=1e-14)
    Xb = X > 0.5
    res = unmix.nmf(Xb, 3, **kw)
    assert res.W.dtype == np.float64
    ref_b = unmix.nmf(Xb.astype(np.float64), 3, **kw)
    np.testing.assert_array_equal(res.W, ref_b.W)
    res = unmix.nmf(sp.csr_matrix(Xi), 3, **kw)
    assert res.W.dtype == np.float64
    np.testing.assert_allclose(res.W, ref.W, rtol=1e-9, atol=1e-12)


def test_input_is_not_modified():
    X = make_noisy(seed=14, shape=(20, 15))
    copy = X.copy()
    Xs = sp.csr_matrix(X)
    data = Xs.data.copy()
    unmix.nmf(X, 3, max_iter=5)
    unmix.nmf(Xs, 3, max_iter=5)
    np.testing.assert_array_equal(X, copy)
    np.testing.assert_array_equal(Xs.data, data)
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((20, 3)), rng.random((3, 15))
    W0c, H0c = W0.copy(), H0.copy()
    res = unmix.nmf(X, 3, init="custom", W=W0, H=H0, max_iter=5)
    np.testing.assert_array_equal(W0, W0c)
    np.testing.assert_array_equal(H0, H0c)
    assert not np.shares_memory(res.W, W0)


def test_default_init_when_k_exceeds_min_shape():
    X = make_noisy(seed=15, shape=(6, 40))
    with pytest.warns(UserWarning, match=r"n_components=10 is above min\(n_samples, n_features\) = 6"):
        res = unmix.nmf(X, 10, max_iter=20, random_state=0)  # nndsvda impossible: random
    assert res.W.shape == (6, 10) and res.H.shape == (10, 40)
    assert np.all(res.W >= 0) and np.all(res.H >= 0)


# --------------------------------------------------------------------------
# Penalties
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["bpp", "hals"])
def test_l1_makes_factors_sparser(solver):
    X = make_noisy(seed=16, shape=(60, 40))
    # nndsvd: the filled start of nndsvda has zeros only where the fit puts them.
    kw = dict(solver=solver, init="nndsvd", random_state=0, max_iter=200, tol=1e-8)
    base = unmix.nmf(X, 6, **kw)
    sW = unmix.nmf(X, 6, l1_W=1.0, **kw)
    sH = unmix.nmf(X, 6, l1_H=1.0, **kw)
    zeros = lambda A: int(np.count_nonzero(A == 0))  # noqa: E731
    assert zeros(sW.W) > zeros(base.W) + 0.1 * base.W.size
    assert zeros(sH.H) > zeros(base.H) + 0.1 * base.H.size
    # and the fit is still a fit: the components did not all die
    assert sW.rel_error[-1] < 0.5 and sH.rel_error[-1] < 0.5


@pytest.mark.parametrize("solver", SOLVERS)
def test_l2_shrinks_the_penalized_factor(solver):
    X = make_noisy(seed=17, shape=(60, 40))
    kw = dict(solver=solver, init="nndsvda", random_state=0, max_iter=200, tol=1e-8)
    base = unmix.nmf(X, 5, **kw)
    rW = unmix.nmf(X, 5, l2_W=5.0, **kw)
    rH = unmix.nmf(X, 5, l2_H=5.0, **kw)
    assert np.linalg.norm(rW.W) < 0.9 * np.linalg.norm(base.W)
    assert np.linalg.norm(rH.H) < 0.9 * np.linalg.norm(base.H)


# --------------------------------------------------------------------------
# Randomness
# --------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["random", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_same_seed_same_result(solver, init):
    X = make_noisy(seed=18, shape=(40, 30))
    kw = dict(solver=solver, init=init, tol=0.0, max_iter=15)
    a = unmix.nmf(X, 4, random_state=123, **kw)
    b = unmix.nmf(X, 4, random_state=123, **kw)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    np.testing.assert_array_equal(a.objective, b.objective)
    c = unmix.nmf(X, 4, random_state=np.random.RandomState(5), **kw)
    d = unmix.nmf(X, 4, random_state=np.random.RandomState(5), **kw)
    np.testing.assert_array_equal(c.W, d.W)
    e = unmix.nmf(X, 4, random_state=np.random.default_rng(5), **kw)
    f = unmix.nmf(X, 4, random_state=np.random.default_rng(5), **kw)
    np.testing.assert_array_equal(e.W, f.W)


@pytest.mark.parametrize("solver", SOLVERS)
def test_different_seeds_differ_with_random_init(solver):
    X = make_noisy(seed=19, shape=(40, 30))
    kw = dict(solver=solver, init="random", tol=0.0, max_iter=3)
    a = unmix.nmf(X, 4, random_state=1, **kw)
    b = unmix.nmf(X, 4, random_state=2, **kw)
    assert np.abs(a.W - b.W).max() > 1e-3 * a.W.max()
    assert a.objective[0] != b.objective[0]


def test_random_state_none_uses_numpy_global_state():
    X = make_noisy(seed=20, shape=(30, 20))
    kw = dict(init="random", tol=0.0, max_iter=3)
    np.random.seed(0)
    a = unmix.nmf(X, 3, **kw)
    np.random.seed(0)
    b = unmix.nmf(X, 3, **kw)
    np.testing.assert_array_equal(a.W, b.W)
    c = unmix.nmf(X, 3, **kw)  # the global state moved on
    assert not np.array_equal(a.W, c.W)


# --------------------------------------------------------------------------
# Callback, progress bar, stopping
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_callback_sees_every_iteration(solver):
    X = make_noisy(seed=21, shape=(30, 20))
    seen = []

    def cb(info):
        assert isinstance(info, unmix.IterationInfo)
        seen.append(info)

    res = unmix.nmf(X, 3, solver=solver, tol=0.0, max_iter=12, callback=cb)
    assert [i.iteration for i in seen] == list(range(1, 13))
    np.testing.assert_array_equal([i.objective for i in seen], res.objective[1:])
    np.testing.assert_array_equal([i.rel_error for i in seen], res.rel_error[1:])
    elapsed = [i.elapsed for i in seen]
    assert elapsed[0] >= 0 and np.all(np.diff(elapsed) >= 0)
    assert res.stop_reason == "max_iter"


def test_callback_returning_true_stops():
    X = make_noisy(seed=22, shape=(30, 20))
    calls = []

    def cb(info):
        calls.append(info.iteration)
        return info.iteration == 3

    res = unmix.nmf(X, 3, tol=0.0, max_iter=100, callback=cb)
    assert calls == [1, 2, 3]
    assert res.n_iter == 3
    assert res.stop_reason == "callback"
    assert res.converged is False
    assert len(res.objective) == 4
    # Truthy values other than True count; falsy ones don't.
    res = unmix.nmf(X, 3, tol=0.0, max_iter=5, callback=lambda info: 0)
    assert res.stop_reason == "max_iter"
    res = unmix.nmf(X, 3, tol=0.0, max_iter=5, callback=lambda info: "stop")
    assert res.stop_reason == "callback" and res.n_iter == 1


def test_callback_exception_propagates_unchanged():
    X = make_noisy(seed=23, shape=(30, 20))

    class Boom(Exception):
        pass

    err = Boom("from the callback")
    calls = []

    def cb(info):
        calls.append(info.iteration)
        if info.iteration == 2:
            raise err

    with pytest.raises(Boom, match="from the callback") as excinfo:
        unmix.nmf(X, 3, tol=0.0, max_iter=50, callback=cb)
    assert excinfo.value is err
    assert calls == [1, 2]
    # The module is still usable afterwards.
    res = unmix.nmf(X, 3, tol=0.0, max_iter=2)
    assert res.n_iter == 2


def test_callback_not_callable():
    with pytest.raises(TypeError, match="callback must be callable.*42"):
        unmix.nmf(np.ones((4, 3)), 1, callback=42)


def test_verbose_shows_a_progress_bar(capsys):
    X = make_noisy(seed=24, shape=(30, 20))
    res = unmix.nmf(X, 3, solver="hals", tol=0.0, max_iter=7, verbose=True)
    assert res.n_iter == 7
    out, err = capsys.readouterr()
    assert out == ""
    assert "nmf (hals)" in err
    assert "7/7" in err
    assert "rel_error=" in err


def test_verbose_with_callback(capsys):
    X = make_noisy(seed=24, shape=(30, 20))
    res = unmix.nmf(X, 3, tol=0.0, max_iter=50, verbose=True,
                    callback=lambda info: info.iteration >= 4)
    assert res.stop_reason == "callback" and res.n_iter == 4
    assert "nmf (bpp)" in capsys.readouterr().err


def test_stop_max_iter():
    X = make_noisy(seed=25)
    res = unmix.nmf(X, 5, tol=0.0, max_iter=4, solver="mu")
    assert res.stop_reason == "max_iter"
    assert res.converged is False
    assert res.n_iter == 4


@pytest.mark.parametrize("solver", SOLVERS)
def test_stop_tol(solver):
    X = make_noisy(seed=25)
    res = unmix.nmf(X, 5, solver=solver, tol=1e-2, max_iter=1000)
    assert res.stop_reason == "tol"
    assert res.converged is True
    assert res.n_iter < 1000
    f = res.objective
    assert f[-2] - f[-1] <= 1e-2 * abs(f[-2])
    # every earlier iteration decreased by more than tol
    assert np.all(f[:-2] - f[1:-1] > 1e-2 * np.abs(f[:-2]))


def test_stop_time_limit():
    X = make_noisy(seed=26, shape=(200, 150))
    t0 = time.perf_counter()
    res = unmix.nmf(X, 10, solver="mu", tol=0.0, max_iter=10**8, time_limit=0.2)
    elapsed = time.perf_counter() - t0
    assert res.stop_reason == "time_limit"
    assert res.converged is False
    assert 0 < res.n_iter < 10**8
    assert elapsed < 10  # hang guard
    assert res.timings["total"] >= 0.2


def test_result_fields():
    X = make_noisy(seed=27, shape=(30, 20))
    res = unmix.nmf(X, 3, max_iter=5, tol=0.0)
    assert isinstance(res, unmix.NMFResult)
    assert set(res.timings) == {"init", "products", "gram", "update", "total"}
    assert all(v >= 0 for v in res.timings.values())
    assert res.timings["total"] >= res.timings["update"]
    assert isinstance(res.n_iter, int) and isinstance(res.converged, bool)
    assert res.data_norm == pytest.approx(np.linalg.norm(X), rel=1e-12)


def test_zero_matrix():
    """All-zero data: W H = 0 is exact; nothing divides by ||X|| = 0."""
    res = unmix.nmf(np.zeros((5, 4)), 2, init="random", random_state=0, max_iter=10)
    assert res.data_norm == 0
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert np.allclose(res.W @ res.H, 0)


# --------------------------------------------------------------------------
# No silent wrong answers: more components than channels, extreme scales,
# the error of a near-exact fit
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["bpp", "hals", "mu"])
def test_more_components_than_channels_stays_monotone_and_warns(solver):
    # BPP went 0.507, 1748.8, 0.474, 3249, ... with W near 1e7, 3 s per iteration.
    X = np.random.default_rng(0).random((400, 16))
    with pytest.warns(UserWarning, match=r"n_components=100 is above min\(n_samples, n_features\) = 16"):
        r = unmix.nmf(X, 100, solver=solver, init="random", max_iter=10, tol=0, random_state=0)
    assert np.all(np.diff(r.objective) <= MONOTONE_RTOL[np.float64] * r.objective[:-1])
    assert r.rel_error[-1] < r.rel_error[0]
    assert r.W.max() < 100 and r.H.max() < 100
    assert r.rel_error[-1] == pytest.approx(np.linalg.norm(X - r.W @ r.H) / np.linalg.norm(X),
                                            rel=1e-9)


def _rank_one(dtype, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = np.outer(rng.random(300), rng.random(40)) * (1 + noise * rng.standard_normal((300, 40)))
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("noise", [0.0, 1e-4])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_rel_error_of_a_near_exact_fit_is_the_residual(dtype, noise, sparse):
    # The Gram-matrix form reported 5.8e-8 for a true 4e-16 (float64), and 0
    # for a true 1e-4 (float32), where it also stopped on tol.
    X = _rank_one(dtype, noise)
    r = unmix.nmf(sp.csr_matrix(X) if sparse else X, 1, random_state=0, tol=1e-6)
    Xd = X.astype(np.float64)
    truth = np.linalg.norm(Xd - r.W.astype(np.float64) @ r.H.astype(np.float64)) / np.linalg.norm(Xd)
    assert abs(r.rel_error[-1] - truth) <= 0.01 * truth + 4 * np.finfo(dtype).eps


@pytest.mark.parametrize("dtype,exponents", [(np.float64, (-700, -990, 540)),
                                             (np.float32, (-100, -60, 64))], ids=["f64", "f32"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_data_beyond_the_core_range_fits_exactly_as_rescaled(dtype, exponents, sparse):
    # X = 2^e X0 is fitted as X0 and scaled back: every number equal.
    X0 = np.random.default_rng(1).random((60, 25)).astype(dtype)  # max in [1/2, 1)
    as_input = sp.csr_matrix if sparse else np.asarray
    ref = unmix.nmf(as_input(X0), 4, random_state=0, max_iter=30)
    for e in exponents:
        r = unmix.nmf(as_input(np.ldexp(X0, e)), 4, random_state=0, max_iter=30)
        np.testing.assert_array_equal(r.rel_error, ref.rel_error)
        np.testing.assert_array_equal(r.W, np.ldexp(ref.W, e // 2))
        np.testing.assert_array_equal(r.H, np.ldexp(ref.H, e - e // 2))
        with np.errstate(over="ignore"):  # 2^1080 is inf in float64, as the fit reports
            np.testing.assert_array_equal(r.objective, np.ldexp(ref.objective, 2 * e))
        assert r.data_norm == np.ldexp(ref.data_norm, e)
        assert r.W.dtype == dtype


@pytest.mark.parametrize("dtype,scale", [(np.float64, 1e-200), (np.float64, 1e-300),
                                         (np.float64, 1e160), (np.float32, 1e-38),
                                         (np.float32, 1e20)])
def test_tiny_and_huge_data_report_their_true_error(dtype, scale):
    # 1e-200 in float64 reported 0 for a true 0.494; 1e-250 and 1e-300 gave
    # W = H = 0, stopped on tol; float32 near 1e-38 reported 1.32 for 0.503.
    X0 = np.random.default_rng(0).random((200, 50))
    X = (X0 * scale).astype(dtype)
    r = unmix.nmf(X, 5, random_state=0, max_iter=50)
    unit = 1 / float(X.max())  # the residual in units where it neither under- nor overflows
    W, H = r.W.astype(np.float64) * np.sqrt(unit), r.H.astype(np.float64) * np.sqrt(unit)
    Xu = X.astype(np.float64) * unit
    truth = np.linalg.norm(Xu - W @ H) / np.linalg.norm(Xu)
    assert truth < 0.5
    assert r.rel_error[-1] == pytest.approx(truth, rel=1e-4 if dtype == np.float32 else 1e-9)


def test_data_beyond_the_core_range_with_penalties_is_refused_with_the_fix():
    X = np.random.default_rng(0).random((30, 10)) * 1e-200
    with pytest.raises(ValueError, match=r"largest value of X must be between 4.9e-150 and 2e\+149 "
                                         r"in float64, got 1e-200: multiply X by a power of ten "
                                         r"such as 1e\+200"):
        unmix.nmf(X, 2, l1_W=0.1, random_state=0)
