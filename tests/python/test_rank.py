"""unmix.select_rank: the rank read off the singular values against the
noise floor, the same for every seed and n_init; the NMF fits at every rank
as diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import unmix
from unmix import preprocess, rank
from unmix.datasets import data_folder, tof_sims_like
from unmix.image import SpectralImage
from unmix.noise import SparseChannelsWarning

from eds_sim import simulate

# The fits are diagnostics: short plain NMF runs give the same recommendation
# as the default fraction model and keep these tests fast.
FAST = {"sum_to_one": False, "max_iter": 30}


def clear_image(k, shape=(24, 24), n_channels=64, noise=0.01, seed=0):
    """Clearly separated data of rank k: one Gaussian peak per endmember at
    evenly spaced channels (little overlap) on a small flat background,
    Dirichlet(0.5) abundances (well mixed, with nearly pure pixels), and
    white noise of 1 % of the mean, clipped at zero."""
    rng = np.random.default_rng(seed)
    channels = np.arange(n_channels)
    centres = np.linspace(4, n_channels - 5, k) + rng.uniform(-1, 1, k)
    E = np.stack([np.exp(-0.5 * ((channels - c) / 2.0) ** 2) for c in centres]) + 0.02
    A = rng.dirichlet(np.full(k, 0.5), size=int(np.prod(shape)))
    X = A @ E
    X = np.clip(X + rng.normal(0.0, noise * X.mean(), X.shape), 0.0, None)
    return SpectralImage(X.reshape(*shape, n_channels), channel_unit="eV", name=f"clear{k}")


def eds(kind="particles", k=3, pure=False, dose=50, seed=0):
    """A small EDS-like image of Poisson counts (eds_sim)."""
    return SpectralImage(simulate(kind, shape=(32, 32), n_channels=200, k=k, pure=pure,
                                  dose=dose, seed=seed).X, channel_unit="keV")


def tof(dose=100, seed=0):
    return tof_sims_like(spatial_shape=(24, 24), n_channels=96, n_components=3,
                         counts_per_pixel=dose, seed=seed).image()


# Images of known rank: Gaussian noise (clear) and Poisson counts (eds, tof).
KNOWN = {
    "gaussian rank 3": (lambda: clear_image(3, seed=3), 3),
    "gaussian rank 5": (lambda: clear_image(5, seed=5), 5),
    "gaussian rank 8": (lambda: clear_image(8, seed=8), 8),
    "eds particles rank 3, mixed": (lambda: eds(), 3),
    "eds particles rank 3, pure": (lambda: eds(pure=True, dose=200, seed=1), 3),
    "eds particles rank 2": (lambda: eds(k=2, seed=2), 2),
    "eds boundary rank 2": (lambda: eds("boundary", k=2, seed=3), 2),
    "tof rank 3, 100 counts": (lambda: tof(), 3),
    "tof rank 3, 2000 counts": (lambda: tof(2000, seed=1), 3),
}
STABILITY = ["gaussian rank 3", "gaussian rank 5", "eds particles rank 3, mixed",
             "eds boundary rank 2", "tof rank 3, 100 counts"]


@pytest.mark.parametrize("name", STABILITY)
def test_same_k_for_every_seed_and_n_init(name):
    make, k = KNOWN[name]
    image = make()
    first = None
    recommended, objectives = set(), set()
    for seed in range(4):
        for n_init in (1, 2, 3):
            s = unmix.select_rank(image, [max(2, k - 1), k, k + 1], n_init=n_init,
                                  random_state=seed,
                                  **FAST)
            recommended.add((s.recommended, s.signal_rank))
            objectives.add(s.unmixings[k + 1].restarts[-1].objective)
            if first is None:
                first = s
            # What decides is computed from the data alone, bit for bit.
            assert_array_equal(s.spectrum, first.spectrum)
            assert_array_equal(s.noise_floor, first.noise_floor)
            assert s.reason.split("; diagnostics")[0] == first.reason.split("; diagnostics")[0]
    assert recommended == {(k, k)}
    # ... while the fits themselves changed with the seed.
    assert len(objectives) > 1


@pytest.mark.parametrize("name", KNOWN)
def test_recommends_the_true_rank(name):
    make, k = KNOWN[name]
    s = unmix.select_rank(make(), range(2, k + 3), n_init=1, random_state=0, **FAST)
    assert (s.recommended, s.signal_rank) == (k, k), s.reason
    # s_k stands above its threshold, s_{k+1} does not: the test stopped there.
    assert s.spectrum[k - 1] > s.spectrum_threshold[k - 1]
    assert s.spectrum[k] <= s.spectrum_threshold[k]
    assert np.isnan(s.noise_floor[0]) and np.isnan(s.noise_floor[k + 1:]).all()
    assert s.noise_level == s.noise_floor[k] and s.threshold == s.spectrum_threshold[k]


@pytest.mark.parametrize("k", [3, 5, 8])
def test_nmf_diagnostics_agree_on_clear_data(k):
    """On clearly separated data the NMF diagnostics tell the same story as
    the spectrum: gains far above the noise floor up to the true rank and
    about the floor past it, stable endmembers, those of k - 1 reappearing."""
    image = clear_image(k, seed=k)
    # k >= 2: the restarts' VCA start needs two components.
    s = unmix.select_rank(image, range(max(2, k - 2), k + 3), n_init=2, random_state=0,
                          sum_to_one=False)
    assert s.recommended == k and f"k={k}" in s.reason
    j = s.ks.tolist().index(k)
    assert np.all(s.gain[1:j + 1] > 100 * s.threshold)
    assert np.all(s.gain[j + 1:] < s.threshold)
    assert s.stability[j] < 5.0
    assert s.n_reappearing[j + 1] == k and s.n_reappearing[0] == -1
    assert np.all(np.diff(s.pca_cumulative) >= -1e-12) and s.pca_cumulative[-1] <= 1 + 1e-12
    assert np.argmin(s.bic) == j


def test_reason_states_the_numbers_that_decided():
    s = unmix.select_rank(eds(), range(2, 6), n_init=2, random_state=0, **FAST)
    f, t = s.noise_floor, s.spectrum_threshold
    assert s.recommended == 3
    assert s.reason.startswith("k=3: the Poisson-scaled data hold 3 components above the noise")
    assert f"s3² = {s.spectrum[2] / f[2]:.4g}x the noise floor" in s.reason
    assert f"above the threshold {t[2] / f[2]:.4g}x" in s.reason
    assert f"s4² = {s.spectrum[3] / f[3]:.4g}x, not above it" in s.reason
    assert f"NMF gain per component {s.gain[1] / s.noise_level:.4g}x the floor at k=3" in s.reason
    assert f"{s.gain[2] / s.noise_level:.4g}x at k=4" in s.reason
    assert f"restarts at k=3 agree within {s.stability[1]:.1f} deg" in s.reason
    # The numbers say what the words say.
    assert s.spectrum[2] / f[2] > t[2] / f[2] >= s.spectrum[3] / f[3]
    assert s.stability[1] <= rank.STABLE_ANGLE
    assert "only" not in s.reason


def test_reason_for_gaussian_noise():
    s = unmix.select_rank(clear_image(3, seed=3), [2, 3, 4], n_init=1, random_state=0, **FAST)
    f, t = s.noise_floor, s.spectrum_threshold
    # White noise: every test has its own floor (sigma² from the values past
    # it), the threshold the same multiple of it.
    assert f[2] != f[3] and t[2] / f[2] == pytest.approx(t[3] / f[3], rel=1e-12)
    assert s.reason.startswith("k=3: the data hold 3 components above the noise")
    assert (f"s3² = {s.spectrum[2] / f[2]:.4g}x the noise floor, above the threshold "
            f"{t[2] / f[2]:.4g}x, s4² = {s.spectrum[3] / f[3]:.4g}x, not above it") in s.reason


@pytest.mark.parametrize("ks, recommended, words", [
    ([1, 2], 2, ["k=2, the largest tried", "at least 3 components", "try larger ks"]),
    ([5, 6], 5, ["k=5, the smallest tried", "hold 3 components", "try smaller ks"]),
    ([2, 4, 6], 4, ["k=4:", "k=3 was not tried, 4 is the smallest tried above it"]),
    ([3], 3, ["k=3:", "hold 3 components"]),
])
def test_ks_that_miss_the_rank(ks, recommended, words):
    s = unmix.select_rank(clear_image(3, seed=3), ks, n_init=1, random_state=0, **FAST)
    assert s.recommended == recommended and s.signal_rank == 3
    for word in words:
        assert word in s.reason, s.reason


def test_white_noise_alone_gives_rank_one():
    """A constant spectrum plus white noise has one component; over many
    noise draws no noise value passes the threshold, and the floor is the
    expected largest singular value squared of that noise."""
    n, p, sigma = 400, 100, 0.05
    expected = sigma**2 * ((np.sqrt(n) + np.sqrt(p)) ** 2 - 1.2065 * (np.sqrt(n) + np.sqrt(p))
                           * (1 / np.sqrt(n) + 1 / np.sqrt(p)) ** (1 / 3))
    for seed in range(20):
        X = 1.0 + np.random.default_rng(seed).normal(0.0, sigma, (n, p))
        test = rank._test_spectrum(X, 5)
        assert test.signal_rank == 1, seed
        assert abs(test.floor[1] / expected - 1) < 0.03


def test_poisson_counts_of_a_single_spectrum_give_rank_one():
    mean = np.outer(np.linspace(20, 60, 30 * 30), np.linspace(0.1, 2.0, 80) ** 2)
    for seed in range(10):
        counts = SpectralImage(np.random.default_rng(seed).poisson(mean).reshape(30, 30, 80))
        scaled, scaling = preprocess.poisson_scale(counts)
        test = rank._test_spectrum(scaled.X, 5, counts, scaling)
        assert test.signal_rank == 1, seed


def test_noise_model_is_chosen_and_recorded():
    counts = eds()
    s = unmix.select_rank(counts, [2, 3, 4], n_init=1, random_state=0, **FAST)
    assert s.noise.model == "poisson" and "integer counts" in s.noise.reason
    assert s.params["noise"] == "poisson" and s.params["noise_reason"] == s.noise.reason
    assert s.params["noise_floor"] == "simulated"
    assert all(u.params["noise_reason"] == s.noise.reason for u in s.unmixings.values())
    # The override, and data scaled beforehand: no longer counts.
    forced = unmix.select_rank(counts, [2, 3, 4], n_init=1, random_state=0, noise="gaussian",
                               **FAST)
    assert forced.noise.model == "gaussian" and "asked for" in forced.noise.reason
    assert forced.params["noise_floor"] == "marchenko-pastur"
    scaled = unmix.select_rank(preprocess.poisson_scale(counts)[0], [2, 3, 4], n_init=1,
                               random_state=0, **FAST)
    assert scaled.noise.model == "gaussian"
    # Poisson: the spectrum of the scaled counts, whoever scaled them;
    # Gaussian: that of the data as given.
    np.testing.assert_allclose(s.spectrum, scaled.spectrum, rtol=1e-9)
    raw = np.linalg.svd(counts.X.astype(np.float64), compute_uv=False) ** 2
    np.testing.assert_allclose(forced.spectrum, raw[:forced.spectrum.size], rtol=1e-9)


def test_restarts_are_reproducible_and_n_init_only_adds_some():
    image = clear_image(3, seed=3)
    two = unmix.select_rank(image, [2, 3, 4], n_init=2, random_state=5, **FAST)
    three = unmix.select_rank(image, [2, 3, 4], n_init=3, random_state=5, **FAST)
    for k in (2, 3, 4):
        assert three.unmixings[k].restarts[:2] == two.unmixings[k].restarts


def test_select_rank_reuses_unmix():
    image = tof()
    selection = unmix.select_rank(image, [2, 3, 4], n_init=2, random_state=4)
    u = unmix.unmix(image, 3, n_init=2, random_state=4)
    assert selection.unmixings[3].restarts == u.restarts
    assert_array_equal(selection.unmixings[3].endmembers, u.endmembers)
    assert selection.best is selection.unmixings[selection.recommended]
    assert selection.rel_error[1] == pytest.approx(u.rel_error)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"ks": []}, ValueError, "ks"),
    ({"ks": [0, 1]}, ValueError, "ks"),
    ({"ks": [2, 3.0]}, TypeError, "ks"),
    ({"ks": 5}, TypeError, "ks"),
    ({"ks": [2, 1000]}, ValueError, "ks"),
    ({"ks": [2, 3], "noise": "white"}, ValueError, "noise"),
    ({"ks": [2, 3], "n_iter": 5}, TypeError, "n_iter"),
    ({"ks": [2, 3], "n_init": 0}, ValueError, "n_init"),
])
def test_errors_name_the_parameter(kwargs, error, words):
    with pytest.raises(error, match=words):
        unmix.select_rank(clear_image(3), **kwargs)


def test_poisson_noise_needs_non_negative_data():
    image = clear_image(3)
    negative = SpectralImage(image.data - 1.0)
    with pytest.raises(ValueError, match="noise='poisson'"):
        unmix.select_rank(negative, [2, 3], noise="poisson")


def test_import_paths():
    from unmix.workflow import RankSelection, select_rank

    assert select_rank is unmix.select_rank is rank.select_rank
    assert RankSelection is rank.RankSelection


def _real(name):
    try:
        path = data_folder() / "real" / name
    except FileNotFoundError as err:
        pytest.skip(f"the shared reference data is not here: {err}")
    if not path.exists():
        pytest.skip(f"{name} is not in the shared data folder")
    import unmix.io

    return unmix.io.read(path)


@pytest.mark.slow
def test_counts_of_strong_contrast_need_the_simulated_floor():
    """A Bruker SEM-EDS map (Ag, Al, Cu ...): Poisson scaling leaves its noise
    far from white, so the white floor calls a long tail of noise values
    signal; the floor simulated from the local spectrum shape does not."""
    counts = _real("bruker_50x50_SEM-EDS_AlAgCu.bcf")
    # 1331 of its 2048 channels have under 0.05 counts per pixel: without
    # the cap of unmix's weights they hold 57 % of the scaled data.
    with pytest.warns(SparseChannelsWarning, match=r"^1331 of 2048 channels"):
        scaled, scaling = preprocess.poisson_scale(counts)
    poisson = rank._test_spectrum(scaled.X, 10, counts, scaling)
    white = rank._test_spectrum(scaled.X, 10)
    assert poisson.signal_rank == 2
    assert white.signal_rank == 11  # every value tested, up to s11, passed
    assert poisson.floor[1] / white.floor[1] > 1.1
