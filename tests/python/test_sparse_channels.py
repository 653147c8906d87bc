"""Poisson weights on nearly empty channels: unmix, poisson_scale and the
command line say how many, where, and what to do."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import unmix
from unmix import SpectralImage, cli, preprocess
from unmix.datasets import tof_sims_like
from unmix.noise import SPARSE_COUNT, SparseChannelsWarning, sparse_channels


def _sparse_eds(seed=0):
    """Two phases with peaks in the first 50 of 300 channels (0.1 to 30
    keV, 0.1 keV apart), 40 counts per pixel on a continuum of 0.2 per
    channel there; the other 250 channels a flat tail of 0.01 counts per
    pixel (single counts, as at the high energies of an EDS map)."""
    rng = np.random.default_rng(seed)
    energy = np.round(np.arange(1, 301) * 0.1, 1)
    spectra = np.zeros((2, 300))
    for j, centres in enumerate(((1.5, 2.5, 4.0), (2.0, 3.2, 4.5))):
        for c in centres:
            spectra[j] += np.exp(-0.5 * ((energy - c) / 0.15) ** 2)
    spectra[:, :50] /= spectra[:, :50].sum(axis=1, keepdims=True) / 40.0
    spectra[:, :50] += 0.2  # the continuum under the peaks
    spectra[:, 50:] = 0.01
    fractions = rng.dirichlet([0.5, 0.5], size=30 * 30)
    counts = rng.poisson(fractions @ spectra).astype(np.float64)
    return SpectralImage(counts.reshape(30, 30, 300), channels=energy, channel_unit="keV")


def test_unmix_warns_on_sparse_channels_and_says_what_to_do():
    image = _sparse_eds()
    with pytest.warns(SparseChannelsWarning) as record:
        u = unmix.unmix(image, 2, random_state=0)
    message = str(record[0].message)
    assert u.params["noise"] == "poisson"
    # How many, where, their share, and the exact fixes.
    assert message.startswith("250 of 300 channels (5.1 to 30 keV) have fewer than 0.05 counts "
                              "per pixel on average and hold ")
    assert "unmix.preprocess.crop(image, channels=(0.1, 5))" in message
    assert "unmix run --channel-range 0.1:5; by index channels 0:50" in message
    assert "which removes 250 of them" in message
    assert "unmix.preprocess.bin(image, channels=5) (unmix run --bin 1,1,5)" in message
    assert "noise='gaussian' (--noise gaussian)" in message
    assert message in u.events


def test_the_fixes_it_names_silence_it():
    image = _sparse_eds()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a note
        unmix.unmix(preprocess.crop(image, channels=(0.1, 5)), 2, random_state=0)
        unmix.unmix(preprocess.bin(image, 1, channels=5), 2, random_state=0)
        u = unmix.unmix(image, 2, random_state=0, noise="gaussian")
    assert not any("counts per pixel" in e for e in u.events)


def test_poisson_scale_warns_too():
    with pytest.warns(SparseChannelsWarning, match=r"^250 of 300 channels"):
        preprocess.poisson_scale(_sparse_eds())


def test_dense_counts_do_not_warn():
    # ToF-SIMS-like counts, 2000 per pixel over 512 masses: every channel
    # has at least 0.05 counts per pixel on average.
    image = tof_sims_like(spatial_shape=(32, 32), n_channels=128, seed=1).image()
    assert image.X.mean(axis=0).min() >= SPARSE_COUNT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preprocess.poisson_scale(image)
        unmix.unmix(image, 3, random_state=0, max_iter=50)


def test_threshold_is_the_share_of_the_weighted_data():
    means = np.array([1.0, 1.0, 0.01, 0.01])
    channels = np.arange(4.0)
    # Half of the energy in the sparse channels: not more than half, quiet.
    assert sparse_channels(means, [1.0, 1.0, 1.0, 1.0], channels) is None
    message = sparse_channels(means, [1.0, 1.0, 1.5, 1.5], channels, "keV")
    assert message.startswith("2 of 4 channels (2 to 3 keV)") and "hold 60 %" in message
    # Empty channels (no count at all) are not weighted up: not counted.
    assert sparse_channels([1.0, 0.0, 0.0], [1.0, 5.0, 5.0], np.arange(3.0)) is None


def test_cli_run_prints_it_as_a_note(tmp_path, capsys):
    np.save(tmp_path / "eds.npy", _sparse_eds().data)
    with pytest.warns(SparseChannelsWarning):
        code = cli.main(["run", str(tmp_path / "eds.npy"), "-k", "2", "-q", "--seed", "0",
                         "-o", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "note: 250 of 300 channels" in printed
