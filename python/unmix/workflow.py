"""Workflows on whole spectral images: :func:`unmix`, :func:`pca` and
:func:`select_rank`.

These sit on top of :func:`unmix.nmf`: they take a
:class:`~unmix.SpectralImage` (or a ``(*spatial, channels)`` array), run the
factorization (with restarts), put the result back into the image's shape,
and return objects that plot and save themselves (see :mod:`unmix.report`).
Every pass over the pixels works in row blocks of at most about 8 MB, so no
temporary of the image's size is made.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, NamedTuple, Optional

import numpy as np

from ._nmf import H_OPTIONS, NMFResult, nmf
from ._validation import block_step, check_choice, check_int
from .image import SpectralImage
from .metrics import spectral_angles

__all__ = ["PCAResult", "RankSelection", "Restart", "Unmixing", "pca", "select_rank", "unmix"]

#: Options of :func:`unmix.nmf` that :func:`unmix` passes through, read from
#: its signature so that new options need no change here.
_NMF_OPTIONS = {name: p for name, p in inspect.signature(nmf).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
# Set by unmix() itself, per restart.
_OWN = ("random_state",)

NORMALIZATIONS = ("max", "sum", "l2")

#: unmix's two-step fit (see unmix): its tolerance and iteration limit when
#: none are given. The majorized volume term takes small steps; the default
#: tol=1e-5 of unmix.nmf stops it half-way, at a point that depends on the
#: start.
TWO_STEP_TOL = 1e-7
TWO_STEP_MAX_ITER = 3000

#: select_rank: a component is worth adding while it lowers the residual sum
#: of squares by more than this many times the noise level (see select_rank).
GAIN_FACTOR = 3.0
#: select_rank: a component whose gain is below STRONG_FACTOR * GAIN_FACTOR
#: times the noise level is dropped again when the restarts disagree on it.
STRONG_FACTOR = 10.0
#: select_rank: the residual at the largest k "still holds structure" when its
#: largest singular value squared exceeds this many times that expected of
#: white noise of the same mean variance (Poisson noise alone gave 3-9x, a
#: component left out 30-170x at 500 counts per pixel or more).
STRUCTURE_FACTOR = 20.0
#: select_rank: restarts whose endmembers are within this mean spectral angle
#: (degrees) of the best fit's count as agreeing; the same angle decides
#: whether an endmember of the k-1 fit reappears in the k fit.
STABLE_ANGLE = 10.0


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _as_image(image: Any, name: str = "image") -> SpectralImage:
    if isinstance(image, SpectralImage):
        return image
    if image is None or isinstance(image, (str, bytes, dict)):
        raise TypeError(f"{name} must be a SpectralImage or an array of shape "
                        f"(*spatial, channels), got {image!r}")
    try:
        return SpectralImage(image if hasattr(image, "shape") else np.asarray(image))
    except ValueError as err:
        raise ValueError(f"{name} must be a SpectralImage or an array of shape "
                         f"(*spatial, channels): {err}") from None


def _pixels(image: SpectralImage) -> np.ndarray:
    """The (pixels x channels) matrix, converted once to float64 when its
    dtype is not float32/float64 (counts are often integers), so restarts do
    not convert it again each time."""
    X = image.X
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"image must hold real numbers, got dtype {X.dtype}")
        X = X.astype(np.float64)
    return X


def _blocks(X: np.ndarray) -> Iterable[tuple[int, np.ndarray]]:
    """Row blocks of X as float64 arrays of at most ~8 MB (views when X is
    float64: callers must not modify them)."""
    step = block_step(X.shape[1])
    for i in range(0, X.shape[0], step):
        yield i, np.asarray(X[i:i + step], dtype=np.float64)


def _seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """The root of the restarts' seeds; an integer gives the same seeds every time."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(0, 2**31 - 1)))
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError("random_state must be None, a non-negative integer, a numpy Generator, "
                        f"RandomState or SeedSequence, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
    return np.random.SeedSequence(int(random_state))


def _restart_seeds(root: np.random.SeedSequence, n: int) -> list[int]:
    # A fresh copy, because spawn() advances the sequence it is called on:
    # the same root must give the same seeds every time.
    copy = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key,
                                  pool_size=root.pool_size)
    return [int(child.generate_state(1, np.uint64)[0]) for child in copy.spawn(n)]


def _check_nmf_options(options: dict[str, Any], caller: str) -> None:
    for name in options:
        if name in _OWN or name not in _NMF_OPTIONS:
            allowed = ", ".join(n for n in _NMF_OPTIONS if n not in _OWN)
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}; the "
                            f"options passed on to unmix.nmf are: {allowed}")


