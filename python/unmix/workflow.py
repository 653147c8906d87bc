"""Workflows on whole spectral images: :func:`unmix` and :func:`pca`
(:func:`select_rank`, also importable from here, is in :mod:`unmix.rank`).

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
import os
import warnings
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ._nmf import H_OPTIONS, NMFResult, nmf
from ._validation import block_step, check_choice, check_data, check_int
from .image import SpectralImage, described
from .noise import SparseChannelsWarning, choose as choose_noise, sparse_channels

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

    Every pixel is modelled as ``x ≈ intensity * abundances @ endmembers``
    in the data's own units (counts, reflectance ...).

    Attributes
    ----------
    image : SpectralImage
        The unmixed image (a reference, not a copy).
    endmembers : ndarray, shape (k, channels)
        The endmember spectra, ordered by total abundance, largest first. In
        the data's units for the fraction models (``params["model"]``
        "scaled" or "strict"); normalized by ``params["normalize"]`` for the
        plain model.
    abundances : ndarray, shape (*spatial, k)
        The fraction models: fractions, every pixel's row summing to one
        (zero where a pixel has no signal); ``params["fractions"]`` says
        which (:func:`unmix.fractions.physical`). The plain model: the
        abundances that go with the normalized endmembers.
    intensity : ndarray, shape (*spatial,)
        The pixel's intensity (illumination, thickness) relative to what its
        composition gives: 1 everywhere for the strict and plain models.
    residual : ndarray, shape (*spatial,)
        Per pixel, the Euclidean norm of the misfit in the data's units.
    result : NMFResult
        The best restart as :func:`unmix.nmf` returned it, on the weighted
        matrix it fitted (:func:`unmix.fractions.prepare`); after a two-step
        fit, its step 2.
    restarts : list of Restart
        ``(seed, objective, n_iter)`` of every restart, in the order run
        (of step 1, after a two-step fit).
    params : dict
        Everything the fit used: ``n_components``, ``n_init``,
        ``random_state`` and the ``entropy`` the seeds were derived from,
        ``model``, ``noise`` and ``noise_reason``, ``fractions`` and
        ``intensity_chi2``, ``normalize``, ``init_restarts``, every option
        of :func:`unmix.nmf` (defaults included; ``graph_W`` described when
        it was the default grid), ``two_step`` and ``weights`` (the numbers
        of the "auto" weights and what they came from).
    scales : ndarray, shape (k,)
        ``endmembers[j] * scales[j]`` is the spectrum of component ``j`` at
        the scale of the fit, in the data's units.
    order : ndarray of int, shape (k,)
        Component ``j`` here is component ``order[j]`` of ``result``.
    data_norm : float
        ``||X||_F`` of the image (float64 sum).
    events : list of str
        What the fit did on its own and what the user should know: a
        component present nowhere, a penalty backed off.
    column_weights : ndarray, shape (channels,)
        The channel weights of the fit (1 for Gaussian noise, one over the
        square root of the mean count for Poisson noise); new data are
        weighted the same way (:meth:`unmix.NMF.transform`).
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
    intensity: np.ndarray = None  # type: ignore[assignment]
    events: list[str] = field(default_factory=list)
    column_weights: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.intensity is None:
            object.__setattr__(self, "intensity", np.ones(self.abundances.shape[:-1]))
        if self.column_weights is None:
            object.__setattr__(self, "column_weights", np.ones(self.endmembers.shape[1]))

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
        """``(W, H)`` in the data's units at the scale of the fit, in this
        object's component order: ``W`` (pixels, k) is
        ``intensity * abundances / scales``, ``H`` (k, channels)
        ``endmembers * scales``, so that ``W @ H`` is the fitted model of
        the data."""
        k = self.n_components
        W = (self.abundances.reshape(-1, k) * self.intensity.reshape(-1, 1)
             / self.scales.astype(self.abundances.dtype))
        H = self.endmembers * self.scales.astype(self.endmembers.dtype)[:, None]
        return W.astype(self.abundances.dtype, copy=False), H

    def plot(self, **kwargs: Any) -> Any:
        """All figures in one :class:`matplotlib.figure.Figure`; see
        :func:`unmix.figures.plot`."""
        from . import report

        return report.plot(self, **kwargs)

    def save(self, folder: Any, **kwargs: Any) -> list[Any]:
        """Arrays, HDF5, figures and an HTML report in ``folder``; see
        :func:`unmix.report.save` (``elements``, ``lines``, ``scaling``)."""
        from . import report  # report never imports this module: no cycle

        return report.save(self, folder, **kwargs)

    def to_hyperspy(self) -> Any:
        """The image as a HyperSpy signal with this decomposition attached;
        see :func:`unmix.io.to_hyperspy`."""
        from .io import to_hyperspy

        return to_hyperspy(self)

    def __repr__(self) -> str:
        return (f"Unmixing({self.n_components} components of {self.image!r}, "
                f"rel_error={self.rel_error:.4g}, {len(self.restarts)} restart(s))")


#: The models of :func:`unmix`, by the value of ``sum_to_one``.
MODELS = {"scaled": "scaled", True: "strict", False: "plain"}


def unmix(
    image: Any,
    n_components: int,
    *,
    n_init: int = 1,
    random_state: Any = None,
    noise: str = "auto",
    sum_to_one: Any = "scaled",
    normalize: Optional[str] = None,
    **nmf_options: Any,
) -> Unmixing:
    """Unmixes a spectral image into endmember spectra and abundance maps.

    Chooses the noise model, weights the data for it, runs :func:`unmix.nmf`
    ``n_init`` times and keeps the restart with the lowest final penalized
    objective; then expresses the result in the data's units and orders the
    components.

    Parameters
    ----------
    image : SpectralImage or array-like of shape (*spatial, channels)
        Non-negative data; an array is taken as a line scan (2-D), a map
        (3-D) or a volume (4-D) whose last axis is the channels.
    n_components : int
        Number of endmembers k >= 1.
    n_init : int
        Number of restarts. Restart 0 uses the ``init`` given (by default
        ``"spa"``, endmembers picked among the pixels); restarts 1, 2, ...
        use ``"vca"`` with their own seeds, unless ``init`` (or ``W`` and
        ``H``) was given.
    random_state : int, numpy Generator/RandomState/SeedSequence or None
        Root of the restarts' seeds: restart ``i`` gets the ``i``-th child of
        ``numpy.random.SeedSequence(random_state)``. The same integer gives
        the same result; with None the entropy drawn is recorded in
        ``params["entropy"]`` so the run can be repeated.
    noise : {"auto", "poisson", "gaussian"}
        The noise model (:func:`unmix.noise.choose`): "auto" takes counts
        (whole numbers, or data a reader labelled as X-ray counts) as
        Poisson and everything else as Gaussian. Poisson data have their
        channels weighted by one over the square root of their mean counts
        (Keenan & Kotula's scaling), which makes the noise about uniform;
        the results come back in counts. Recorded in ``params["noise"]``
        and ``params["noise_reason"]``.
    sum_to_one : {"scaled", True, False}
        The model. ``"scaled"`` (default): every pixel's abundances are
        fractions that sum to one and the pixel has its own intensity
        (illumination, thickness), ``x ≈ intensity · fractions @
        endmembers`` (:mod:`unmix.fractions`); with a minimum-volume term
        weighted from the data (``minvol_H="auto"``). ``True``: fractions
        with a constant intensity, the totals of the pixels explained by
        composition alone (and ``minvol_H="auto"``); where the totals vary
        beyond the noise, the endmembers are the scaled fit's and only the
        fractions are refitted (an event says so). ``False``: plain NMF,
        the endmembers normalized by ``normalize``.
    normalize : {"max", "sum", "l2"} or None
        For the plain model: each endmember scaled to a maximum of 1
        ("max", the default), a sum of 1 ("sum"), a Euclidean norm of 1
        ("l2"), with the abundances scaled by the inverse factors
        (``Unmixing.scales`` keeps them). The fraction models fix the scale
        by the physics and take None only.
    **nmf_options
        Passed to :func:`unmix.nmf` (``solver``, ``max_iter``, ``tol``, the
        penalties and constraints, ``init``, ``callback``, ``time_limit``
        ...) and recorded in ``Unmixing.params``. The fraction models fit
        to ``tol=1e-7`` (``TWO_STEP_TOL``) and ``max_iter=3000`` unless
        given: the majorized volume term takes small steps. ``smooth_W``
        without ``graph_W`` smooths over the pixel grid (8 neighbours, 26 in
        3-D) weighted by :func:`unmix.graphs.edge_aware`, so that it stops
        at particle and grain boundaries, and with a fraction model runs the
        two-step fit below.

    Returns
    -------
    Unmixing
        Components ordered by total abundance, largest first.

    Notes
    -----
    **Why fractions with an intensity.** Pixel totals of real images vary
    for reasons other than composition: shading scales reflectance,
    thickness scales X-ray counts. Fitting the pixels divided by their
    totals puts every pixel on the simplex its endmembers span, whatever
    its brightness, so that dark pixels (water in Samson) count as much as
    bright ones for the shape of the spectra. Measured in
    ``bench/real_data.py``: on the real Samson image, a mean spectral angle
    of 2.3° to the reference endmembers and an abundance RMSE of 0.05
    (plain NMF from the same start: 6.0° and 0.10; scikit-learn: 25°).

    **The two-step fit.** When ``smooth_W`` is given with a fraction model
    and H is learned (``fixed_H`` absent or holding only some rows), the
    fit runs in two steps: (1) every option but the smoothness, with the
    restarts, for the endmembers; (2) the abundances again, from those of
    the best restart, with its endmembers held (``fixed_H`` = all of its H)
    and the smoothness. A joint fit does not work: for abundances that sum
    to one, shrinking them all towards their mean and stretching the
    endmembers by the inverse map leaves ``W H`` unchanged and lowers the
    smoothness term, so a joint fit drifts that way (see the Notes of
    :func:`unmix.nmf`). ``checkpoint`` and ``resume`` are refused with the
    two-step fit; run its steps with :func:`unmix.nmf` instead. Otherwise
    every fit has its own checkpoint file: the first the one given
    (``run.npz``), the others beside it (``run.start2.npz`` for the second
    restart, ``run.refit1.npz`` after a dead component, ``run.strict.npz``
    for the strict refinement), so that ``resume=True`` continues each from
    its own state, and gives the result of a run killed before it returned.

    A component present nowhere (largest fraction below 1 %) after an
    automatic minimum-volume weight is fitted again with a tenth of the
    weight, then none; if it stays, ``Unmixing.events`` says so. The
    sorting moves known spectra (``fixed_H``) too: component ``j`` is one
    of them when ``order[j]`` is below their number.
    """
    img = _as_image(image)
    k = check_int(n_components, "n_components", 1)
    if normalize is not None and _model(sum_to_one) != "plain":
        raise ValueError("normalize applies to the plain model (sum_to_one=False); the fraction "
                         f"models give endmembers in the data's units, got normalize={normalize!r} "
                         f"with sum_to_one={sum_to_one!r}")
    return _unmix(img, _pixels(img), k, n_init, random_state, normalize,
                  {**nmf_options, "sum_to_one": sum_to_one}, "unmix", noise=noise)[0]


def _model(sum_to_one: Any) -> str:
    """The model that a value of unmix's ``sum_to_one`` asks for."""
    key = bool(sum_to_one) if isinstance(sum_to_one, (bool, np.bool_)) else sum_to_one
    if isinstance(key, (bool, str)) and key in MODELS:
        return MODELS[key]
    raise ValueError(f"sum_to_one must be 'scaled', True or False, got {sum_to_one!r}")


def _unmix(img: SpectralImage, X: np.ndarray, k: int, n_init: Any, random_state: Any,
           normalize: Any, nmf_options: dict[str, Any], caller: str,
           noise: str = "auto") -> tuple[Unmixing, list[np.ndarray], int]:
    """:func:`unmix` on a prepared matrix; also returns every restart's H and
    the index of the best restart (for :func:`select_rank`). ``normalize``
    applies to the plain model only."""
    from . import fractions

    n_init = check_int(n_init, "n_init", 1)
    # Bad data are named before any weighting touches them.
    check_data(X, "X" if caller == "NMF" else described(img))
    given = dict(nmf_options)
    model = _model(given.pop("sum_to_one", "scaled"))
    _check_nmf_options(given, caller)
    if model == "plain":
        normalize = check_choice("max" if normalize is None else normalize, "normalize",
                                 NORMALIZATIONS)
    else:
        normalize = None
    # The image's own array says "integer counts" where X was converted.
    noise_model = choose_noise(img.X if isinstance(img.data, np.ndarray) else X, img.metadata,
                               noise)
    root = _seed_sequence(random_state)
    seeds = _restart_seeds(root, n_init)
    kl = given.get("loss") == "kl"
    # The KL loss is itself the Poisson likelihood: no weights on top.
    # The strict model's endmembers come from the scaled fit too (the
    # geometry the volume term needs), refined with unit sums below; known
    # spectra and the KL loss are fitted strictly from the start.
    scaled_stage = model == "scaled" or (model == "strict" and given.get("fixed_H") is None
                                         and not kl)
    fitted_as = "scaled" if scaled_stage else model
    prep = fractions.prepare(X, "none" if kl else noise_model.model, k, scaled_stage)
    sparse = _sparse_channels(img, prep) if prep.counts else None
    if sparse is not None:
        warnings.warn(sparse, SparseChannelsWarning, stacklevel=3)

    graph_name = None
    if _smooths_W(given) and given.get("graph_W") is None:
        given["graph_W"], graph_name = _default_graph(img.spatial_shape, prep, k)
    weights: dict[str, Any] = {}
    fraction_model = model != "plain"
    if given.get("fixed_H") is not None:
        # Known spectra are given in the data's units: into the fit's space
        # (the scaled model's spectra each sum to one there).
        E = np.asarray(given["fixed_H"], dtype=np.float64)
        if E.ndim == 2 and E.shape[1] == prep.columns.size:
            E = E * prep.columns
            if scaled_stage:
                sums = E.sum(axis=1, keepdims=True)
                E = np.divide(E, sums, out=np.zeros_like(E), where=sums > 0)
            given["fixed_H"] = E
    if not _holds_H(given, k) and (given.get("W") is None or given.get("H") is None):
        # Spectral images: start from endmembers picked among the pixels.
        given.setdefault("init", "spa")
    if fraction_model:
        given["sum_to_one"] = prep.targets
        given.setdefault("tol", TWO_STEP_TOL)
        given.setdefault("max_iter", TWO_STEP_MAX_ITER)
        if given.get("minvol_H", "auto") == "auto" and not kl and not _holds_H(given, k):
            lam, info = fractions.minvol_weight(prep.M[prep.keep], k, prep.noise[prep.keep])
            given["minvol_H"] = lam
            weights.update(minvol_H=lam, excess_share=info["excess_share"],
                           noise_source=prep.noise_source)
    two_step = fraction_model and _smooths_W(given) and not _holds_H(given, k)
    step1 = dict(given)
    if two_step:
        if given.get("checkpoint") is not None or given.get("resume"):
            raise ValueError("checkpoint and resume are not available with the two-step fit of "
                             "unmix (a fraction model with smooth_W): run its two steps with "
                             "unmix.nmf (see the Notes of unmix.nmf)")
        del step1["smooth_W"], step1["graph_W"]

    user_init = nmf_options.get("init") is not None or _holds_H(given, k) or (
        given.get("W") is not None and given.get("H") is not None)
    events: list[str] = [] if sparse is None else [sparse]

    def fit(options: dict[str, Any], refit: int = 0
            ) -> tuple[NMFResult, int, list[Restart], list[np.ndarray]]:
        best: Optional[NMFResult] = None
        best_index = 0
        restarts: list[Restart] = []
        Hs: list[np.ndarray] = []
        for i, seed in enumerate(seeds):
            run = _own_checkpoint(options, *([f"refit{refit}"] if refit else []),
                                  *([f"start{i + 1}"] if i else []))
            if i > 0 and not user_init:
                run["init"] = "vca"
            result = nmf(prep.M, k, random_state=seed, **run)
            objective = float(result.objective[-1])
            restarts.append(Restart(seed, objective, int(result.n_iter)))
            Hs.append(prep.spectra_to_data(result.H))
            # Ties keep the earlier restart; a NaN objective never wins.
            best_objective = restarts[best_index].objective
            if best is None or (not np.isnan(objective)
                                and (np.isnan(best_objective) or objective < best_objective)):
                best, best_index = result, i
        assert best is not None
        return best, best_index, restarts, Hs

    best, best_index, restarts, Hs = fit(step1)
    out = _express(best, prep, fitted_as, normalize)
    dead = fractions.dead_components(out[0]) if fraction_model else []
    weight = weights.get("minvol_H", 0.0)
    for refit, factor in enumerate((0.1, 0.0), 1):
        if not dead or weight <= 0:
            break
        events.append(f"component(s) {[d + 1 for d in dead]} present nowhere with the minimum-"
                      f"volume weight {weight:.4g}: fitted again with {factor:g} times it")
        weight = weights["minvol_H"] * factor
        step1["minvol_H"] = weight
        best, best_index, restarts, Hs = fit(step1, refit)
        out = _express(best, prep, fitted_as, normalize)
        dead = fractions.dead_components(out[0])
        weights["minvol_H"] = weight
    refined = scaled_stage and (model == "strict" or out[4] == "material") and not kl \
        and given.get("fixed_H") is None
    # Unit sums on totals that vary beyond the noise would pull the
    # endmembers to fit the intensities: they stay the scaled fit's.
    hold_H = out[5] > fractions.CONSISTENT_CHI2
    if model == "strict" and scaled_stage and hold_H:
        events.append(f"sum_to_one=True: the pixel totals vary beyond what the noise allows "
                      f"(intensity chi-square {out[5]:.3g} per pixel, at most "
                      f"{fractions.CONSISTENT_CHI2:g} expected), so unit sums misfit them: the "
                      "endmembers are the scaled fit's, held, and only the fractions were "
                      "refitted; sum_to_one='scaled' (the default) gives every pixel its "
                      "intensity")
    if refined:
        best, prep, out = _refine_strict(X, k, prep, out, noise_model.model, step1,
                                         seeds[best_index], weights, hold_H)
    if two_step:
        # The fractions again, smoothed, with the endmembers held, on the
        # matrix of the model fitted last (the strict one after a refinement).
        step2 = {name: value for name, value in step1.items()
                 if name not in (*H_OPTIONS, "init", "W", "H", "fixed_H", "sum_to_one")}
        best = nmf(prep.M, k, random_state=seeds[best_index], fixed_H=best.H, W=best.W,
                   sum_to_one=prep.targets, smooth_W=given["smooth_W"],
                   graph_W=given["graph_W"], **step2)
        chi2 = out[5]
        out = _express(best, prep, "strict" if refined else fitted_as, normalize)
        if refined:  # the test of the intensities was the scaled fit's
            out = (*out[:4], "material", chi2)
    fractions_, endmembers, intensity, scales, convention, chi2 = out
    for name, value in best.weights.items():
        weights.setdefault(name, value)
    for iteration, what in best.events:
        events.append(f"iteration {iteration}: {what}")

    params: dict[str, Any] = {
        "n_components": k,
        "n_init": n_init,
        "random_state": _describe_random_state(random_state),
        "entropy": root.entropy,
        "model": model,
        "noise": noise_model.model,
        "noise_reason": noise_model.reason,
        "normalize": normalize,
        "init_restarts": given.get("init") if user_init or n_init == 1 else "vca",
    }
    params.update({name: p.default for name, p in _NMF_OPTIONS.items() if name not in _OWN})
    params.update({name: value for name, value in given.items()
                   if not (name == "sum_to_one" and fraction_model)})
    params["sum_to_one"] = next(key for key, name in MODELS.items() if name == model)
    if graph_name is not None:
        params["graph_W"] = graph_name
    params["solver"] = best.solver  # the one used, where the default depends on the loss
    params["two_step"] = two_step
    params["weights"] = weights
    params["fractions"] = convention
    params["intensity_chi2"] = chi2
    params["refined_strict"] = refined

    # The order follows the abundances the user gets.
    totals = np.sum(fractions_, axis=0, dtype=np.float64)
    order = np.argsort(-totals, kind="stable")
    W_out = fractions_[:, order].astype(X.dtype if X.dtype.kind == "f" else np.float64, copy=False)
    H_out = endmembers[order].astype(W_out.dtype, copy=False)
    residual, data_sq = _residual_norms(X, W_out * intensity[:, None], H_out)
    dead = fractions.dead_components(W_out) if fraction_model else []
    if dead:
        events.append(f"component(s) {[d + 1 for d in dead]} present nowhere (largest fraction "
                      f"below {100 * fractions.DEAD_FRACTION:g} %): fewer components may do")
    unmixing = Unmixing(
        image=img, endmembers=H_out, abundances=img.maps(W_out), residual=img.maps(residual),
        result=best, restarts=restarts, params=params, scales=scales[order], order=order,
        data_norm=float(np.sqrt(data_sq)), intensity=img.maps(intensity), events=events,
        column_weights=prep.columns,
    )
    return unmixing, Hs, best_index


def _refine_strict(X: np.ndarray, k: int, prep: Any, out: tuple, noise_model: str,
                   options: dict[str, Any], seed: int, weights: dict[str, Any],
                   hold_H: bool = False) -> tuple[NMFResult, Any, tuple]:
    """Where the pixel totals follow from composition (material fractions of
    the scaled fit), the strict model is the true one and uses that fact:
    refit from the scaled fit's answer with every pixel's fractions summing
    to one in the data's units (espm's simulations: a few tenths of a degree
    better). With ``hold_H`` (sum_to_one=True asked for on totals the
    composition does not explain) only the fractions are refitted: free
    endmembers would stretch to fit the intensities (Samson: 6.2° instead of
    2.3°). The chi-square that decided it stays the scaled fit's."""
    from . import fractions

    fractions_, endmembers, _, _, _, chi2 = out
    strict = fractions.prepare(X, noise_model, k, scaled=False)
    run = {name: value for name, value in _own_checkpoint(options, "strict").items()
           if name not in ("W", "H", "init", *(H_OPTIONS if hold_H else ()))}
    run["sum_to_one"] = strict.targets
    W0 = np.ascontiguousarray(fractions_ * strict.rows[:, None], dtype=strict.M.dtype)
    H0 = np.ascontiguousarray(endmembers * strict.columns, dtype=strict.M.dtype)
    if hold_H:
        result = nmf(strict.M, k, fixed_H=H0, W=W0, random_state=seed, **run)
        return result, strict, (*_express(result, strict, "strict", None)[:4], "material", chi2)
    if "minvol_H" in weights:
        lam, info = fractions.minvol_weight(strict.M[strict.keep], k, strict.noise[strict.keep])
        run["minvol_H"] = lam
        weights.update(minvol_H_strict=lam)
    result = nmf(strict.M, k, init="custom", W=W0, H=H0, random_state=seed, **run)
    expressed = _express(result, strict, "strict", None)
    return result, strict, (*expressed[:4], "material", chi2)


def _sparse_channels(img: SpectralImage, prep: Any) -> Optional[str]:
    """:func:`unmix.noise.sparse_channels` on the weighted matrix of a
    Poisson fit: the channels' mean counts in X, their energies in M."""
    energies = np.einsum("ij,ij->j", prep.M, prep.M)
    return sparse_channels(prep.column_means, energies, img.channels, img.channel_unit,
                           len(img.spatial_shape))


def _own_checkpoint(options: dict[str, Any], *tags: str) -> dict[str, Any]:
    """The options of one fit of several, with its own checkpoint file (and
    resume file) beside the one given, ``STEM.TAG.TAG.SUFFIX``; the first
    fit keeps the name given. Each fit then resumes from its own state."""
    out = dict(options)
    for name in ("checkpoint", "resume") if tags else ():
        if isinstance(options.get(name), (str, os.PathLike)):
            path = Path(options[name])
            out[name] = path.with_name(".".join([path.stem, *tags]) + path.suffix)
    return out


def _express(result: NMFResult, prep: Any, model: str, normalize: Optional[str]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, float]:
    """A fit in the data's units: (abundances, endmembers, intensity,
    scales, the fractions' convention, the intensity chi-square)."""
    from . import fractions

    W = np.asarray(result.W, dtype=np.float64)
    H = np.asarray(result.H, dtype=np.float64)
    if model == "scaled":
        ph = fractions.physical(W, H, prep)
        return ph.fractions, ph.endmembers, ph.intensity, ph.scales, ph.convention, ph.chi2
    W_data, H_data = prep.to_data(W, H)
    ones = np.ones(W.shape[0])
    if model == "strict":
        return W_data, H_data, ones, np.ones(W.shape[1]), "material", float("nan")
    scales = _scales(H_data, normalize)
    return W_data * scales, H_data / scales[:, None], ones, scales, "", float("nan")


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
    """Whether :func:`unmix` with these options runs the two-step fit (see
    its Notes): a fraction model with smoothness and H to learn."""
    try:
        model = _model(options.get("sum_to_one", "scaled"))
    except ValueError:  # unmix says what is wrong with it
        return False
    return model != "plain" and _smooths_W(options) and not _holds_H(options, k)


def _default_graph(spatial_shape: tuple[int, ...], prep: Any, k: int) -> tuple[Any, str]:
    """The pixel grid with every neighbour (8 in 2-D, 26 in 3-D), weighted
    by spectral similarity so that the smoothness stops at edges
    (:func:`unmix.graphs.edge_aware` on the matrix the fit sees), and how
    params describes it."""
    from .graphs import edge_aware

    connectivity = {2: 8, 3: 26}.get(len(spatial_shape))
    if connectivity is None:
        raise ValueError("smooth_W without graph_W needs an image with 2 or 3 spatial axes (the "
                         "default graph is the pixel grid), got spatial shape "
                         f"{tuple(spatial_shape)}: pass graph_W")
    S, info = edge_aware(spatial_shape, prep.M, prep.channel_noise(), k, connectivity,
                         return_info=True)
    return S, (f"unmix.graphs.edge_aware({tuple(spatial_shape)}, ..., connectivity={connectivity})"
               f": {100 * info['cut_share']:.1f} % of neighbour pairs cut (weight < 0.1)")


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


#: pca(method="auto") takes the randomized method when the subspace it
#: iterates (k + PCA_OVERSAMPLES vectors) is at most this fraction of
#: min(n_pixels, n_channels): few components of a large matrix.
_RANDOMIZED_MAX_SHARE = 0.25
#: ... else the SVD of the whole centred matrix up to this size.
_FULL_SVD_BYTES = 32 * 2**20
#: ... and the channels x channels covariance up to this many channels.
_COVARIANCE_MAX_CHANNELS = 4096
#: The randomized method: vectors beyond the k wanted, and power iterations
#: (one pass over X each, two products). Measured on the real EDS, Raman
#: and STS maps (bench/bench_pca.py, k = 10): 20 extra vectors and 7
#: iterations give the leading variances to a relative 1e-10 (scikit-learn's
#: randomized PCA, 10 extra vectors: 1e-5); 4 iterations left the third axis
#: of a rank-3 test image 2e-5 off.
PCA_OVERSAMPLES = 20
PCA_POWER_ITERATIONS = 7

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
        :func:`unmix.figures.plot_pca`."""
        from . import report

        return report.plot_pca(self, **kwargs)

    def save(self, folder: Any) -> list[Any]:
        """See :func:`unmix.report.save_pca`."""
        from . import report

        return report.save_pca(self, folder)

    def __repr__(self) -> str:
        return (f"PCAResult({self.n_components} components of {self.image!r}, "
                f"explained {self.explained_variance_ratio.sum():.4g} of the variance)")


def pca(image: Any, n_components: Optional[int] = None, *, method: str = "auto",
        progress: Optional[Callable[[int, int], Any]] = None) -> PCAResult:
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
        ``"randomized"``: Halko, Martinsson & Tropp's randomized range
        finder with power iterations on the implicitly centred matrix, in
        row blocks (memory ``channels * (k + 20) * 8`` bytes; a fixed seed,
        so the result is reproducible): ``PCA_POWER_ITERATIONS`` (7) rounds of
        one pass over X. The axes that stand out of the noise are exact to
        rounding (variances to 1e-10 relative on the real maps of
        bench/bench_pca.py); axes whose variance is close to the next ones'
        (noise) are approximate (a few % on a noise axis). ``"auto"``
        picks "randomized" for few components of a large matrix (``k +
        20`` at most a quarter of ``min(n_pixels, n_channels)``), else
        "full" when the matrix takes at most 32 MB, else "covariance" up
        to 4096 channels (or when more than a quarter of the components
        are asked for), else "randomized". No pixels x pixels matrix is
        ever formed.
    progress : callable, optional
        Called as ``progress(done, total)`` after each pass over the data
        (the command line draws its bar from it); its return value is
        ignored.

    Returns
    -------
    PCAResult

    References
    ----------
    N. Halko, P. G. Martinsson and J. A. Tropp, "Finding structure with
    randomness: probabilistic algorithms for constructing approximate
    matrix decompositions", SIAM Review 53, 217–288 (2011).
    """
    img = _as_image(image)
    method = check_choice(method, "method", PCA_METHODS)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {progress!r}")
    X = _pixels(img)
    check_data(X, described(img), nonneg=False)  # else LAPACK's "did not converge"
    n, p = X.shape
    kmax = min(n, p)
    k = kmax if n_components is None else check_int(n_components, "n_components", 1, kmax)
    components, ev, mean, total, used = _pca_fit(X, k, method, progress)
    ratio = ev / total if total > 0 else np.zeros_like(ev)
    scores = np.empty((n, k))
    for i, B in _blocks(X):
        scores[i:i + B.shape[0]] = (B - mean) @ components.T
    if progress is not None:
        progress(_pca_passes(used), _pca_passes(used))
    return PCAResult(image=img, components=components, scores=img.maps(scores),
                     explained_variance=ev, explained_variance_ratio=ratio, mean=mean,
                     total_variance=total, method=used)


def _pca_passes(method: str) -> int:
    """Passes over X of a PCA by ``method``: the mean, the method's own,
    the scores (the unit of :func:`pca`'s ``progress``)."""
    return 3 + (PCA_POWER_ITERATIONS if method == "randomized" else 0)


def _pca_method(n: int, p: int, k: int) -> str:
    """What pca(method="auto") takes for k components of an n x p matrix."""
    if PCA_OVERSAMPLES + k <= _RANDOMIZED_MAX_SHARE * min(n, p):
        return "randomized"
    if n * p * 8 <= _FULL_SVD_BYTES:
        return "full"
    if p <= _COVARIANCE_MAX_CHANNELS or k > p // 4:
        return "covariance"
    return "randomized"


def _pca_fit(X: np.ndarray, k: int, method: str,
             progress: Optional[Callable[[int, int], Any]] = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    """Components (k, p), explained variances (k,), mean (p,), total
    variance and the method used; passes over X in row blocks (the mean
    first, so the covariance is accumulated from centred blocks and does not
    lose its digits to a large mean)."""
    n, p = X.shape
    ddof_n = max(n - 1, 1)
    if method == "auto":
        method = _pca_method(n, p, k)
    passes = _pca_passes(method)
    mean = np.zeros(p)
    for _, B in _blocks(X):
        mean += B.sum(axis=0)
    mean /= n
    if progress is not None:
        progress(1, passes)

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
        def step(done: int) -> None:
            if progress is not None:
                progress(1 + done, passes)

        components, ev, total = _randomized_pca(X, mean, k, step)
        ev /= ddof_n
        total /= ddof_n
    if progress is not None and method != "randomized":
        progress(passes - 1, passes)
    components = np.array(components, dtype=np.float64)
    # A deterministic sign: the largest-magnitude entry of each axis is positive.
    peak = np.abs(components).argmax(axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), peak])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    return components, np.asarray(ev, dtype=np.float64), mean, total, method


