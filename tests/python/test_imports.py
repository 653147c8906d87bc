"""The fitting code and the endmember code do not import each other in a
circle: both take the NNLS abundances from unmix._nnls, which imports
neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

import unmix

PACKAGE = Path(unmix.__file__).resolve().parent


def _imported(module: str) -> set[str]:
    """The unmix modules a module imports, at any level (lazy imports too)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
    return out


def test_no_circle_between_nmf_and_endmembers():
    assert "_nmf" not in _imported("endmembers")
    for module in ("_nnls", "_constraints"):
        assert not {"_nmf", "endmembers"} & _imported(module), module
    assert "endmembers" in _imported("_nmf") and "_nnls" in _imported("endmembers")


def test_either_imports_first():
    for first in ("unmix.endmembers", "unmix._nmf", "unmix._nnls"):
        code = (f"import {first}; from unmix._nmf import nnls_abundances; "
                "from unmix.endmembers import abundances_from_endmembers")
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_nnls_abundances_is_the_same_function_everywhere():
    from unmix import _nmf, _nnls, endmembers

    assert _nmf.nnls_abundances is _nnls.nnls_abundances
    rng = np.random.default_rng(0)
    E = rng.random((3, 12))
    A = rng.dirichlet(np.ones(3), size=20)
    np.testing.assert_allclose(endmembers.abundances_from_endmembers(A @ E, E), A, atol=1e-10)
    # Outside the core's range the data are rescaled by a power of two, exactly.
    W = _nnls.nnls_abundances(1e300 * (A @ E), E)
    np.testing.assert_allclose(W, 1e300 * A, rtol=1e-9)
    W = _nnls.nnls_abundances(1e300 * (A @ E), 1e300 * E, sum_to_one=True)
    np.testing.assert_allclose(W, A, atol=1e-9)