def _describe_random_state(random_state: Any) -> Any:
    """What params records for random_state: the value itself when it is a
    plain seed, else its type (the entropy it gave is recorded beside it)."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    return type(random_state).__name__


# ---------------------------------------------------------------------------
# unmix
# ---------------------------------------------------------------------------


class Restart(NamedTuple):
    """One restart of :func:`unmix`: its seed (the ``random_state`` given to
    :func:`unmix.nmf`), its final penalized objective and its iterations."""

    seed: int
    objective: float
    n_iter: int


@dataclass(frozen=True, eq=False)
class Unmixing:
    """The result of :func:`unmix`.

    Attributes
    ----------
    image : SpectralImage
        The unmixed image (a reference, not a copy).
    endmembers : ndarray, shape (k, channels)
        The endmember spectra, normalized (see ``params["normalize"]``) and
        ordered by total abundance, largest first.
    abundances : ndarray, shape (*spatial, k)
        The abundance maps, scaled so that ``abundances @ endmembers`` is the
        fitted model ``W H``.
    residual : ndarray, shape (*spatial,)
        Per pixel, the Euclidean norm ``||x - w H||`` of the misfit.
    result : NMFResult
        The best restart as :func:`unmix.nmf` returned it (its own order and
        scale); after a two-step fit, its step 2.
    restarts : list of Restart
        ``(seed, objective, n_iter)`` of every restart, in the order run
        (of step 1, after a two-step fit).
    params : dict
        Everything the fit used: ``n_components``, ``n_init``,
        ``random_state`` and the ``entropy`` the seeds were derived from,
        ``normalize``, ``init_restarts``, every option of :func:`unmix.nmf`
        (defaults included; ``graph_W`` described when it was the default
        grid), ``two_step`` and ``weights`` (the numbers of the "auto"
        weights and the noise variance, as in ``NMFResult.weights``).
    scales : ndarray, shape (k,)
        ``endmembers[j] * scales[j]`` is the fitted spectrum of component
        ``j`` and ``abundances[..., j] / scales[j]`` its fitted abundances.
    order : ndarray of int, shape (k,)
        Component ``j`` here is component ``order[j]`` of ``result``.
    data_norm : float
        ``||X||_F`` of the image (float64 sum).
    """

    image: SpectralImage
    endmembers: np.ndarray
    abundances: np.ndarray
    residual: np.ndarray
    result: NMFResult
    restarts: list[Restart]
    params: dict[str, Any]
    scales: np.ndarray
    order: np.ndarray
    data_norm: float

    @property
    def channels(self) -> np.ndarray:
        return self.image.channels

    @property
    def channel_unit(self) -> str:
        return self.image.channel_unit

    @property
    def n_components(self) -> int:
        return int(self.endmembers.shape[0])

    @property
    def rel_error(self) -> float:
        """``||X - W H||_F / ||X||_F``, computed directly from the residual
        (not from the core's running estimate)."""
        rss = float(np.sum(np.square(self.residual, dtype=np.float64)))
        if self.data_norm == 0.0:
            return 0.0 if rss == 0.0 else float("inf")
        return float(np.sqrt(rss) / self.data_norm)

    def unnormalized(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W, H)`` at the scale of the fit, in this object's component
        order: ``W`` (pixels, k), ``H`` (k, channels), so that
        ``H == result.H[order]`` and ``W == result.W[:, order]`` up to
        rounding, and ``W @ H`` equals ``abundances @ endmembers``."""
        k = self.n_components
        W = self.abundances.reshape(-1, k) / self.scales.astype(self.abundances.dtype)
        H = self.endmembers * self.scales.astype(self.endmembers.dtype)[:, None]
        return W, H

    def plot(self, **kwargs: Any) -> Any:
        """All figures in one :class:`matplotlib.figure.Figure`; see
        :func:`unmix.report.plot`."""
        from . import report

        return report.plot(self, **kwargs)

    def save(self, folder: Any) -> list[Any]:
        """Arrays, HDF5, figures and an HTML report in ``folder``; see
        :func:`unmix.report.save`."""
        from . import report

        return report.save(self, folder)

    def __repr__(self) -> str:
        return (f"Unmixing({self.n_components} components of {self.image!r}, "
                f"rel_error={self.rel_error:.4g}, {len(self.restarts)} restart(s))")


def unmix(
    image: Any,
    n_components: int,
    *,
    n_init: int = 1,
    random_state: Any = None,
    normalize: Optional[str] = "max",
    **nmf_options: Any,
) -> Unmixing:
    """Unmixes a spectral image into endmember spectra and abundance maps.

    Runs :func:`unmix.nmf` on the image's (pixels x channels) matrix
    ``n_init`` times and keeps the restart with the lowest final penalized
    objective; then orders and normalizes the components.

    Parameters
    ----------
    image : SpectralImage or array-like of shape (*spatial, channels)
        Non-negative data; an array is taken as a line scan (2-D), a map
        (3-D) or a volume (4-D) whose last axis is the channels.
    n_components : int
        Number of endmembers k >= 1.
    n_init : int
        Number of restarts. Restart 0 uses the ``init`` given (by default
        :func:`unmix.nmf`'s, NNDSVDA); restarts 1, 2, ... use
        ``init="random"`` unless ``init`` (or ``W`` and ``H``) was given.
    random_state : int, numpy Generator/RandomState/SeedSequence or None
        Root of the restarts' seeds: restart ``i`` gets the ``i``-th child of
        ``numpy.random.SeedSequence(random_state)``. The same integer gives
        the same result; with None the entropy drawn is recorded in
        ``params["entropy"]`` so the run can be repeated.
    normalize : {"max", "sum", "l2"} or None
        The convention of the returned endmembers: each spectrum scaled to a
        maximum of 1 ("max"), to a sum of 1 ("sum"), to a Euclidean norm of 1
        ("l2"), or left at the fitted scale (None). The abundances are scaled
        by the inverse factors, so ``abundances @ endmembers`` is unchanged;
        an all-zero endmember keeps scale 1. The factors are kept in
        ``Unmixing.scales`` and :meth:`Unmixing.unnormalized` undoes them.
        Constraints that refer to the fitted scale (``sum_to_one``, bounds,
        known spectra) hold for the unnormalized factors: pass
        ``normalize=None`` to get abundances that sum to one.
    **nmf_options
        Passed to :func:`unmix.nmf` (``solver``, ``max_iter``, ``tol``, the
        penalties and constraints, ``init``, ``callback``, ``time_limit``
        ...) and recorded in ``Unmixing.params``. Two differ: ``smooth_W``
        without ``graph_W`` smooths over the pixel grid,
        ``unmix.graphs.grid(spatial_shape, 8)`` (26 neighbours in 3-D), and
        ``sum_to_one=True`` with ``smooth_W`` runs the two-step fit below.

    Returns
    -------
    Unmixing
        Components ordered by total abundance (the sum of each abundance map
        after the normalization), largest first.

    Notes
    -----
    **The two-step fit.** When ``sum_to_one=True`` and ``smooth_W`` are
    given and H is learned (``fixed_H`` absent or holding only some rows),
    the fit runs in two steps: (1) every option but the smoothness, with
    the restarts, for the endmembers; (2) the abundances again, from those
    of the best restart, with its endmembers held (``fixed_H`` = all of its
    H) and the smoothness. Both steps use the ``tol`` and ``max_iter``
    given, else ``TWO_STEP_TOL`` (1e-7) and ``TWO_STEP_MAX_ITER`` (3000).
    A joint fit does not work: for abundances that sum to one, shrinking
    them all towards their mean and stretching the endmembers by the
    inverse map leaves ``W H`` unchanged and lowers the smoothness term,
    so a joint fit drifts that way (see the Notes of :func:`unmix.nmf`).
    The recommended constrained unmixing, with scale-free weights, is::

        unmix.unmix(image, k, init="spa", sum_to_one=True, minvol_H="auto",
                    smooth_W="auto", normalize=None)

    (the abundances sum to one with ``normalize=None``). It assumes pixel
    totals that the abundances explain: where shading or dark areas scale
    whole pixels (the Samson image), sum-to-one fits are worse than plain
    NMF. ``checkpoint`` and ``resume`` are refused with the two-step fit;
    run its steps with :func:`unmix.nmf` instead.

    The penalties of the objective are not invariant under the rescaling, so
    ``result.objective`` refers to the fit's own scale; the model ``W H`` and
    the residual are the same in both. The sorting moves known spectra
    (``fixed_H``) too: component ``j`` is one of them when ``order[j]`` is
    below their number.
    """
    img = _as_image(image)
    k = check_int(n_components, "n_components", 1)
    return _unmix(img, _pixels(img), k, n_init, random_state, normalize, nmf_options,
                  "unmix")[0]


def _unmix(img: SpectralImage, X: np.ndarray, k: int, n_init: Any, random_state: Any,
           normalize: Any, nmf_options: dict[str, Any],
           caller: str) -> tuple[Unmixing, list[np.ndarray], int]:
    """:func:`unmix` on a prepared matrix; also returns every restart's H and
    the index of the best restart (for :func:`select_rank`)."""
    n_init = check_int(n_init, "n_init", 1)
    if normalize is not None:
        normalize = check_choice(normalize, "normalize", NORMALIZATIONS)
    _check_nmf_options(nmf_options, caller)
    root = _seed_sequence(random_state)
    seeds = _restart_seeds(root, n_init)

    given = dict(nmf_options)
    graph_name = None
    if _smooths_W(given) and given.get("graph_W") is None:
        given["graph_W"], graph_name = _default_graph(img.spatial_shape)
    two_step = _two_step(given, k)
    step1 = dict(given)
    if two_step:
        if given.get("checkpoint") is not None or given.get("resume"):
            raise ValueError("checkpoint and resume are not available with the two-step fit of "
                             "unmix (sum_to_one=True with smooth_W): run its two steps with "
                             "unmix.nmf (see the Notes of unmix.nmf)")
        del step1["smooth_W"], step1["graph_W"]
        step1.setdefault("tol", TWO_STEP_TOL)
        step1.setdefault("max_iter", TWO_STEP_MAX_ITER)

    user_init = given.get("init") is not None or _holds_H(given, k) or (
        given.get("W") is not None and given.get("H") is not None)
    best: Optional[NMFResult] = None
    best_index = 0
    restarts: list[Restart] = []
    Hs: list[np.ndarray] = []
    for i, seed in enumerate(seeds):
        options = dict(step1)
        if i > 0 and not user_init:
            options["init"] = "random"
        result = nmf(X, k, random_state=seed, **options)
        objective = float(result.objective[-1])
        restarts.append(Restart(seed, objective, int(result.n_iter)))
        Hs.append(result.H)
        # Ties keep the earlier restart; a NaN objective never wins.
        best_objective = restarts[best_index].objective
        if best is None or (not np.isnan(objective)
                            and (np.isnan(best_objective) or objective < best_objective)):
            best, best_index = result, i
    assert best is not None
    weights = dict(best.weights)
    if two_step:
        step2 = {name: value for name, value in step1.items()
                 if name not in (*H_OPTIONS, "init", "W", "H", "fixed_H")}
        best = nmf(X, k, random_state=seeds[best_index], fixed_H=best.H, W=best.W,
                   smooth_W=given["smooth_W"], graph_W=given["graph_W"], **step2)
        weights.update(best.weights)

    params: dict[str, Any] = {
        "n_components": k,
        "n_init": n_init,
        "random_state": _describe_random_state(random_state),
        "entropy": root.entropy,
        "normalize": normalize,
        "init_restarts": (nmf_options.get("init") if user_init or n_init == 1 else "random"),
    }
    params.update({name: p.default for name, p in _NMF_OPTIONS.items() if name not in _OWN})
    params.update(given)
    if two_step:
        params.update(tol=step1["tol"], max_iter=step1["max_iter"])
    if graph_name is not None:
        params["graph_W"] = graph_name
    params["solver"] = best.solver  # the one used, where the default depends on the loss
    params["two_step"] = two_step
    params["weights"] = weights

    W, H = best.W, best.H
    scales = _scales(H, normalize)
    # The order follows the abundances the user gets, i.e. after the scaling.
    totals = np.sum(W, axis=0, dtype=np.float64) * scales
    order = np.argsort(-totals, kind="stable")
    scales = scales[order]
    endmembers = (H[order] / scales[:, None]).astype(H.dtype, copy=False)
    abundances = img.maps((W[:, order] * scales).astype(W.dtype, copy=False))
    residual, data_sq = _residual_norms(X, W, H)
    unmixing = Unmixing(
        image=img, endmembers=endmembers, abundances=abundances, residual=img.maps(residual),
        result=best, restarts=restarts, params=params, scales=scales, order=order,
        data_norm=float(np.sqrt(data_sq)),
    )
    return unmixing, Hs, best_index


def _smooths_W(options: dict[str, Any]) -> bool:
    smooth = options.get("smooth_W", 0.0)
    return isinstance(smooth, str) or (isinstance(smooth, numbers.Real) and smooth > 0)


def _holds_H(options: dict[str, Any], k: int) -> bool:
    """Whether fixed_H holds every row of H (no H to learn)."""
    try:
        shape = np.shape(options.get("fixed_H"))
    except ValueError:  # ragged: unmix.nmf says what is wrong with it
        return False
    return len(shape) == 2 and shape[0] == k


def _two_step(options: dict[str, Any], k: int) -> bool:
    """Whether :func:`unmix` with these options of :func:`unmix.nmf` runs
    the two-step fit (see its Notes)."""
    s2o = options.get("sum_to_one")
    return (isinstance(s2o, (bool, np.bool_)) and bool(s2o) and _smooths_W(options)
            and not _holds_H(options, k))


def _default_graph(spatial_shape: tuple[int, ...]) -> tuple[Any, str]:
    """The pixel grid with every neighbour (8 in 2-D, 26 in 3-D), and how
    params describes it."""
    from .graphs import grid

    connectivity = {2: 8, 3: 26}.get(len(spatial_shape))
    if connectivity is None:
        raise ValueError("smooth_W without graph_W needs an image with 2 or 3 spatial axes (the "
                         "default graph is the pixel grid), got spatial shape "
                         f"{tuple(spatial_shape)}: pass graph_W")
    return (grid(spatial_shape, connectivity),
            f"unmix.graphs.grid({tuple(spatial_shape)}, {connectivity})")


def _scales(H: np.ndarray, normalize: Optional[str]) -> np.ndarray:
    H64 = np.asarray(H, dtype=np.float64)
    if normalize is None:
        s = np.ones(H.shape[0])
    elif normalize == "max":
        s = H64.max(axis=1)
    elif normalize == "sum":
        s = H64.sum(axis=1)
    else:
        s = np.linalg.norm(H64, axis=1)
    # An all-zero endmember has no scale to remove.
    return np.where(s > 0, s, 1.0)


def _residual_norms(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-row ``||x - w H||`` and ``||X||_F^2``, in float64 row blocks (the
    temporaries are a block of X and a block of W H, ~8 MB each)."""
    out = np.empty(X.shape[0])
    H64 = np.asarray(H, dtype=np.float64)
    data_sq = 0.0
    for i, B in _blocks(X):
        R = np.asarray(W[i:i + B.shape[0]], dtype=np.float64) @ H64
        R -= B
        out[i:i + B.shape[0]] = np.sqrt(np.einsum("ij,ij->i", R, R))
        data_sq += float(np.einsum("ij,ij->", B, B))
    return out, data_sq


# ---------------------------------------------------------------------------
# PCA
# ---------------------------------------------------------------------------


#: pca(method="auto") takes the SVD of the whole centred matrix up to this size.
_FULL_SVD_BYTES = 32 * 2**20
#: ... and the channels x channels covariance up to this many channels.
_COVARIANCE_MAX_CHANNELS = 4096

PCA_METHODS = ("auto", "full", "covariance", "randomized")


@dataclass(frozen=True, eq=False)
class PCAResult:
    """The result of :func:`pca`.

    Attributes
    ----------
    image : SpectralImage
    components : ndarray, shape (k, channels)
        Orthonormal principal axes, by decreasing variance; each is signed so
        that its largest-magnitude entry is positive. Unlike endmembers they
        have negative entries.
    scores : ndarray, shape (*spatial, k)
        The centred pixels projected on the components.
    explained_variance : ndarray, shape (k,)
        Variance along each component (``S**2 / (n_pixels - 1)``, as
        scikit-learn).
    explained_variance_ratio : ndarray, shape (k,)
        ``explained_variance / total_variance``; sums to at most 1.
    mean : ndarray, shape (channels,)
        The mean spectrum that was subtracted.
    total_variance : float
        The sum of all channels' variances (ddof 1).
    method : str
        "full", "covariance" or "randomized".
    """

    image: SpectralImage
    components: np.ndarray
    scores: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray
    total_variance: float
    method: str

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def channels(self) -> np.ndarray:
        return self.image.channels

    @property
    def channel_unit(self) -> str:
        return self.image.channel_unit

    @property
    def cumulative_ratio(self) -> np.ndarray:
        """Cumulative explained variance ratio."""
        return np.cumsum(self.explained_variance_ratio)

    def plot(self, **kwargs: Any) -> Any:
        """Components, score maps and scree in one figure; see
        :func:`unmix.report.plot_pca`."""
        from . import report

        return report.plot_pca(self, **kwargs)

    def save(self, folder: Any) -> list[Any]:
        """See :func:`unmix.report.save_pca`."""
        from . import report

        return report.save_pca(self, folder)

    def __repr__(self) -> str:
        return (f"PCAResult({self.n_components} components of {self.image!r}, "
                f"explained {self.explained_variance_ratio.sum():.4g} of the variance)")


def pca(image: Any, n_components: Optional[int] = None, *, method: str = "auto") -> PCAResult:
    """Principal component analysis of a spectral image (mean-centred).

    Parameters
    ----------
    image : SpectralImage or array-like of shape (*spatial, channels)
    n_components : int, optional
        Components to keep, at most ``min(n_pixels, n_channels)`` (the
        default). The scores take ``n_pixels * k * 8`` bytes: give a small k
        for large images.
    method : {"auto", "full", "covariance", "randomized"}
        ``"full"``: SVD of the centred (pixels x channels) matrix, which is
        copied. ``"covariance"``: eigendecomposition of the (channels x
        channels) covariance accumulated over row blocks; memory is
        ``channels**2 * 8`` bytes whatever the number of pixels.
        ``"randomized"``: subspace iteration on the covariance with blocked
        products (memory ``channels * (k + 20) * 8`` bytes; a fixed seed, so
        the result is reproducible), for many channels and few components;
        axes whose variance is close to the next ones' (noise) are approximate.
        ``"auto"`` picks "full" when the matrix takes at most 32 MB, else
        "covariance" up to 4096 channels (or when all components are asked
        for), else "randomized". No pixels x pixels matrix is ever formed.

    Returns
    -------
    PCAResult
    """
    img = _as_image(image)
    method = check_choice(method, "method", PCA_METHODS)
    X = _pixels(img)
    n, p = X.shape
    kmax = min(n, p)
    k = kmax if n_components is None else check_int(n_components, "n_components", 1, kmax)
    components, ev, mean, total, used = _pca_fit(X, k, method)
    ratio = ev / total if total > 0 else np.zeros_like(ev)
    scores = np.empty((n, k))
    for i, B in _blocks(X):
        scores[i:i + B.shape[0]] = (B - mean) @ components.T
    return PCAResult(image=img, components=components, scores=img.maps(scores),
                     explained_variance=ev, explained_variance_ratio=ratio, mean=mean,
                     total_variance=total, method=used)


def _pca_fit(X: np.ndarray, k: int,
             method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    """Components (k, p), explained variances (k,), mean (p,), total
    variance and the method used; two passes over X in row blocks (the mean
    first, so the covariance is accumulated from centred blocks and does not
    lose its digits to a large mean)."""
    n, p = X.shape
    ddof_n = max(n - 1, 1)
    mean = np.zeros(p)
    for _, B in _blocks(X):
        mean += B.sum(axis=0)
    mean /= n
    if method == "auto":
        if n * p * 8 <= _FULL_SVD_BYTES:
            method = "full"
        elif p <= _COVARIANCE_MAX_CHANNELS or k > p // 4:
            method = "covariance"
        else:
            method = "randomized"

    if method == "full":
        Xc = np.asarray(X, dtype=np.float64) - mean
        _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
        variances = S**2 / ddof_n
        total = float(variances.sum())
        components, ev = Vt[:k], variances[:k]
    elif method == "covariance":
        C = np.zeros((p, p))
        for _, B in _blocks(X):
            Bc = B - mean
            C += Bc.T @ Bc
        total = float(np.trace(C)) / ddof_n
        w, V = np.linalg.eigh(C)
        w, V = w[::-1][:k], V[:, ::-1][:, :k]
        components, ev = V.T, np.clip(w, 0.0, None) / ddof_n
    else:
        components, ev, total = _subspace_iteration(X, mean, k)
        ev /= ddof_n
        total /= ddof_n
    components = np.array(components, dtype=np.float64)
    # A deterministic sign: the largest-magnitude entry of each axis is positive.
    peak = np.abs(components).argmax(axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), peak])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return components, np.asarray(ev, dtype=np.float64), mean, total, method


def _subspace_iteration(X: np.ndarray, mean: np.ndarray, k: int,
                        n_power: int = 7) -> tuple[np.ndarray, np.ndarray, float]:
    """Leading eigenpairs of the (unnormalized) covariance ``Xc.T Xc`` by
    randomized subspace iteration; each product is accumulated over row
    blocks, so only (channels x (k + 20)) matrices are held."""
    p = X.shape[1]
    # Oversampling speeds up the convergence of the last wanted axes, which
    # is slow when their eigenvalues sit close to the next ones (noise).
    size = min(p, k + 20)
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((p, size)))
    total = 0.0
    for it in range(n_power + 1):
        Z = np.zeros((p, size))
        for _, B in _blocks(X):
            Bc = B - mean
            Z += Bc.T @ (Bc @ Q)
            if it == 0:
                total += float(np.einsum("ij,ij->", Bc, Bc))
        if it < n_power:
            Q, _ = np.linalg.qr(Z)
    # Rayleigh-Ritz on the last subspace: T = Q^T C Q.
    T = Q.T @ Z
    w, V = np.linalg.eigh((T + T.T) / 2)
    w, V = w[::-1][:k], V[:, ::-1][:, :k]
    return (Q @ V).T, np.clip(w, 0.0, None), total


