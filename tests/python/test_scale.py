"""The units of the data do not matter: a fit of c·X is the fit of X with
factors scaled by √c, for tiny and huge c, every solver and constraint —
and where a scale is out of reach, the error says so."""

from __future__ import annotations

import numpy as np
import pytest

import unmix

rng = np.random.default_rng(0)
X = rng.random((80, 5)) @ rng.random((5, 60)) + 0.01 * rng.random((80, 60))

# (solver, settings, how each weight scales with c so that the problem is
# the same problem in other units)
CASES = {
    "bpp": ("bpp", {}),
    "hals": ("hals", {}),
    "mu": ("mu", {}),
    "kl": ("mu", dict(loss="kl")),
    "bpp sum_to_one": ("bpp", dict(sum_to_one=True)),
    "mu sum_to_one": ("mu", dict(sum_to_one=True)),
    "hals l1": ("hals", dict(l1_W=0.1)),
    "bpp l2": ("bpp", dict(l2_H=0.5)),
    "mu bounds": ("mu", dict(bounds_W=(0, 0.8))),
    "bpp minvol": ("bpp", dict(minvol_H=0.1)),
}


def in_units(settings, c):
    """The same problem for c·X: W and H scale by √c, so the ℓ1 weights by
    c^1.5, ℓ2 by c, bounds by √c; min-volume (a log) by c²."""
    out = dict(settings)
    for key, power in (("l1_W", 1.5), ("l2_H", 1.0), ("minvol_H", 2.0)):
        if key in out:
            out[key] = out[key] * c ** power
    if "bounds_W" in out:
        out["bounds_W"] = tuple(b * c ** 0.5 for b in out["bounds_W"])
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("c", [1e-12, 1e12])
def test_fit_of_scaled_data_is_the_scaled_fit(case, dtype, c):
    solver, settings = CASES[case]
    kw = dict(solver=solver, random_state=0, max_iter=60, tol=0)
    base = unmix.nmf(X.astype(dtype), 5, **kw, **settings)
    scaled = unmix.nmf((c * X).astype(dtype), 5, **kw, **in_units(settings, c))
    tol = 1e-7 if dtype == np.float64 else 5e-3
    np.testing.assert_allclose(scaled.rel_error, base.rel_error, rtol=tol)
    assert np.linalg.norm(scaled.W / np.sqrt(c) - base.W) <= 20 * tol * np.linalg.norm(base.W) or \
        settings.get("sum_to_one")  # with sum-to-one, W keeps its scale and H takes all of c
    if settings.get("sum_to_one"):
        np.testing.assert_allclose(scaled.H / c, base.H, rtol=0, atol=20 * tol * np.abs(base.H).max())


def test_a_scale_float32_cannot_hold_is_fitted_rescaled_or_a_clear_error():
    # float32 products of data near 1e30 overflow: without penalties the
    # front fits X times a power of two; with one, whose units would change,
    # it is a clear error.
    X32 = (1e30 * X).astype(np.float32)
    r = unmix.nmf(X32, 5, init="random", random_state=0)
    ref = unmix.nmf(1e30 * X, 5, init="random", random_state=0)
    np.testing.assert_allclose(r.rel_error[-1], ref.rel_error[-1], rtol=1e-3)
    with pytest.raises(ValueError, match=r"largest value of X must be between 3.6e-15 and 2.8e\+14 "
                                         r"in float32, got .*: multiply X by a power of ten such as "
                                         r"1e-31 \(and set any penalty weights for the rescaled data\), "
                                         r"or use float64"):
        unmix.nmf(X32, 5, l2_H=0.5, init="random", random_state=0)


def test_regularization_that_removes_everything_is_reported():
    r = unmix.nmf(X, 3, l1_W=1e9, random_state=0)
    assert not r.W.any()
    assert r.events and all("under the penalties and stays zero" in what for _, what in r.events)
