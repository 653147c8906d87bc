"""The noise model of a spectral image, chosen from the data.

Counting detectors (EDS, ToF-SIMS, EELS in counting mode, photon-counting
cameras) give Poisson noise, whose variance is the count itself; other data
(reflectance, gain-corrected intensities, Raman CCD spectra after
processing) are treated as Gaussian with one variance. :func:`choose` makes
the call that :func:`unmix.unmix`, ``unmix run`` and :class:`unmix.NMF`
make when ``noise="auto"`` (their default):

- data whose values are all non-negative whole numbers (an integer dtype,
  or floats that happen to be integers, as after HyperSpy's
  ``change_dtype("float64")``) are counts;
- so are non-negative data that a reader labelled as X-ray spectra
  (HyperSpy ``signal_type`` "EDS", "EDS_SEM", "EDS_TEM"), binned or not;
- everything else is Gaussian.

The choice and its reason are recorded in the result and can be overridden
with ``noise="poisson"`` or ``noise="gaussian"``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np
import scipy.sparse as sp

from ._validation import block_step, check_choice

__all__ = ["NOISE_MODELS", "SPARSE_COUNT", "SPARSE_SHARE", "NoiseModel", "SparseChannelsWarning",
           "choose", "is_counts", "regression_variance", "sparse_channels", "top_eigenvalues"]

NOISE_MODELS = ("auto", "poisson", "gaussian")

#: HyperSpy signal types whose data are X-ray counts.
_COUNTING_SIGNALS = ("EDS", "EDS_SEM", "EDS_TEM")


class NoiseModel(NamedTuple):
    """The noise model used for a fit: ``model`` is "poisson" or
    "gaussian", ``reason`` one line saying why (for summaries and reports)."""

    model: str
    reason: str


def _values(X: Any) -> Any:
    """The stored values of X: the data of a sparse matrix, else X."""
    return X.data if sp.issparse(X) else X


def _whole_numbers(X: Any) -> bool:
    """Whether every value of X is a whole number, in row blocks (no
    temporary of X's size)."""
    V = _values(X)
    if V.dtype.kind in "biu":
        return True
    if V.dtype.kind != "f":
        return False
    V = np.asarray(V)
    flat = V.reshape(V.shape[0], -1) if V.ndim > 1 else V.reshape(1, -1)
    step = block_step(flat.shape[1])
    for i in range(0, flat.shape[0], step):
        block = flat[i:i + step]
        if not np.array_equal(block, np.floor(block)):
            return False
    return True


def _signal_type(metadata: Optional[dict]) -> str:
    """The HyperSpy signal type recorded by a reader, if any."""
    if not metadata:
        return ""
    for source in (metadata, metadata.get("attrs") or {}, metadata.get("original_metadata") or {}):
        if not isinstance(source, dict):
            continue
        for key in ("signal_type", "Signal.signal_type"):
            value = source.get(key)
            if isinstance(value, (str, bytes)):
                return value.decode() if isinstance(value, bytes) else value
        signal = source.get("Signal")
        if isinstance(signal, dict) and isinstance(signal.get("signal_type"), str):
            return signal["signal_type"]
    return ""


def is_counts(X: Any, metadata: Optional[dict] = None) -> tuple[bool, str]:
    """Whether X looks like counts, and why (see the module's rule)."""
    V = _values(X)
    if V.size == 0:
        return False, "the data are empty"
    if float(np.min(V)) < 0:
        return False, "the data have negative values"
    if not np.any(V):
        return False, "the data are all zero"
    signal = _signal_type(metadata)
    if signal.upper() in _COUNTING_SIGNALS:
        return True, f"the file labels them X-ray counts (signal type {signal})"
    if V.dtype.kind in "biu":
        return True, f"the data are integer counts (dtype {V.dtype})"
    if _whole_numbers(X):
        return True, "the data are whole numbers (counts)"
    return False, "the data are not counts (values that are not whole numbers)"


def choose(X: Any, metadata: Optional[dict] = None, noise: str = "auto") -> NoiseModel:
    """The noise model for X: ``noise`` itself when it is "poisson" or
    "gaussian", else the rule of this module.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_pixels, n_channels)
    metadata : dict, optional
        A :class:`~unmix.SpectralImage`'s metadata (the reader's labels).
    noise : {"auto", "poisson", "gaussian"}

    Returns
    -------
    NoiseModel

    Raises
    ------
    ValueError
        For ``noise="poisson"`` on data with negative values (counts are
        never negative).
    """
    noise = check_choice(noise, "noise", NOISE_MODELS)
    if noise == "gaussian":
        return NoiseModel("gaussian", "asked for (noise='gaussian')")
    if noise == "poisson":
        V = _values(X)
        if V.size and float(np.min(V)) < 0:
            raise ValueError("noise='poisson' needs non-negative data (counts), got a minimum "
                             f"of {float(np.min(V)):g}")
        return NoiseModel("poisson", "asked for (noise='poisson')")
    counts, why = is_counts(X, metadata)
    return NoiseModel("poisson" if counts else "gaussian", why)


# ---------------------------------------------------------------------------
# Nearly empty channels under Poisson weights
# ---------------------------------------------------------------------------

#: Poisson weights divide a channel by the square root of its mean count
#: ``m``: its noise energy per entry becomes about 1 and its signal energy
#: ``m``. Below this mean count per pixel a weighted channel is noise at
#: least 20 times over (single counts in channels the signal hardly
#: reaches: high energies of an EDS map, masses between the peaks).
SPARSE_COUNT = 0.05
#: ... and such channels are worth a warning when they hold more than this
#: share of the energy of the weighted matrix the fit sees: most of what it
#: is then asked to reproduce is single counts, which a component may go to
#: fitting.
SPARSE_SHARE = 0.5


class SparseChannelsWarning(UserWarning):
    """Poisson weights make noise of nearly empty channels a large part of
    the data (see :func:`sparse_channels`)."""


def sparse_channels(means: Any, energies: Any, channels: Any, unit: str = "",
                    spatial_axes: int = 2) -> Optional[str]:
    """What to say when Poisson-weighted data are mostly single counts of
    nearly empty channels, or None when they are not.

    Parameters
    ----------
    means : array of shape (n_channels,)
        Each channel's mean count per pixel, in the data as counted.
    energies : array of shape (n_channels,)
        Each channel's sum of squares in the weighted matrix the fit sees.
    channels, unit
        The channel axis and its unit, for the message.
    spatial_axes : int
        For the command-line form of the binning advice.

    Returns
    -------
    str or None
        When the channels with ``0 < mean < SPARSE_COUNT`` hold more than
        ``SPARSE_SHARE`` of ``energies``: how many there are, where, and
        the fixes (crop to the channels with counts, sum channels or pixels,
        or Gaussian noise), with the exact arguments.
    """
    m = np.asarray(means, dtype=np.float64)
    e = np.asarray(energies, dtype=np.float64)
    c = np.asarray(channels, dtype=np.float64)
    sparse = (m > 0) & (m < SPARSE_COUNT)
    total = float(e.sum())
    if not sparse.any() or total <= 0:
        return None
    share = float(e[sparse].sum()) / total
    if share <= SPARSE_SHARE:
        return None
    u = f" {unit}" if unit else ""
    where = f"{c[sparse].min():.4g} to {c[sparse].max():.4g}{u}"
    fixes = []
    positive = m[m > 0]
    factor = int(np.ceil(SPARSE_COUNT / float(np.median(positive))))
    if factor > 1:
        fixes.append(f"sum channels or pixels so that the median channel gets {SPARSE_COUNT} "
                     f"counts: unmix.preprocess.bin(image, channels={factor}) (unmix run --bin "
                     f"{','.join(['1'] * spatial_axes + [str(factor)])}), or {factor} pixels")
    dense = np.flatnonzero(m >= SPARSE_COUNT)
    if dense.size:
        i0, i1 = int(dense[0]), int(dense[-1]) + 1
        removed = int(sparse.sum() - sparse[i0:i1].sum())
        if removed:
            lo, hi = c[i0], c[i1 - 1]
            inside = e[i0:i1]
            left = float(inside[sparse[i0:i1]].sum() / inside.sum()) if inside.sum() > 0 else 0.0
            fixes.append(f"crop to the channels from the first to the last with {SPARSE_COUNT} "
                         f"counts or more: unmix.preprocess.crop(image, channels=({lo:.6g}, "
                         f"{hi:.6g})) (unmix run --channel-range {lo:.6g}:{hi:.6g}; by index "
                         f"channels {i0}:{i1}), which removes {removed} of them"
                         + (f" and leaves the others {100 * left:.0f} % of the data (crop and "
                            "sum)" if left > SPARSE_SHARE else ""))
    fixes.append("use noise='gaussian' (--noise gaussian), which weights every channel alike")
    return (f"{int(sparse.sum())} of {m.size} channels ({where}) have fewer than {SPARSE_COUNT} "
            f"counts per pixel on average and hold {100 * share:.0f} % of the Poisson-weighted "
            f"data: their single counts are noise, which the weights (one over the square root "
            f"of the mean count) make as large as the peaks, and a component may go to fitting "
            f"it. " + _sentence("; or ".join(fixes)) + ".")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------
# Noise and signal energies
# ---------------------------------------------------------------------------


def _row_blocks(Y: Any) -> Any:
    """Row blocks of Y as float64 arrays (~8 MB each); a sparse Y whole."""
    if sp.issparse(Y):
        yield Y.astype(np.float64)
        return
    step = block_step(Y.shape[1])
    for i in range(0, Y.shape[0], step):
        yield np.asarray(Y[i:i + step], dtype=np.float64)


def top_eigenvalues(Y: Any, k: int, total: Optional[float] = None, rel_tol: float = 1e-4,
                    max_iter: int = 100) -> np.ndarray:
    """The k largest eigenvalues of ``YᵀY`` (the squared singular values of
    Y), by block subspace iteration with k + 8 vectors over row blocks of Y:
    two products with Y per round, no matrix of Y's size. It stops when the
    sum of the k values changes by less than ``rel_tol`` times the residual
    ``||Y||² - sum`` (``||Y||²`` is ``total`` when the caller has it), the
    precision a residual energy needs: a few rounds even when the k-th value
    sits close to the noise's."""
    m = Y.shape[1]
    q = min(m, k + 8)
    rng = np.random.default_rng(0)  # a fixed start: the same data give the same values
    Q, _ = np.linalg.qr(rng.standard_normal((m, q)))
    if total is None:
        total = sum(float(np.sum((B.data if sp.issparse(B) else B) ** 2)) for B in _row_blocks(Y))
    previous = None
    values = np.zeros(k)
    for _ in range(max_iter):
        Z = np.zeros((m, q))
        for B in _row_blocks(Y):
            Z += B.T @ (B @ Q)
        T = Q.T @ Z
        values = np.sort(np.linalg.eigvalsh((T + T.T) / 2))[::-1][:k]
        Q, _ = np.linalg.qr(Z)
        if previous is not None and abs(values.sum() - previous) <= rel_tol * max(
                total - values.sum(), 1e-300 * total):
            break
        previous = values.sum()
    return np.clip(values, 0.0, None)


def regression_variance(Y: np.ndarray) -> Optional[float]:
    r"""The noise variance per entry of Y from how well each channel is
    predicted by all the others (Bioucas-Dias & Nascimento's HySime noise
    estimate): the residual of regressing channel j on the rest is
    :math:`e_j = Y g_j / g_{jj}` with :math:`g_j` the j-th column of
    :math:`(YᵀY)^{-1}`, and its mean square times :math:`N / (N - C + 1)`
    (the degrees of freedom the regression used) estimates the noise
    variance. Unlike the residual of a rank-k fit it does not count
    structure the k components miss (endmember variability, nonlinear
    mixing, more components) as noise. None when there are too few samples
    for the regression (C > N / 3) or the channels are linearly dependent.
    """
    N, C = Y.shape
    if C < 2 or C > N // 3:
        return None
    G = np.zeros((C, C))
    for B in _row_blocks(Y):
        G += B.T @ B
    try:
        Gi = np.linalg.inv(G)
    except np.linalg.LinAlgError:
        return None
    d = np.diag(Gi)
    if not np.all(d > 0) or not np.all(np.isfinite(Gi)):
        return None
    total = 0.0
    for B in _row_blocks(Y):
        E = B @ (Gi / d)
        total += float(np.einsum("ij,ij->", E, E))
    return total / (N * C) * N / (N - C + 1)