# ---------------------------------------------------------------------------
# Rank selection
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RankSelection:
    """The result of :func:`select_rank`: one entry per ``k`` in ``ks``.

    Attributes
    ----------
    image : SpectralImage
    ks : ndarray of int
        The ranks tried, increasing.
    rel_error : ndarray
        ``||X - W H||_F / ||X||_F`` of the best restart.
    rss : ndarray
        Residual sum of squares ``||X - W H||_F^2`` of the best restart.
    gain : ndarray
        RSS decrease per added component from the previous k tried,
        ``(rss[j-1] - rss[j]) / (ks[j] - ks[j-1])``; NaN for the first.
    noise_level : float
        The largest singular value squared of the residual at the largest k:
        about the most a component fitted to noise alone can gain.
    threshold : float
        ``GAIN_FACTOR * noise_level``.
    white_noise_level : float
        ``s² (sqrt(n_pixels) + sqrt(n_channels))²`` with ``s²`` the mean
        residual variance at the largest k: the largest singular value
        squared that white noise of that variance would have. A
        ``noise_level`` above ``STRUCTURE_FACTOR`` times it means the
        residual still holds structure (components not yet fitted).
    pca_cumulative : ndarray
        Cumulative explained variance ratio of the first k principal
        components (of the mean-centred data, for comparison).
    stability : ndarray
        Mean spectral angle in degrees between the endmembers of each
        restart and those of the best one, after Hungarian matching
        (:func:`unmix.metrics.spectral_angles`), averaged over the restarts;
        0 = every restart found the same endmembers. NaN when ``n_init == 1``.
    n_reappearing : ndarray of int
        How many of the ``k - 1`` endmembers of the previous rank reappear in
        the rank-k fit within ``STABLE_ANGLE`` degrees; -1 when ``k - 1`` was
        not tried.
    bic : ndarray
        ``N log(RSS / N) + k (n_pixels + n_channels) log N`` with
        ``N = n_pixels * n_channels`` (Gaussian-noise BIC, for reference).
    recommended : int
    reason : str
        One line explaining ``recommended``.
    unmixings : dict of int to Unmixing
        The best fit for every k (``normalize="max"``); their abundance
        maps take ``n_pixels * sum(ks) * 8`` bytes in all.
    params : dict
    """

    image: SpectralImage
    ks: np.ndarray
    rel_error: np.ndarray
    rss: np.ndarray
    gain: np.ndarray
    noise_level: float
    threshold: float
    white_noise_level: float
    pca_cumulative: np.ndarray
    stability: np.ndarray
    n_reappearing: np.ndarray
    bic: np.ndarray
    recommended: int
    reason: str
    unmixings: dict[int, Unmixing] = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Unmixing:
        """The :class:`Unmixing` at the recommended k."""
        return self.unmixings[self.recommended]

    def plot(self, **kwargs: Any) -> Any:
        """The curves against k; see :func:`unmix.report.plot_rank`."""
        from . import report

        return report.plot_rank(self, **kwargs)

    def save(self, folder: Any) -> list[Any]:
        """See :func:`unmix.report.save_rank`."""
        from . import report

        return report.save_rank(self, folder)

    def __repr__(self) -> str:
        return (f"RankSelection(ks={self.ks.tolist()}, recommended={self.recommended}: "
                f"{self.reason})")


