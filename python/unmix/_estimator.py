"""The scikit-learn estimator :class:`NMF`."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, Optional, Union

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._nmf import _fit, nnls_abundances
from ._validation import INITS, LOSSES, SOLVERS


class NMF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    r"""Non-negative matrix factorization, a drop-in for scikit-learn's ``NMF``.

    Finds ``W >= 0`` (n_samples, n_components) and ``H >= 0``
    (n_components, n_features) minimizing

    .. math::

        \tfrac12 \|X - WH\|_F^2
        + \lambda^{(1)}_W \|W\|_1 + \tfrac12 \lambda^{(2)}_W \|W\|_F^2
        + \lambda^{(1)}_H \|H\|_1 + \tfrac12 \lambda^{(2)}_H \|H\|_F^2 .

    ``fit_transform`` returns ``W`` (for a spectral image: the abundances,
    one row per pixel) and ``components_`` is ``H`` (the endmember spectra),
    with ``X ≈ W @ H``. See :func:`unmix.nmf` for the parameters;
    ``n_components=None`` keeps all ``n_features`` components. A fit that
    stops at ``max_iter`` emits a :class:`~sklearn.exceptions.ConvergenceWarning`.

    By default (``noise="auto"``, ``sum_to_one="scaled"``) the estimator
    fits what :func:`unmix.unmix` fits: the noise model chosen from the
    data (counts weighted for Poisson noise), fractions with a per-pixel
    intensity and a minimum-volume term weighted from the data; then
    ``components_`` are the endmembers in the data's units,
    ``fit_transform`` returns ``intensity * fractions`` (so that
    ``W @ components_`` is the model), and ``fractions_``,
    ``intensity_`` and ``unmixing_`` hold the rest. ``sum_to_one=False``
    with Gaussian noise is plain NMF, scikit-learn's model.

    The estimator does not centre the data and has no ``mean_``, so HyperSpy's
    ``s.decomposition(algorithm=unmix.NMF(...))`` treats its result as NMF.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
    n_components_ : int
    reconstruction_err_ : float
        Frobenius norm of ``X - W @ H`` at the end of the fit, computed
        directly (in blocks, summed in float64).
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has feature names
    objective_ : ndarray
        Penalized objective per iteration, ``[0]`` at the start.
    weights_ : dict
        The weights given as ``"auto"``, as the numbers used, and the noise
        variance they were computed from (``NMFResult.weights``).
    fractions_, intensity_ : ndarray
        The fraction models: each sample's fractions (rows summing to one)
        and intensity, ``W = intensity_[:, None] * fractions_``.
    noise_ : str
        The noise model used ("poisson" or "gaussian").
    unmixing_ : Unmixing or None
        The full result of the fraction models (params, events, figures).
    explained_variance_ : ndarray of shape (n_components,)
        Per component, the energy of its rank-one term ``W[:, i] H[i]`` per
        sample: ``||W[:, i]||² ||H[i]||² / n_samples`` (float64), in the
        order of ``components_``. HyperSpy reads it for its scree plot. The
        rank-one terms of an NMF are not orthogonal, so unlike PCA's these
        values need not add up to the variance (or the energy) of the data,
        and the components are not sorted by them.
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions(set(SOLVERS)), None],
        "loss": [StrOptions(set(LOSSES))],
        "init": [StrOptions(set(INITS) - {"custom"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "l1_W": [Interval(Real, 0, None, closed="left")],
        "l1_H": [Interval(Real, 0, None, closed="left")],
        "l2_W": [Interval(Real, 0, None, closed="left")],
        "l2_H": [Interval(Real, 0, None, closed="left")],
        "verbose": ["boolean"],
        "extrapolate": ["boolean"],
        "sum_to_one": ["boolean", StrOptions({"scaled"})],
        "noise": [StrOptions({"auto", "poisson", "gaussian"})],
        "graph_W": ["sparse matrix", None],
        "graph_H": ["sparse matrix", None],
        "smooth_W": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "smooth_H": [Interval(Real, 0, None, closed="left")],
        "bounds_W": [tuple, None],
        "bounds_H": [tuple, None],
        "fixed_H": ["array-like", None],
        "minvol_H": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"}), None],
    }

    def __init__(
        self,
        n_components: Optional[int] = None,
        *,
        solver: Optional[str] = None,
        init: Optional[str] = None,
        loss: str = "frobenius",
        max_iter: int = 500,
        tol: float = 1e-5,
        random_state: Any = None,
        l1_W: float = 0.0,
        l1_H: float = 0.0,
        l2_W: float = 0.0,
        l2_H: float = 0.0,
        verbose: bool = False,
        extrapolate: bool = False,
        sum_to_one: Union[bool, str] = "scaled",
        noise: str = "auto",
        graph_W: Any = None,
        graph_H: Any = None,
        smooth_W: Union[float, str] = 0.0,
        smooth_H: float = 0.0,
        bounds_W: Optional[tuple[Any, Any]] = None,
        bounds_H: Optional[tuple[Any, Any]] = None,
        fixed_H: Any = None,
        minvol_H: Union[float, str, None] = None,
    ) -> None:
        self.n_components = n_components
        self.solver = solver
        self.init = init
        self.loss = loss
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.l1_W = l1_W
        self.l1_H = l1_H
        self.l2_W = l2_W
        self.l2_H = l2_H
        self.verbose = verbose
        self.extrapolate = extrapolate
        self.sum_to_one = sum_to_one
        self.noise = noise
        self.graph_W = graph_W
        self.graph_H = graph_H
        self.smooth_W = smooth_W
        self.smooth_H = smooth_H
        self.bounds_W = bounds_W
        self.bounds_H = bounds_H
        self.fixed_H = fixed_H
        self.minvol_H = minvol_H

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X: Any, reset: bool) -> Any:
        return validate_data(self, X, accept_sparse=("csr", "csc"),
                             dtype=[np.float64, np.float32], reset=reset)

    def _penalties(self) -> dict[str, Any]:
        return {"l1_W": self.l1_W, "l1_H": self.l1_H, "l2_W": self.l2_W, "l2_H": self.l2_H}

    def _constraints(self) -> dict[str, Any]:
        return {"sum_to_one": self.sum_to_one, "graph_W": self.graph_W, "graph_H": self.graph_H,
                "smooth_W": self.smooth_W, "smooth_H": self.smooth_H,
                "bounds_W": self.bounds_W, "bounds_H": self.bounds_H, "fixed_H": self.fixed_H,
                "minvol_H": 0.0 if self.minvol_H is None else self.minvol_H}

    def _plain(self, X: Any) -> bool:
        """Whether the fit is plain NMF on X as given (scikit-learn's model)."""
        if isinstance(self.sum_to_one, str) or bool(self.sum_to_one):  # "scaled" or True
            return False
        from .noise import choose

        return choose(X, None, self.noise).model == "gaussian"

    def _fit_unmixing(self, X: Any, k: int) -> np.ndarray:
        """The fraction models (and plain NMF of counts) through
        :func:`unmix.unmix`'s fit; returns W with ``X ≈ W @ components_``."""
        from .image import SpectralImage
        from .workflow import _unmix

        options: dict[str, Any] = dict(
            solver=self.solver, loss=self.loss, max_iter=self.max_iter, tol=self.tol,
            extrapolate=self.extrapolate, verbose=self.verbose, **self._penalties(),
            **{name: value for name, value in self._constraints().items()
               if name not in ("sum_to_one", "minvol_H")})
        if self.init is not None:
            options["init"] = self.init
        if self.minvol_H is not None:
            options["minvol_H"] = self.minvol_H
        options = {name: value for name, value in options.items() if value is not None}
        dense = X.toarray() if sp.issparse(X) else X
        u, _, _ = _unmix(SpectralImage(dense), dense, k, 1, self.random_state, None,
                         {**options, "sum_to_one": self.sum_to_one}, "NMF", noise=self.noise)
        k = u.n_components
        W = (u.abundances.reshape(-1, k) * u.intensity.reshape(-1, 1)).astype(X.dtype, copy=False)
        H = u.endmembers.astype(X.dtype, copy=False)
        self.unmixing_ = u
        self.noise_ = u.params["noise"]
        self.fractions_ = u.abundances
        self.intensity_ = u.intensity
        self._fit_space = (u.column_weights, u.result.H[u.order], u.scales, u.params["model"])
        self.n_iter_ = u.result.n_iter
        self.objective_ = u.result.objective
        self.weights_ = u.params["weights"]
        self.components_ = H
        self._warn_if_max_iter(u.result.stop_reason, stacklevel=4)
        return W

    def _warn_if_max_iter(self, stop_reason: str, stacklevel: int) -> None:
        if stop_reason == "max_iter":
            warnings.warn(
                f"Maximum number of iterations {self.max_iter} reached before the "
                f"objective decreased by less than tol={self.tol}; increase max_iter.",
                ConvergenceWarning,
                stacklevel=stacklevel,
            )

    def fit_transform(self, X: Any, y: Any = None, W: Optional[np.ndarray] = None,
                      H: Optional[np.ndarray] = None) -> np.ndarray:
        """Learns the components from X and returns W (n_samples, n_components).

        ``W`` and ``H`` given together start the fit from them.
        """
        self._validate_params()
        X = self._validate(X, reset=True)
        k = self.n_components if self.n_components is not None else X.shape[1]
        if not self._plain(X):
            if W is not None or H is not None:
                raise ValueError("W and H starts are taken by the plain model: pass "
                                 "sum_to_one=False (and noise='gaussian' for counts), got "
                                 f"sum_to_one={self.sum_to_one!r}")
            W_out = self._fit_unmixing(X, k)
            self.n_components_ = k
            self.reconstruction_err_ = _frobenius_residual(X, W_out, self.components_)
            self.explained_variance_ = _rank_one_energies(W_out, self.components_)
            return W_out
        self.unmixing_ = None
        self.noise_ = "gaussian"
        self._fit_space = None
        result = _fit(
            X, k, solver=self.solver, init=self.init, loss=self.loss, max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state, W=W, H=H, callback=None,
            verbose=self.verbose, time_limit=None, extrapolate=self.extrapolate,
            **self._penalties(), **self._constraints(),
        )
        self._warn_if_max_iter(result.stop_reason, stacklevel=3)
        self.components_ = result.H
        self.fractions_ = self.intensity_ = None
        self.n_components_ = k
        self.n_iter_ = result.n_iter
        self.objective_ = result.objective
        self.weights_ = result.weights
        self.reconstruction_err_ = _frobenius_residual(X, result.W, result.H)
        self.explained_variance_ = _rank_one_energies(result.W, result.H)
        return result.W

    def fit(self, X: Any, y: Any = None, **params: Any) -> "NMF":
        """Learns the components from X."""
        self.fit_transform(X, **params)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The abundances of new data: for each row of X, the exact
        non-negative least-squares fit on the learned components, with the W
        penalties and constraints (sum-to-one, bounds; a graph between the
        training samples does not apply to new ones)."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if self._fit_space is None:
            return nnls_abundances(X, self.components_, l1_W=self.l1_W, l2_W=self.l2_W,
                                   sum_to_one=self.sum_to_one, bounds_W=self.bounds_W)
        # New samples weighted as the training ones were, each fitted on the
        # learned spectra of the fit's own space, then back to the data's
        # units and the scale of components_.
        from .fractions import prepare

        columns, H_fit, scales, model = self._fit_space
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        prep = prepare(dense, self.noise_, H_fit.shape[0], model == "scaled", columns=columns)
        W = nnls_abundances(prep.M, H_fit, sum_to_one=prep.targets if model != "plain"
                            else False)
        return (prep.abundances_to_data(W) * scales).astype(X.dtype, copy=False)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Data reconstructed from abundances: ``X @ components_``."""
        check_is_fitted(self)
        W = np.asarray(X)
        if W.ndim != 2 or W.shape[1] != self.n_components_:
            raise ValueError(
                f"X must have shape (n_samples, {self.n_components_}) (abundances), "
                f"got {W.shape}"
            )
        return W @ self.components_

    @property
    def _n_features_out(self) -> int:
        return int(self.components_.shape[0])


def _rank_one_energies(W: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``||W[:, i] H[i]||_F² / n_samples`` per component, i.e.
    ``||W[:, i]||² ||H[i]||² / n_samples`` (the norm of an outer product is
    the product of the norms), in float64 without forming the terms."""
    w2 = np.einsum("ij,ij->j", W, W, dtype=np.float64)
    h2 = np.einsum("ij,ij->i", H, H, dtype=np.float64)
    return w2 * h2 / max(W.shape[0], 1)


def _frobenius_residual(X: Any, W: np.ndarray, H: np.ndarray) -> float:
    """``||X - W @ H||_F`` computed directly, in blocks and with float64 sums.

    The core tracks the error as ``||X||^2 - 2<X, WH> + ||WH||^2``, which
    is cheap but only good to rounding of ``||X||^2`` (in float32, a few
    percent of a small error; the core sums the residual itself only within
    a few hundred eps of an exact fit). One extra pass at the end of the
    fit, in blocks of about a million entries, gives the exact value without
    an (n_samples, n_features) temporary, at any scale of X.
    """
    n, p = X.shape
    # The sum of squares as unit^2 * total, unit the largest |residual| so
    # far (as BLAS's nrm2 does): the squares of data near 1e-200 underflow.
    unit, total = 0.0, 0.0

    def add(R: np.ndarray) -> None:
        nonlocal unit, total
        top = float(np.max(np.abs(R))) if R.size else 0.0
        if top == 0.0:
            return
        if top > unit:
            total *= (unit / top) ** 2
            unit = top
        S = R / unit
        total += float(np.einsum("ij,ij->", S, S, dtype=np.float64))

    if sp.issparse(X) and X.format == "csc":
        step = max(1, (1 << 20) // max(n, 1))
        for j in range(0, p, step):
            add(X[:, j:j + step].toarray() - W @ H[:, j:j + step])
    else:
        step = max(1, (1 << 20) // max(p, 1))
        for i in range(0, n, step):
            block = X[i:i + step]
            block = block.toarray() if sp.issparse(block) else block
            add(block - W[i:i + step] @ H)
    return unit * float(np.sqrt(total))
