"""Ground truth on real data (../shared/data; skipped when absent).

- Samson (a real hyperspectral image with reference endmembers and
  abundances): the default ``unmix.unmix(image, 3)`` within 3 degrees mean
  spectral angle and 0.10 abundance RMSE for every seed, where plain NMF
  from the same start drifts to 6 degrees and scikit-learn to 25.
- A real STEM-EDS spectrum image (espm's 80 x 80 x 1917 file, counts): by
  default Poisson noise, three components each present over a real part of
  the image (none dead, none a handful of pixels), distinct spectra, and
  the same through HyperSpy's decomposition.
"""

from __future__ import annotations

import numpy as np
import pytest

import unmix
import unmix.io
import unmix.metrics as metrics
from unmix import datasets
from unmix.noise import SparseChannelsWarning

ESPM_FILE = "espm_88_ES-LP_G8_STEM-EDS_80x80x1917.hspy"


@pytest.fixture(scope="module")
def samson():
    try:
        return datasets.load_samson()
    except FileNotFoundError as err:
        pytest.skip(f"the shared reference data is not here: {err}")


@pytest.fixture(scope="module")
def eds_path():
    try:
        path = datasets.data_folder() / "real" / ESPM_FILE
    except FileNotFoundError as err:
        pytest.skip(f"the shared reference data is not here: {err}")
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


@pytest.mark.parametrize("seed", range(5))
def test_samson_default_within_3_degrees(samson, seed):
    u = unmix.unmix(samson.image(), 3, random_state=seed)
    sad = metrics.spectral_angles(samson.endmembers, u.endmembers)
    rmse = metrics.abundance_rmse(samson.abundances, u.abundances.reshape(-1, 3), sad)
    assert sad.mean <= 3.0, f"mean SAD {sad.mean:.2f} deg, per endmember {sad.angles}"
    assert rmse <= 0.10, rmse
    # Reflectance with shading: Gaussian noise, signal fractions.
    assert u.params["noise"] == "gaussian" and u.params["fractions"] == "signal"
    assert u.params["weights"]["excess_share"] > 0.5


def test_samson_plain_nmf_drifts(samson):
    """The reference the default is judged against: plain NMF from the same
    start, and the same fit without the volume term."""
    r = unmix.nmf(samson.X, 3, init="spa", random_state=0)
    assert metrics.mean_sad(samson.endmembers, r.H) > 5.0
    u = unmix.unmix(samson.image(), 3, random_state=0, minvol_H=0.0)
    assert metrics.mean_sad(samson.endmembers, u.endmembers) > 5.0


def test_samson_strict_keeps_the_scaled_endmembers(samson):
    """sum_to_one=True on shaded reflectance: unit sums cannot fit the
    totals, so the endmembers stay the scaled fit's (not stretched to the
    intensities: 6 degrees when they were free) and the fractions, unit
    sums in every pixel, are refitted; an event says why."""
    default = unmix.unmix(samson.image(), 3, random_state=0)
    strict = unmix.unmix(samson.image(), 3, random_state=0, sum_to_one=True)
    # The same spectra (in the order of the fractions, which may differ).
    assert metrics.spectral_angles(default.endmembers, strict.endmembers).mean < 1e-4
    np.testing.assert_allclose(np.sort(strict.endmembers.sum(axis=1)),
                               np.sort(default.endmembers.sum(axis=1)), rtol=1e-9)
    assert metrics.mean_sad(samson.endmembers, strict.endmembers) <= 3.0
    np.testing.assert_allclose(strict.abundances.sum(axis=-1), 1.0, atol=1e-6)
    assert any("endmembers are the scaled fit's, held" in e for e in strict.events)
    assert strict.params["fractions"] == "material" and strict.params["refined_strict"]


def _check_three_phases(F, H):
    """Each component present over at least 0.2 % of the pixels (13 of
    6400: the Ca-perovskite is a few small grains) at a fraction of one
    half or more, and the spectra distinct."""
    assert F.max(axis=0).min() > 0.5
    assert (F > 0.5).mean(axis=0).min() > 0.002
    angles = metrics.angle_matrix(H, H)
    assert angles[np.triu_indices(3, 1)].min() > 10.0


def test_real_eds_map_by_default(eds_path):
    image = unmix.io.read(eds_path)
    # 112 counts per pixel over 1917 channels: 1728 channels have fewer
    # than 0.05 counts per pixel and hold 79 % of the weighted data, which
    # unmix says (with the crop and the binning that fix it).
    with pytest.warns(SparseChannelsWarning, match=r"^1728 of 1917 channels \(1.912 to 20 keV\)"):
        u = unmix.unmix(image, 3, random_state=0)
    assert u.params["noise"] == "poisson"
    assert not any("present nowhere" in e for e in u.events), u.events
    F = u.abundances.reshape(-1, 3)
    _check_three_phases(F, u.endmembers)
    # Spectra in counts per pixel: a pure pixel's total is of the order of
    # the image's mean total.
    mean_total = float(image.X.sum(axis=1).mean())
    assert 0.2 * mean_total < u.endmembers.sum(axis=1).min()
    assert u.endmembers.sum(axis=1).max() < 5 * mean_total


def test_real_eds_map_through_hyperspy(eds_path):
    hs = pytest.importorskip("hyperspy.api")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HyperSpy's unknown-signal-type warnings
        s = hs.load(eds_path)
    s.change_dtype("float64")
    est = unmix.NMF(3, random_state=0)
    # eXSpy's EDS signals would hand over Poisson-normalized data (no
    # longer counts) and mask the vacuum pixels: docs/hyperspy.rst says so.
    with pytest.warns(SparseChannelsWarning, match="1728 of 1917 channels"):
        s.decomposition(algorithm=est, output_dimension=3, print_info=False,
                        normalize_poissonian_noise=False, navigation_mask=None)
    assert est.noise_ == "poisson"
    factors = s.get_decomposition_factors().data
    loadings = s.get_decomposition_loadings().data.reshape(3, -1).T
    np.testing.assert_allclose(factors, est.components_)
    np.testing.assert_allclose(loadings, est.fractions_ * est.intensity_[:, None], rtol=1e-10)
    _check_three_phases(est.fractions_, est.components_)
