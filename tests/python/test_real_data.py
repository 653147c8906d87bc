"""Ground-truth recovery on the real Samson image (../shared/data): with the
start the docs recommend for spectral images — endmembers picked from the
pixels (init="spa" or "vca") — the mean spectral angle to the reference
endmembers is at most 8 degrees (plain scikit-learn NMF: about 25)."""

from __future__ import annotations

import pytest

import unmix
import unmix.metrics as metrics
from unmix import datasets


@pytest.fixture(scope="module")
def samson():
    try:
        return datasets.load_samson()
    except FileNotFoundError as err:
        pytest.skip(f"the shared reference data is not here: {err}")


@pytest.mark.parametrize("init", ["spa", "vca"])
def test_samson_endmembers_within_8_degrees(samson, init: str) -> None:
    r = unmix.nmf(samson.X, 3, init=init, random_state=0)
    sad = metrics.spectral_angles(samson.endmembers, r.H)
    assert sad.mean <= 8.0, f"mean SAD {sad.mean:.2f} deg, per endmember {sad.angles}"
    assert r.rel_error[-1] < 0.05
