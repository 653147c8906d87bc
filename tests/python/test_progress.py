"""Progress bars end on the true count: the iterations of every fit, the
fits run (refinements the labels did not foresee included), the passes of
a PCA."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import unmix
from unmix import cli
from unmix._nmf import IterationInfo
from conftest import make_noisy


def _info(iteration, rel_error=0.5):
    return IterationInfo(iteration, 1.0, rel_error, 0.0)


def test_fit_bar_ends_each_fit_on_its_last_iteration(capsys):
    bar = cli._FitProgress(["NMF start 1/2", "NMF start 2/2"], "NMF")
    # Fast fits: the throttled postfix would stay on iteration 1.
    for fit_iterations in (46, 12, 5):  # the third is a refinement
        for i in range(1, fit_iterations + 1):
            bar(_info(i, rel_error=1.0 / i))
    bar.close()
    err = capsys.readouterr().err
    frames = [f for f in re.split(r"[\r\n]", err) if f.strip()]
    # When the second fit starts, the first one is shown on its iteration 46.
    switch = next(i for i, f in enumerate(frames) if f.startswith("NMF start 2/2"))
    assert "iteration 46," in frames[switch - 1] or "iteration 46," in frames[switch]
    assert bar.bar.n == bar.bar.total == 3
    assert "NMF refinement" in frames[-1] and "3/3" in frames[-1]
    assert "iteration 5, rel. error 0.2" in frames[-1]


def test_nmf_verbose_bar_ends_on_the_iterations_run(capsys):
    X = make_noisy(seed=3, shape=(40, 30))
    result = unmix.nmf(X, 3, tol=1e-3, max_iter=500, verbose=True)
    assert 1 < result.n_iter < 500
    last = [f for f in re.split(r"[\r\n]", capsys.readouterr().err) if f.strip()][-1]
    assert f" {result.n_iter}/500 " in last


def test_cli_pca_bar_counts_every_pass(files_dir, capsys):
    code = cli.main(["pca", str(files_dir / "cube.npy"), "-k", "2", "-o",
                     str(files_dir / "pca")])
    assert code == 0
    err = capsys.readouterr().err
    last = [f for f in re.split(r"[\r\n]", err) if f.startswith("PCA")][-1]
    total = unmix.workflow._pca_passes("randomized")
    assert f"{total}/{total}" in last


def test_stage_line_only_for_slow_steps(capsys):
    with cli._Stage("reading quick.npy", quiet=False):
        pass
    assert capsys.readouterr().err == ""
    with cli._Stage("reading slow.npy", quiet=False):
        time.sleep(1.3)
    err = capsys.readouterr().err
    assert "reading slow.npy [00:01]" in err
    with cli._Stage("reading slow.npy", quiet=True):
        time.sleep(1.1)
    assert capsys.readouterr().err == ""


@pytest.fixture
def files_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cube.npy", rng.random((30, 30, 120)))
    return tmp_path