def _check_ks(ks: Any, kmax: int) -> np.ndarray:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise TypeError(f"ks must be an iterable of integers (e.g. range(2, 11)), got {ks!r}")
    values = list(ks)
    if not values:
        raise ValueError("ks must hold at least one rank, got an empty sequence")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"ks must hold integers, got {v!r} in {values!r}")
        if not 1 <= v <= kmax:
            raise ValueError(f"ks must hold ranks in [1, {kmax}] (min(n_pixels, n_channels)), "
                             f"got {v} in {values!r}")
    out = np.unique(np.asarray(values, dtype=np.int64))
    return out


def _residual_top_sv2(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """The largest singular value squared of ``X - W H``, from the channel
    side (never a pixels x pixels matrix): the residual's Gram matrix for few
    channels, else Lanczos on its products, both over row blocks."""
    p = X.shape[1]
    H64 = np.asarray(H, dtype=np.float64)

    def gram_times(v: np.ndarray) -> np.ndarray:
        out = np.zeros(v.shape)
        for i, B in _blocks(X):
            R = np.asarray(W[i:i + B.shape[0]], dtype=np.float64) @ H64
            R -= B
            out += R.T @ (R @ v)
        return out

    if p <= 512:
        G = np.zeros((p, p))
        for i, B in _blocks(X):
            R = np.asarray(W[i:i + B.shape[0]], dtype=np.float64) @ H64
            R -= B
            G += R.T @ R
        return float(max(np.linalg.eigvalsh(G)[-1], 0.0))
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = LinearOperator((p, p), matvec=gram_times, dtype=np.float64)
    value = eigsh(op, k=1, which="LA", v0=np.full(p, 1.0 / np.sqrt(p)), tol=1e-4,
                  return_eigenvectors=False)[0]
    return float(max(value, 0.0))


def select_rank(
    image: Any,
    ks: Iterable[int] = range(2, 11),
    *,
    n_init: int = 3,
    random_state: Any = None,
    **nmf_options: Any,
) -> RankSelection:
    r"""Fits the NMF for several ranks and recommends one.

    For each ``k`` in ``ks`` it runs :func:`unmix` with ``n_init``
    restarts (all ranks with the same ``random_state``, so
    ``select_rank(..., random_state=s).unmixings[k]`` is
    ``unmix(image, k, n_init=n_init, random_state=s, ...)``) and records
    the relative error, the PCA cumulative explained variance, the
    stability of the endmembers across restarts, how many endmembers of
    ``k - 1`` reappear at ``k``, and a BIC-like criterion.

    Parameters
    ----------
    image : SpectralImage or array-like of shape (*spatial, channels)
    ks : iterable of int
        The ranks to try, each in ``[1, min(n_pixels, n_channels)]``. The
        rule below needs them to go past the true rank: include a few
        larger ones.
    n_init : int
        Restarts per rank (>= 2 for the stability score).
    random_state : int, numpy random generator, SeedSequence or None
    **nmf_options
        Passed to :func:`unmix.nmf` as by :func:`unmix` (the default
        ``graph_W`` and the two-step fit included).

    Returns
    -------
    RankSelection

    Notes
    -----
    **The rule.** Let :math:`\mathrm{RSS}_k` be the residual sum of squares
    of the best restart at rank k and :math:`g_k` its decrease per
    component from the previous rank tried. The noise level :math:`\nu` is
    the largest singular value squared of the residual at the largest k
    tried: about the most one more component can gain by fitting noise
    alone (on synthetic data with Gaussian and with Poisson noise, the
    gains past the true rank were 0.9-1.6 :math:`\nu`, those up to it tens
    to thousands of times :math:`\nu`).

    1. *Enough ranks*: if the residual at the largest k still holds
       structure — :math:`\nu` above ``STRUCTURE_FACTOR`` (20) times
       :math:`s^2(\sqrt{n_\mathrm{pixels}} + \sqrt{n_\mathrm{channels}})^2`,
       the value for white noise of the residual's mean variance
       :math:`s^2` (on tof_sims_like data, Poisson noise alone gave 3-9
       times, a component left out 30-170 times at 500 counts per pixel
       or more, but 6-17 times at 20) — the largest k is recommended and the
       reason says to try larger ks (the noise level would otherwise be
       overestimated, and the rank underestimated).
    2. *Elbow*: otherwise the recommended k is the smallest k tried past
       which every gain is below ``GAIN_FACTOR`` (3) :math:`\nu`, i.e. the
       last k whose own gain exceeds that threshold.
    3. *Stability*: if the restarts at that k disagree (mean matched angle
       above ``STABLE_ANGLE`` = 10 degrees) and its gain is weak (below
       ``STRONG_FACTOR`` (10) times the threshold), its last component is
       taken as not reproducible and the previous k is recommended. Strong
       components are kept however the restarts vary: a poor restart is an
       optimization failure, not evidence against the rank.

    Limits: when the gain at the largest k is still above the threshold,
    that k is recommended and the reason says to try larger ks; when
    nothing past the smallest k gains more than noise, the smallest is
    recommended and the reason says to try smaller ks. The rule assumes
    noise that no single component can fit (white or Poisson-like, with a
    mean-variance structure no stronger than Poisson counts'); a structured
    background counts as a component, and very low counts can hide a weak
    component in the noise. NMF is not nested, so a poor local minimum at
    one k distorts two gains: use ``n_init >= 2``. The PCA curve, the BIC
    and the reappearance counts are reported for judgement, not used.
    """
    img = _as_image(image)
    X = _pixels(img)
    n, p = X.shape
    ks_arr = _check_ks(ks, min(n, p))
    n_init = check_int(n_init, "n_init", 1)
    _check_nmf_options(nmf_options, "select_rank")
    root = _seed_sequence(random_state)

    m = len(ks_arr)
    rel = np.empty(m)
    rss = np.empty(m)
    stability = np.full(m, np.nan)
    n_reappearing = np.full(m, -1, dtype=np.int64)
    unmixings: dict[int, Unmixing] = {}
    for j, k in enumerate(ks_arr):
        # Every rank gets the same seeds (an integer when possible, so that
        # unmixings[k].params records a seed unmix() accepts).
        seed = root if root.spawn_key else root.entropy
        u, Hs, best = _unmix(img, X, int(k), n_init, seed, "max", nmf_options, "select_rank")
        unmixings[int(k)] = u
        rss[j] = float(np.sum(np.square(u.residual, dtype=np.float64)))
        rel[j] = u.rel_error
        if n_init > 1:
            stability[j] = float(np.mean([spectral_angles(Hs[best], H).mean
                                          for i, H in enumerate(Hs) if i != best]))
        if j > 0 and ks_arr[j - 1] == k - 1:
            previous = unmixings[int(k) - 1].endmembers
            angles = spectral_angles(previous, u.endmembers).angles
            n_reappearing[j] = int(np.sum(angles <= STABLE_ANGLE))

    N = float(n) * float(p)
    gain = np.full(m, np.nan)
    gain[1:] = -np.diff(rss) / np.diff(ks_arr)
    last = unmixings[int(ks_arr[-1])]
    W_last, H_last = last.result.W, last.result.H
    noise = _residual_top_sv2(X, W_last, H_last)
    threshold = GAIN_FACTOR * noise
    k_last = int(ks_arr[-1])
    dof = N - k_last * (n + p)
    white = rss[-1] / (dof if dof > 0 else N) * (np.sqrt(n) + np.sqrt(p)) ** 2

    kmax_pca = int(ks_arr[-1])
    _, ev, _, total, _ = _pca_fit(X, kmax_pca, "auto")
    ratio = ev / total if total > 0 else np.zeros_like(ev)
    pca_cumulative = np.cumsum(ratio)[ks_arr - 1]

    with np.errstate(divide="ignore"):
        bic = N * np.log(rss / N) + ks_arr * (n + p) * np.log(N)

    structured = noise > STRUCTURE_FACTOR * white
    recommended, reason = _recommend(ks_arr, gain, noise, threshold, stability, n_init,
                                     noise / white if white > 0 else np.inf, structured)
    params: dict[str, Any] = {
        "ks": ks_arr.tolist(),
        "n_init": n_init,
        "random_state": _describe_random_state(random_state),
        "entropy": root.entropy,
        "gain_factor": GAIN_FACTOR,
        "strong_factor": STRONG_FACTOR,
        "stable_angle": STABLE_ANGLE,
        "structure_factor": STRUCTURE_FACTOR,
    }
    params.update({name: p_.default for name, p_ in _NMF_OPTIONS.items() if name not in _OWN})
    params.update(nmf_options)
    return RankSelection(
        image=img, ks=ks_arr, rel_error=rel, rss=rss, gain=gain, noise_level=noise,
        threshold=threshold, white_noise_level=float(white), pca_cumulative=pca_cumulative,
        stability=stability, n_reappearing=n_reappearing, bic=bic, recommended=recommended, reason=reason,
        unmixings=unmixings, params=params,
    )


def _recommend(ks: np.ndarray, gain: np.ndarray, noise: float, threshold: float,
               stability: np.ndarray, n_init: int, structure: float,
               structured: bool) -> tuple[int, str]:
    """The rule documented in :func:`select_rank`."""
    m = len(ks)
    k_last = int(ks[-1])
    still = (f"the residual at k={k_last} still holds structure (its largest singular value "
             f"squared is {structure:.3g}x that of white noise of the same variance, above "
             f"{STRUCTURE_FACTOR:g}x)")
    if m == 1:
        return k_last, f"k={k_last} is the only rank tried" + (f"; {still}" if structured else "")
    if structured:
        return k_last, f"k={k_last}, the largest tried: {still}; try larger ks"

    def times(g: float) -> str:
        if noise <= 0:
            return "above the noise level (zero)" if g > 0 else "no gain"
        return f"{g / noise:.3g}x the noise level"

    above = [j for j in range(1, m) if gain[j] > threshold]
    j = above[-1] if above else 0
    k = int(ks[j])
    demoted = ""
    if (j > 0 and n_init > 1 and stability[j] > STABLE_ANGLE
            and gain[j] < STRONG_FACTOR * threshold):
        demoted = (f"k={k} gained only {times(gain[j])} and its restarts disagree by "
                   f"{stability[j]:.1f} deg, so ")
        j -= 1
        k = int(ks[j])
    agree = ""
    if n_init > 1 and np.isfinite(stability[j]):
        agree = (f"; its restarts agree within {stability[j]:.1f} deg (mean SAD)"
                 if stability[j] <= STABLE_ANGLE else
                 f"; its restarts differ by {stability[j]:.1f} deg (mean SAD): some end in "
                 "other local minima, more n_init may help")
    if demoted:
        return k, demoted + f"the previous rank k={k} is recommended" + agree
    if j == m - 1:
        return k, (f"k={k}: the error still drops by {times(gain[j])} per component at the "
                   f"largest k tried (threshold {GAIN_FACTOR:g}x); try larger ks" + agree)
    later = float(np.nanmax(gain[j + 1:]))
    if j == 0:
        return k, (f"k={k}: no rank past the smallest tried gains more than "
                   f"{GAIN_FACTOR:g}x the noise level (at most {times(later)}); the rank may "
                   "be lower, try smaller ks" + agree)
    return k, (f"k={k}: the last component to gain more than {GAIN_FACTOR:g}x the noise level "
               f"({times(gain[j])}); components past it gain at most {times(later)}" + agree)
