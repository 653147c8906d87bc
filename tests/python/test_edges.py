"""The edge-preserving pixel graph (unmix.graphs.edge_aware): weights about
one where the noise explains the difference of neighbours, about zero across
a particle's edge; as the smoothness graph of the abundances it lowers their
error against no smoothing and keeps the particles' edges sharper than the
uniform grid, with no component lost."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import unmix
from eds_sim import simulate
from unmix import fractions, graphs


def _graph(sim, k):
    X = sim.X.reshape(-1, sim.X.shape[-1]).astype(np.float64)
    prep = fractions.prepare(X, "poisson", k, True)
    return graphs.edge_aware(sim.X.shape[:2], prep.M,
                             lambda g: prep.rows * (prep.M @ (prep.columns * g)), k,
                             return_info=True)


def _pairs(shape):
    G = sp.triu(graphs.grid(shape, 8)).tocoo()
    return G.row, G.col


def test_weights_follow_the_edges():
    sim = simulate("particles", dose=300, seed=1)
    k = sim.spectra.shape[0]
    S, info = _graph(sim, k)
    assert S.shape == (1600, 1600) and abs(S - S.T).max() == 0
    assert S.data.min() > 0 and S.data.max() <= 1
    # Same sparsity as the 8-neighbour grid.
    assert (S != 0).sum() == graphs.grid((40, 40), 8).nnz
    A = sim.abundances.reshape(-1, k)
    i, j = _pairs((40, 40))
    step = np.abs(A[i] - A[j]).sum(axis=1)
    w = np.asarray(S[i, j]).ravel()
    flat, edge = step < 1e-9, step > 0.5
    assert flat.sum() > 1000 and edge.sum() > 20
    assert w[flat].mean() > 0.9  # the noise explains these: weight ~1
    assert np.median(w[edge]) < 0.1  # across the particles' rims: ~0
    assert info["calibration"] >= 1 and 0 < info["cut_share"] < 0.2


def test_noise_alone_keeps_every_weight():
    # A single material with Gaussian noise: no edge anywhere.
    rng = np.random.default_rng(0)
    spectrum = np.abs(np.sin(np.linspace(0, 6, 80))) + 0.1
    A = np.tile([0.5, 0.3, 0.2], (900, 1))
    E = np.stack([spectrum, spectrum[::-1], np.roll(spectrum, 20)])
    Y = A @ E + rng.normal(0, 0.05, (900, 80))
    S, info = graphs.edge_aware((30, 30), Y, np.full(900, 0.05**2 * 80), 3, return_info=True)
    assert info["mean_weight"] > 0.9 and info["cut_share"] < 0.02
    # 4-connectivity and a 3-D grid.
    S4 = graphs.edge_aware((30, 30), Y, np.full((900, 80), 0.05**2), 3, connectivity=4)
    assert S4.nnz == graphs.grid((30, 30), 4).nnz
    S3 = graphs.edge_aware((4, 15, 15), Y, np.full(900, 0.05**2 * 80), 3)
    assert S3.nnz == graphs.grid((4, 15, 15), 26).nnz


def test_checks_its_input():
    Y = np.random.default_rng(0).random((100, 5))
    with pytest.raises(ValueError, match="one row per pixel"):
        graphs.edge_aware((10, 11), Y, np.ones(100), 2)
    with pytest.raises(ValueError, match="one finite non-negative"):
        graphs.edge_aware((10, 10), Y, -np.ones(100), 2)


def test_smoothing_keeps_the_particle_edges():
    """Endmembers known (the abundance step of the two-step fit): the
    default smoothing (smooth_W="auto" on the edge-aware graph) beats no
    smoothing overall and the uniform grid at the particles' rims (the band
    of pixels next to a true change of the abundances), and no component
    dies."""
    sim = simulate("particles", dose=100, seed=1)
    k = sim.spectra.shape[0]
    S, _ = _graph(sim, k)
    A = sim.abundances.reshape(-1, k)
    i, j = _pairs((40, 40))
    step = np.abs(A[i] - A[j]).sum(axis=1)
    band = np.zeros(1600, dtype=bool)
    band[i[step > 0.1]] = band[j[step > 0.1]] = True

    def errors(**options):
        u = unmix.unmix(sim.X, k, fixed_H=sim.spectra, random_state=0, **options)
        F = np.empty((1600, k))
        F[:, u.order] = u.abundances.reshape(-1, k)  # back to the spectra's order
        assert F.max(axis=0).min() >= fractions.DEAD_FRACTION
        err = (F - A) ** 2
        return np.sqrt(err.mean()), np.sqrt(err[band].mean())

    none, none_band = errors()
    uniform, uniform_band = errors(smooth_W="auto", graph_W=graphs.grid((40, 40), 8))
    edge, edge_band = errors(smooth_W="auto")
    assert edge == pytest.approx(errors(smooth_W="auto", graph_W=S)[0], rel=1e-6)
    assert edge < 0.85 * none and edge < uniform
    assert edge_band < 0.9 * uniform_band and edge_band < none_band
