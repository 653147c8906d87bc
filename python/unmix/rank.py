"""Choosing the number of components: :func:`select_rank`.

The number is read off the singular values of the data (Poisson-scaled
counts, or the data as given for Gaussian noise) against the largest
singular value that the noise alone would give; NMF fits at every rank are
made and kept as diagnostics. The result, :class:`RankSelection`, plots and
saves itself (see :mod:`unmix.report`).
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import numpy as np

from ._validation import check_data, check_int
from .image import SpectralImage, described
from .metrics import spectral_angles
from .noise import NoiseModel, SparseChannelsWarning, choose
from .preprocess import PoissonScaling, poisson_scale
from .workflow import (_NMF_OPTIONS, _OWN, Unmixing, _as_image, _blocks, _check_nmf_options,
                       _describe_random_state, _pca_fit, _pixels, _seed_sequence, _unmix)

__all__ = ["RankSelection", "select_rank"]

#: select_rank: a singular value squared counts as signal when it exceeds the
#: noise floor (the expected largest singular value squared of the noise) by
#: more than this many standard deviations of that largest value (its
#: Tracy-Widom spread, about 1 % of it for 64 x 64 x 256 data); see
#: select_rank for what simulated images gave.
MARGIN_SD = 4.0
#: select_rank, Poisson noise: pixels averaged along each spatial axis for
#: the local spectrum shape that sets the variance of the scaled noise.
PROFILE_SIZE = 5
#: select_rank, Poisson noise: simulated noise images; the floor is the mean
#: of their largest singular values squared.
N_DRAWS = 3
#: select_rank, Poisson noise: the seed of those images. Fixed, and not
#: random_state, so that the recommendation never depends on the restarts.
NOISE_SEED = 0
#: select_rank: restarts whose endmembers are within this mean spectral angle
#: (degrees) of the best fit's count as agreeing; the same angle decides
#: whether an endmember of the k-1 fit reappears in the k fit.
STABLE_ANGLE = 10.0

# Mean and standard deviation of the Tracy-Widom law of order 1: the limit
# of the centred and scaled largest eigenvalue of a real white Wishart matrix.
_TW1_MEAN = -1.2065
_TW1_SD = 1.2680
# The data's spectrum comes from the Gram matrix of its smaller side up to
# this size (all singular values, for the noise estimate); past it, from
# Lanczos iterations (the leading ones only).
_GRAM_MAX = 4096


@dataclass(frozen=True, eq=False)
class RankSelection:
    """The result of :func:`select_rank`: one entry per ``k`` in ``ks``
    (the NMF diagnostics), and the spectrum test that decided.

    Attributes
    ----------
    image : SpectralImage
        The image given.
    ks : ndarray of int
        The ranks tried, increasing.
    noise : NoiseModel
        The noise model used and why (:func:`unmix.noise.choose`).
    spectrum : ndarray
        The ``max(ks) + 1`` largest singular values squared of the data as
        tested (Poisson-scaled counts, or the data as given), not centred
        (fewer when the data have fewer); entry ``i`` is ``s_{i+1}²``.
    noise_floor : ndarray
        For entry ``i >= 1``, the floor ``spectrum[i]`` was tested against:
        the expected largest singular value squared of the noise (see
        :func:`select_rank`; for white noise with the variance estimated
        past the ``i`` leading values). NaN where not tested: entry 0, the
        mean, never is, and the test stops at the first value not above
        its threshold.
    spectrum_threshold : ndarray
        The value ``spectrum[i]`` had to exceed to count as signal:
        ``noise_floor[i]`` plus ``MARGIN_SD`` Tracy-Widom standard
        deviations; NaN where not tested.
    signal_rank : int
        The number of leading singular values above their threshold (at
        least 1); ``max(ks) + 1`` means "more than the largest k tried".
    noise_level : float
        The noise floor of the last test made (of the first singular value
        not above its threshold, or of the last one tested): about what one
        more component gains by fitting noise alone.
    threshold : float
        The threshold of that test.
    rel_error : ndarray
        ``||X - W H||_F / ||X||_F`` of the best restart, in the data's units.
    rss : ndarray
        Residual sum of squares ``||X - W H||_F^2`` of the best restart, in
        the units of ``spectrum`` (of the Poisson-scaled data for counts).
    gain : ndarray
        RSS decrease per added component from the previous k tried,
        ``(rss[j-1] - rss[j]) / (ks[j] - ks[j-1])``; NaN for the first.
        A diagnostic, in the units of ``spectrum``: a component the NMF
        found gains about its ``s_i²``, one fitted to noise about
        ``noise_level``.
    pca_cumulative : ndarray
        Cumulative explained variance ratio of the first k principal
        components (of the mean-centred data as fitted, for comparison).
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
        One line: the numbers that decided ``recommended``, then the NMF
        diagnostics at that k.
    unmixings : dict of int to Unmixing
        The best fit for every k, as :func:`unmix` returns it; their
        abundance maps take ``n_pixels * sum(ks) * 8`` bytes in all.
    params : dict
    """

    image: SpectralImage
    ks: np.ndarray
    noise: NoiseModel
    spectrum: np.ndarray
    noise_floor: np.ndarray
    spectrum_threshold: np.ndarray
    signal_rank: int
    noise_level: float
    threshold: float
    rel_error: np.ndarray
    rss: np.ndarray
    gain: np.ndarray
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
        """The curves against k; see :func:`unmix.figures.plot_rank`."""
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
    return np.unique(np.asarray(values, dtype=np.int64))


# ---------------------------------------------------------------------------
# The spectrum and its noise floor
# ---------------------------------------------------------------------------


class _SpectrumTest(NamedTuple):
    sv2: np.ndarray
    floor: np.ndarray
    threshold: np.ndarray
    signal_rank: int
    last: int  # index of the last value tested (0: none)


def _spectrum(X: np.ndarray, count: int, every: bool = True) -> tuple[np.ndarray, bool]:
    """Singular values squared of X (not centred), descending, from the Gram
    matrix of X's smaller side (formed in float64 over row blocks) when that
    side has at most ``_GRAM_MAX`` entries: all of them when ``every``
    (flag True), else the ``count`` largest; past that size, the ``count``
    largest by Lanczos iterations on products with X (flag False)."""
    n, p = X.shape
    if min(n, p) <= _GRAM_MAX:
        if p <= n:
            G = np.zeros((p, p))
            for _, B in _blocks(X):
                G += B.T @ B
        else:
            Xt = np.asarray(X, dtype=np.float64).T
            G = np.empty((n, n))
            for i, B in _blocks(X):
                G[i:i + B.shape[0]] = B @ Xt
        if every:
            return np.clip(np.linalg.eigvalsh(G)[::-1], 0.0, None), True
        from scipy.linalg import eigh

        d = G.shape[0]
        w = eigh(G, eigvals_only=True, subset_by_index=[d - count, d - 1])
        return np.clip(w[::-1], 0.0, None), False
    from scipy.sparse.linalg import LinearOperator, eigsh

    def gram_times(v: np.ndarray) -> np.ndarray:
        out = np.zeros(v.shape)
        for _, B in _blocks(X):
            out += B.T @ (B @ v)
        return out

    op = LinearOperator((p, p), matvec=gram_times, dtype=np.float64)
    w = eigsh(op, k=count, which="LA", v0=np.full(p, 1.0 / np.sqrt(p)), tol=1e-6,
              return_eigenvectors=False)
    return np.clip(np.sort(w)[::-1], 0.0, None), False


def _tracy_widom(n: int, p: int) -> tuple[float, float]:
    """Centre and scale of the largest singular value squared of an n x p
    matrix of independent unit-variance entries (Johnstone 2001): the
    centred and scaled value tends to the Tracy-Widom law of order 1."""
    a, b = np.sqrt(n), np.sqrt(p)
    return float((a + b) ** 2), float((a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0))


@functools.lru_cache(maxsize=64)
def _mp_median(beta: float) -> float:
    """The median of the Marchenko-Pastur law of aspect ratio ``beta`` in
    (0, 1] and unit variance."""
    from scipy import integrate, optimize

    lo, hi = (1 - np.sqrt(beta)) ** 2, (1 + np.sqrt(beta)) ** 2

    def density(x: float) -> float:
        return float(np.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * np.pi * beta * x))

    def below(m: float) -> float:
        return float(integrate.quad(density, lo, m, limit=200)[0]) - 0.5

    return float(optimize.brentq(below, lo + 1e-12, hi))


def _effective_shape(X: np.ndarray) -> tuple[int, int]:
    """Pixels and channels that are not all zero: the others add exact zeros
    to the spectrum, not noise."""
    cols = np.zeros(X.shape[1], dtype=bool)
    rows = 0
    for _, B in _blocks(X):
        nonzero = B != 0
        rows += int(np.count_nonzero(nonzero.any(axis=1)))
        cols |= nonzero.any(axis=0)
    return rows, int(np.count_nonzero(cols))


def _noise_floor(sv2: np.ndarray, variance: Optional[float], n: int, p: int,
                 j: int) -> tuple[float, float]:
    """Floor and threshold of the (j+1)-th singular value squared for white
    noise (Poisson-scaled counts are about white). The floor is the
    expected largest singular value squared of the whole n x p noise matrix,
    which bounds s_{j+1} of a rank-j signal plus that noise (Weyl's
    inequality); sigma² comes from the median of the singular values squared
    past the j leading ones, matched to the Marchenko-Pastur median (Gavish &
    Donoho 2014), which the components taken out barely move; ``variance``
    instead when the whole spectrum is not known."""
    m, big = min(n, p), max(n, p)
    if variance is None:
        sigma2 = float(np.median(sv2[j:m])) / ((big - j) * _mp_median((m - j) / (big - j)))
    else:
        sigma2 = variance
    mu, sigma = _tracy_widom(n, p)
    floor = sigma2 * (mu + _TW1_MEAN * sigma)
    return floor, sigma2 * (mu + (_TW1_MEAN + MARGIN_SD * _TW1_SD) * sigma)


def _poisson_floor(counts: SpectralImage, scaling: PoissonScaling, n: int,
                   p: int) -> tuple[float, float]:
    """Floor and threshold of every singular value squared past the first
    for Poisson-scaled counts: the mean largest singular value squared of
    ``N_DRAWS`` Gaussian noise images with the scaled noise's variance,
    ``λ_ij / (g_i h_j) = p c_ij / h_j``, where ``c_ij`` is the local spectrum
    shape (the counts summed over ``PROFILE_SIZE`` pixels along each spatial
    axis, over their total). Scaling whitens counts only when their mean is
    close to rank one; with strong contrast the variance still varies, and
    such noise reaches past the white value (by 18 % on a Bruker SEM-EDS
    file). As for white noise, that largest value bounds s_{j+1} for every
    rank j (Weyl)."""
    from scipy.ndimage import uniform_filter

    cube = np.asarray(counts.data, dtype=np.float64)
    size = [min(PROFILE_SIZE, s) for s in counts.spatial_shape] + [1]
    local = uniform_filter(cube, size=size, mode="nearest").reshape(-1, cube.shape[-1])
    del cube
    np.clip(local, 0.0, None, out=local)  # the filter's rounding can dip below zero
    totals = local.sum(axis=1)
    h = np.asarray(scaling.channel_scale, dtype=np.float64) ** 2
    inverse_h = np.divide(1.0, h, out=np.zeros_like(h), where=h > 0)
    factor = np.divide(local.shape[1], totals, out=np.zeros_like(totals),
                       where=(totals > 0) & (scaling.pixel_scale.reshape(-1) > 0))
    local *= factor[:, None]
    local *= inverse_h
    np.sqrt(local, out=local)  # the standard deviation of every scaled entry
    values = []
    for draw in range(N_DRAWS):
        noise = np.random.default_rng([NOISE_SEED, draw]).standard_normal(local.shape)
        noise *= local
        values.append(float(_spectrum(noise, 1, every=False)[0][0]))
    floor = float(np.mean(values))
    mu, sigma = _tracy_widom(n, p)
    return floor, floor * (1.0 + MARGIN_SD * _TW1_SD * sigma / (mu + _TW1_MEAN * sigma))


def _test_spectrum(X: np.ndarray, kmax: int, counts: Optional[SpectralImage] = None,
                   scaling: Optional[PoissonScaling] = None) -> _SpectrumTest:
    """The rule of :func:`select_rank` on X as fitted: test s_{j+1}²
    against the noise floor of "rank j", for j = 1, 2, ... until a value
    falls below its threshold or j reaches ``kmax`` (the first component,
    the mean, is never tested). ``counts`` and ``scaling``: X is their
    Poisson scaling."""
    n, p = _effective_shape(X)
    m = min(n, p)
    jmax = min(kmax, m - 1)
    count = min(jmax + 1, min(X.shape))
    sv2, complete = _spectrum(X, count)
    variance = None
    if not complete:
        # Without the whole spectrum: what the leading values leave, per
        # degree of freedom (an overestimate while they miss signal).
        total = sum(float(np.einsum("ij,ij->", B, B)) for _, B in _blocks(X))
        variance = max(total - float(sv2[:count].sum()), 0.0) / ((n - count) * (p - count))
    floor = np.full(count, np.nan)
    threshold = np.full(count, np.nan)
    poisson = None
    rank, last = min(1, m), 0
    for j in range(1, jmax + 1):
        if counts is not None and scaling is not None:
            if poisson is None:
                poisson = _poisson_floor(counts, scaling, n, p)
            floor[j], threshold[j] = poisson
        else:
            floor[j], threshold[j] = _noise_floor(sv2, variance, n, p, j)
        last = j
        if not sv2[j] > threshold[j]:
            break
        rank = j + 1
    return _SpectrumTest(sv2[:count].copy(), floor, threshold, rank, last)


# ---------------------------------------------------------------------------
# select_rank
# ---------------------------------------------------------------------------


def select_rank(
    image: Any,
    ks: Iterable[int] = range(2, 11),
    *,
    n_init: int = 3,
    random_state: Any = None,
    noise: str = "auto",
    **nmf_options: Any,
) -> RankSelection:
    r"""Recommends a number of components from the singular values of the
    data against their noise floor, and fits the NMF at every rank tried.

    For each ``k`` in ``ks`` it runs :func:`unmix` with ``n_init``
    restarts, all ranks with the same ``random_state``, so
    ``select_rank(image, ..., random_state=s, noise=m).unmixings[k]`` is
    ``unmix(image, k, n_init=n_init, random_state=s, noise=m, ...)``, and a
    larger ``n_init`` only adds restarts (restart i has the same seed for
    every ``n_init``). It records the relative error, the gain
    per component, the stability of the endmembers across restarts, how
    many endmembers of ``k - 1`` reappear at ``k``, the PCA cumulative
    explained variance and a BIC-like criterion. None of these decides the
    recommendation: the spectrum test below does, and it depends neither on
    ``random_state`` nor on ``n_init``.

    Parameters
    ----------
    image : SpectralImage or array-like of shape (*spatial, channels)
    ks : iterable of int
        The ranks to try, each in ``[1, min(n_pixels, n_channels)]``.
        Include a few past the rank expected: the test looks at the
        singular values up to ``max(ks) + 1``.
    n_init : int
        Restarts per rank (>= 2 for the stability score).
    random_state : int, numpy random generator, SeedSequence or None
        Seeds of the NMF restarts only.
    noise : {"auto", "poisson", "gaussian"}
        The noise model (:func:`unmix.noise.choose`): "auto" takes counts
        (whole numbers, or files labelled X-ray spectra) as Poisson. For
        "poisson" the spectrum test works on the Poisson-scaled counts
        (:func:`unmix.preprocess.poisson_scale`), and ``rss`` and ``gain``
        are in its units; the NMF fits get ``noise`` as :func:`unmix` does
        and stay in counts. Data that are already scaled are no longer
        counts: pass them with "gaussian" (as "auto" does). Recorded in
        ``noise`` and ``params["noise"]``, ``params["noise_reason"]``.
    **nmf_options
        Passed to :func:`unmix.nmf` as by :func:`unmix` (the default
        ``graph_W`` and the two-step fit included).

    Returns
    -------
    RankSelection

    Notes
    -----
    **The rule.** Let :math:`s_1^2 \ge s_2^2 \ge \dots` be the singular
    values squared of the data as fitted (not centred: the first holds the
    mean spectrum and always counts as a component), n and p the pixels and
    channels that are not all zero. The *noise floor* f is the expected
    largest singular value squared of the noise alone, an n x p matrix; by
    Weyl's inequality it bounds :math:`s_{j+1}` of any rank-j signal plus
    that noise.

    - *Gaussian noise* (white, one variance :math:`\sigma^2`):
      :math:`f = \sigma^2 (\mu + m_{TW} \sigma_{TW})`, with
      :math:`\mu = (\sqrt n + \sqrt p)^2`,
      :math:`\sigma_{TW} = (\sqrt n + \sqrt p)(1/\sqrt n + 1/\sqrt p)^{1/3}`
      (Johnstone 2001) and :math:`m_{TW} = -1.21` the mean of the
      Tracy-Widom law of order 1. For the test of :math:`s_{j+1}`,
      :math:`\sigma^2` comes from the median of
      :math:`s_{j+1}^2, s_{j+2}^2, \dots` matched to the median of the
      Marchenko-Pastur law (Gavish & Donoho 2014): the j leading values are
      left out, and the median hardly moves with the signal.
    - *Poisson noise*: the counts are Poisson-scaled, which whitens their
      noise only where their mean is close to rank one (Keenan & Kotula
      2004); with strong contrast the variance of the scaled noise,
      :math:`\lambda_{ij} / (g_i h_j)`, still varies, and its largest
      singular value reaches past the white value (by 18 % on a Bruker
      SEM-EDS map). f is the mean largest singular value squared of
      ``N_DRAWS`` (3) Gaussian noise images with that variance, estimated
      as :math:`p\, c_{ij} / h_j` with :math:`c_{ij}` the local spectrum
      shape (the counts over ``PROFILE_SIZE`` (5) pixels along each spatial
      axis, divided by their total) and :math:`h_j` the mean count of
      channel j; the images come from the fixed seed ``NOISE_SEED``.

    :math:`s_{j+1}^2` counts as signal when it exceeds the threshold
    :math:`t = f + \mathrm{MARGIN\_SD} \cdot 1.27\, \sigma^2 \sigma_{TW}`
    (relative to f the same for Poisson noise): ``MARGIN_SD`` (4)
    Tracy-Widom standard deviations of the largest noise value above its
    mean. The *signal rank* r is the number of leading values that pass,
    tested in order from :math:`s_2` and stopping at the first that does not
    (or at :math:`s_{\max(ks)+1}`). The recommended k is r when r is in
    ``ks``; else the smallest k tried above r, or the largest k tried when r
    exceeds it (the reason says to try larger ks), or the smallest when r is
    below every k tried (the reason says to try smaller ks). The numbers
    that decided are in the reason; the NMF gains at k and k + 1 (in units
    of f) and the agreement of the restarts follow it, as diagnostics.

    On simulated images of known rank — ToF-SIMS-like and EDS-like Poisson
    counts from 20 to 2000 per pixel, USGS mixtures at 20-40 dB with
    Gaussian noise and with Poisson counts, Gaussian test images of rank 3-8
    (``bench/rank_selection.py``) — the first value past the true rank sat
    between -5.2 and +1.9 Tracy-Widom standard deviations from the floor,
    and the weakest true component 55 or more above it.

    **Limits.** A component is found only when it lifts a singular value
    clear of the noise (past the Baik-Ben Arous-Péché transition, plus the
    margin): a weak or rare phase at low counts can stay hidden; binning
    brings it out. The rank counted is that of the linear model: whatever
    the data vary by beyond noise counts — a structured background, peak
    shifts, thickness or shading changes, detector artefacts — so real data
    at high signal-to-noise can hold more significant components than the
    phases one would name (Samson, three endmembers, holds 7 such
    components); then the NMF diagnostics help judge. The Gaussian model
    assumes one noise variance: heteroscedastic noise passed as "gaussian",
    Poisson-scaled counts included, can count as signal. The Poisson model
    takes the variance of the counts from their local spectrum shape, which
    averages over ``PROFILE_SIZE`` pixels: very sparse counts with sharp
    spatial structure can still be misjudged. The NMF diagnostics depend on
    local minima; the recommendation does not.

    **Cost.** The spectrum comes from the Gram matrix of the data's smaller
    side (Lanczos iterations past 4096), the Poisson floor from three more
    such matrices of simulated noise; for counts this needs the scaled data
    and two float64 arrays of the image's size besides. The NMF fits cost
    what :func:`unmix` costs, ``len(ks) * n_init`` times.
    """
    img = _as_image(image)
    X = _pixels(img)
    # Named before the spectrum test, which would fail on NaN in LAPACK's
    # words (negative values are named with the noise model, or by unmix).
    check_data(X, described(img), nonneg=False)
    n, p = X.shape
    ks_arr = _check_ks(ks, min(n, p))
    n_init = check_int(n_init, "n_init", 1)
    _check_nmf_options(nmf_options, "select_rank")
    # The image's own array says "integer counts" where X was converted (as
    # unmix decides).
    model = choose(img.X if isinstance(img.data, np.ndarray) else X, img.metadata, noise)
    root = _seed_sequence(random_state)

    scaling: Optional[PoissonScaling] = None
    tested = X
    if model.model == "poisson":
        # The rank test simulates the noise floor of the scaled data, sparse
        # channels included; the fits below say if they matter to them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SparseChannelsWarning)
            scaled, scaling = poisson_scale(img)
        tested = _pixels(scaled)
    test = _test_spectrum(tested, int(ks_arr[-1]), img if scaling is not None else None,
                          scaling)

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
        u, Hs, best = _unmix(img, X, int(k), n_init, seed, None, dict(nmf_options),
                             "select_rank", noise=noise)
        unmixings[int(k)] = u
        rss[j] = _tested_rss(X, *u.unnormalized(), scaling)
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
    # The covariance's eigenvalues: all that the explained variance needs, and
    # far cheaper than the SVD of the whole matrix that "auto" takes on small data.
    _, ev, _, total, _ = _pca_fit(tested, int(ks_arr[-1]),
                                  "covariance" if p <= _GRAM_MAX else "auto")
    ratio = ev / total if total > 0 else np.zeros_like(ev)
    pca_cumulative = np.cumsum(ratio)[ks_arr - 1]
    with np.errstate(divide="ignore"):
        bic = N * np.log(rss / N) + ks_arr * (n + p) * np.log(N)

    noise_level = float(test.floor[test.last]) if test.last else float("nan")
    threshold = float(test.threshold[test.last]) if test.last else float("nan")
    recommended, reason = _recommend(ks_arr, test, model.model, gain, stability, n_init)
    params: dict[str, Any] = {
        "ks": ks_arr.tolist(),
        "n_init": n_init,
        "random_state": _describe_random_state(random_state),
        "entropy": root.entropy,
        "noise": model.model,
        "noise_reason": model.reason,
        "noise_floor": "simulated" if scaling is not None else "marchenko-pastur",
        "margin_sd": MARGIN_SD,
        "profile_size": PROFILE_SIZE,
        "n_draws": N_DRAWS,
        "noise_seed": NOISE_SEED,
        "stable_angle": STABLE_ANGLE,
    }
    params.update({name: p_.default for name, p_ in _NMF_OPTIONS.items() if name not in _OWN})
    params.update(nmf_options)
    return RankSelection(
        image=img, ks=ks_arr, noise=model, spectrum=test.sv2, noise_floor=test.floor,
        spectrum_threshold=test.threshold, signal_rank=test.signal_rank,
        noise_level=noise_level, threshold=threshold, rel_error=rel, rss=rss, gain=gain,
        pca_cumulative=pca_cumulative, stability=stability, n_reappearing=n_reappearing,
        bic=bic, recommended=recommended, reason=reason, unmixings=unmixings, params=params,
    )


def _tested_rss(X: np.ndarray, W: np.ndarray, H: np.ndarray,
                scaling: Optional[PoissonScaling]) -> float:
    """``||X - W H||_F²`` in the units of the spectrum test: of the
    Poisson-scaled data when ``scaling`` is given, so that the NMF gains
    compare with the noise floor. Over row blocks."""
    H64 = np.asarray(H, dtype=np.float64)
    if scaling is not None:
        g = scaling.pixel_scale.reshape(-1)
        h = np.asarray(scaling.channel_scale, dtype=np.float64)
        row = np.divide(1.0, g, out=np.zeros_like(g), where=g > 0)
        col = np.divide(1.0, h, out=np.zeros_like(h), where=h > 0)
    total = 0.0
    for i, B in _blocks(X):
        R = np.asarray(W[i:i + B.shape[0]], dtype=np.float64) @ H64
        R -= B
        if scaling is not None:
            R *= row[i:i + B.shape[0], None]
            R *= col
        total += float(np.einsum("ij,ij->", R, R))
    return total


# ---------------------------------------------------------------------------
# The reason
# ---------------------------------------------------------------------------


def _times(value: float, floor: float) -> str:
    # Four digits: the values that decide sit a few per cent from 1.
    return f"{value / floor:.4g}x" if floor > 0 else ("above 0" if value > 0 else "0")


def _spectrum_words(test: _SpectrumTest, data: str) -> str:
    """The comparisons that set the signal rank, with their numbers."""
    r = test.signal_rank
    parts = []
    if r >= 2:
        i = r - 1
        parts.append(f"s{i + 1}² = {_times(test.sv2[i], test.floor[i])} the noise floor, "
                     f"above the threshold {_times(test.threshold[i], test.floor[i])}")
    if test.last == r:
        i = r
        parts.append(f"s{i + 1}² = {_times(test.sv2[i], test.floor[i])}, not above "
                     + ("it" if r >= 2 and test.threshold[i] / test.floor[i]
                        == test.threshold[i - 1] / test.floor[i - 1]
                        else f"its threshold {_times(test.threshold[i], test.floor[i])}"))
    # The test stops at the first value not above its threshold, or at the
    # largest k tried: then every value it looked at passed.
    counted = ("at least " if test.last == r - 1 and r >= 2 else "") + (
        f"{r} components" if r != 1 else "1 component (the mean spectrum)")
    return f"{data} hold {counted} above the noise" + (": " + ", ".join(parts) if parts else "")


def _recommend(ks: np.ndarray, test: _SpectrumTest, model: str, gain: np.ndarray,
               stability: np.ndarray, n_init: int) -> tuple[int, str]:
    """The recommendation of :func:`select_rank` and its reason: first the
    spectrum test that decided, then the NMF diagnostics at that k."""
    r = test.signal_rank
    data = "the Poisson-scaled data" if model == "poisson" else "the data"
    decided = _spectrum_words(test, data)
    k_first, k_last = int(ks[0]), int(ks[-1])
    if r > k_last:
        k = k_last
        reason = f"k={k}, the largest tried: {decided}; try larger ks"
    elif r < k_first:
        k = k_first
        reason = f"k={k}, the smallest tried: {decided}; try smaller ks"
    else:
        k = int(ks[np.searchsorted(ks, r)])
        reason = f"k={k}: {decided}" if k == r else (
            f"k={k}: {decided}; k={r} was not tried, {k} is the smallest tried above it")

    j = int(np.searchsorted(ks, k))
    floor = test.floor[test.last] if test.last else np.nan
    notes = []
    if j > 0 and np.isfinite(floor):
        words = f"NMF gain per component {_times(gain[j], floor)} the floor at k={k}"
        if j + 1 < len(ks):
            words += f", {_times(gain[j + 1], floor)} at k={int(ks[j + 1])}"
        threshold = test.threshold[test.last]
        if k <= r and not gain[j] > threshold:
            words += (f" (not above the threshold at k={k}: the fits may miss a component "
                      "the spectrum holds; more n_init or init='spa' may help)")
        notes.append(words)
    if n_init > 1 and np.isfinite(stability[j]):
        notes.append(f"restarts at k={k} agree within {stability[j]:.1f} deg (mean SAD)"
                     if stability[j] <= STABLE_ANGLE else
                     f"restarts at k={k} differ by {stability[j]:.1f} deg (mean SAD, above "
                     f"{STABLE_ANGLE:g}: some end in other local minima)")
    return k, reason + ("; diagnostics: " + "; ".join(notes) if notes else "")