def _randomized_pca(X: np.ndarray, mean: np.ndarray, k: int,
                    step: Callable[[int], None]) -> tuple[np.ndarray, np.ndarray, float]:
    """Leading eigenpairs of the (unnormalized) covariance ``Xc.T Xc`` and
    ``||Xc||²``, by the randomized range finder with power iterations
    (Halko, Martinsson & Tropp 2011, algorithms 4.3/4.4 on ``Xc.T Xc``,
    orthonormalized every round) and a Rayleigh-Ritz step. ``Xc = X - mean``
    is never formed: ``Xc Q = X Q - 1 (mean Q)``, and only (channels x
    (k + PCA_OVERSAMPLES)) matrices are held besides a row block of X."""
    p = X.shape[1]
    size = min(p, k + PCA_OVERSAMPLES)
    rng = np.random.default_rng(0)  # a fixed start: the same data give the same axes
    Q, _ = np.linalg.qr(rng.standard_normal((p, size)))
    total = 0.0
    rounds = PCA_POWER_ITERATIONS + 1  # the last one is the Rayleigh-Ritz product
    for it in range(rounds):
        Z = np.zeros((p, size))
        shift = mean @ Q
        for _, B in _blocks(X):
            Y = B @ Q
            Y -= shift
            Z += B.T @ Y
            Z -= np.outer(mean, Y.sum(axis=0))
            if it == 0:
                B = B - mean
                total += float(np.einsum("ij,ij->", B, B))
        step(it + 1)
        if it < rounds - 1:
            Q, _ = np.linalg.qr(Z)
    T = Q.T @ Z
    w, V = np.linalg.eigh((T + T.T) / 2)
    w, V = w[::-1][:k], V[:, ::-1][:, :k]
    return (Q @ V).T, np.clip(w, 0.0, None), total


def __getattr__(name: str) -> Any:
    # select_rank moved to unmix.rank, which imports this module: loaded on
    # first use so that either module can be imported first, and so that
    # unmix.workflow.select_rank and unmix.workflow.RankSelection keep working.
    if name in ("RankSelection", "select_rank"):
        from . import rank

        return getattr(rank, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
