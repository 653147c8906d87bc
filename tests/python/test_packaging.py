"""Packaging consistency: one version, the conda recipe, the type stubs.

The version lives in cpp/include/unmix/version.hpp only; CMake, the wheel
metadata (scikit-build-core's regex provider), unmix.__version__ and the
conda recipe must all agree with it. The recipe's requirements must carry
the lower bounds of pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import unmix
import unmix._core

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
HEADER = ROOT / "cpp" / "include" / "unmix" / "version.hpp"
RECIPE = ROOT / "conda" / "recipe.yaml"
PACKAGE = ROOT / "python" / "unmix"

# pip name -> conda-forge name, where they differ (none so far).
CONDA_NAMES: dict[str, str] = {}


def _normalize(name: str) -> str:
    """PEP 503 normalization, which conda-forge names follow too."""
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def header_version(pyproject: dict[str, Any]) -> str:
    """The version, read from the header with the build's own regex."""
    regex = pyproject["tool"]["scikit-build"]["metadata"]["version"]["regex"]
    match = re.search(regex, HEADER.read_text())
    assert match is not None, f"{regex!r} does not match {HEADER}"
    return match.group("value")


@pytest.fixture(scope="module")
def recipe() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    with RECIPE.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def _specs(entries: list[Any]) -> list[str]:
    """The plain match specs of a requirement list, both branches of any
    ``if:/then:/else:`` selector included."""
    out: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            for branch in ("then", "else"):
                value = entry.get(branch, [])
                out.extend(_specs(value if isinstance(value, list) else [value]))
        else:
            out.append(str(entry))
    return out


def _lower_bounds(specs: list[str]) -> dict[str, str | None]:
    """``{"numpy": "1.23", "pip": None, ...}`` from conda match specs."""
    bounds: dict[str, str | None] = {}
    for spec in specs:
        name, _, constraint = spec.strip().partition(" ")
        found = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", constraint)
        bounds[_normalize(name)] = found.group(1) if found else None
    return bounds


def _pip_lower_bound(requirement: str) -> tuple[str, str | None]:
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert len(lows) <= 1, f"more than one lower bound in {requirement!r}"
    name = _normalize(req.name)
    return CONDA_NAMES.get(name, name), (lows[0] if lows else None)


def test_header_holds_a_version(header_version: str) -> None:
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", header_version), header_version


def test_version_single_source(header_version: str) -> None:
    assert unmix.__version__ == header_version
    assert unmix._core.__version__ == header_version
    assert importlib.metadata.version("unmix") == header_version


def test_cmake_reads_the_same_header() -> None:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert "cpp/include/unmix/version.hpp" in cmake
    assert "UNMIX_VERSION_STRING" in cmake


def test_recipe_version_is_the_header_version(recipe: dict[str, Any], header_version: str) -> None:
    assert recipe.get("schema_version") == 1
    context = recipe["context"]
    assert context["name"] == "unmix"
    assert str(context["version"]) == header_version, (
        f"conda/recipe.yaml has version {context['version']!r}, the header "
        f"{HEADER.relative_to(ROOT)} has {header_version!r}: bump them together"
    )
    assert recipe["package"]["name"].replace(" ", "") == "${{name}}"
    assert recipe["package"]["version"].replace(" ", "") == "${{version}}"


def test_recipe_builds_from_this_tree_with_pip(recipe: dict[str, Any]) -> None:
    assert recipe["source"]["path"] == ".."
    script = recipe["build"]["script"]
    content = script["content"] if isinstance(script, dict) else script
    text = " ".join(content) if isinstance(content, list) else str(content)
    assert "pip install . -vv --no-deps --no-build-isolation" in text
    build = _specs(recipe["requirements"]["build"])
    assert any("compiler('cxx')" in spec.replace('"', "'") for spec in build), build


# PyPI names whose conda-forge package is named differently.
CONDA_NAMES = {"matplotlib": "matplotlib-base"}


def test_recipe_run_requirements_match_pyproject(
    recipe: dict[str, Any], pyproject: dict[str, Any]
) -> None:
    run = _lower_bounds(_specs(recipe["requirements"]["run"]))
    assert "python" in run
    for requirement in pyproject["project"]["dependencies"]:
        name, low = _pip_lower_bound(requirement)
        name = CONDA_NAMES.get(name, name)
        assert name in run, f"{requirement!r} of pyproject.toml is missing from the recipe's run"
        assert run[name] == low, (
            f"lower bound of {name}: pyproject.toml says {low}, conda/recipe.yaml says {run[name]}"
        )


def test_recipe_host_has_the_build_backend(recipe: dict[str, Any], pyproject: dict[str, Any]) -> None:
    host = _lower_bounds(_specs(recipe["requirements"]["host"]))
    for requirement in pyproject["build-system"]["requires"]:
        name, low = _pip_lower_bound(requirement)
        assert name in host, f"build requirement {requirement!r} is missing from the recipe's host"
        assert host[name] == low, (
            f"lower bound of {name}: pyproject.toml says {low}, conda/recipe.yaml says {host[name]}"
        )
    for name in ("python", "pip", "armadillo", "numpy"):
        assert name in host, f"{name} is missing from the recipe's host"
    assert "libblas" in host or "openblas" in host


def test_recipe_cmake_bound_matches_scikit_build(
    recipe: dict[str, Any], pyproject: dict[str, Any]
) -> None:
    build = _lower_bounds(_specs(recipe["requirements"]["build"]))
    wanted = pyproject["tool"]["scikit-build"]["cmake"]["version"].lstrip(">=")
    assert build.get("cmake") == wanted
    assert "ninja" in build


def test_recipe_tests_and_about(recipe: dict[str, Any]) -> None:
    tests = recipe["tests"]
    imports = [name for t in tests if "python" in t for name in t["python"].get("imports", [])]
    assert "unmix" in imports
    scripts = [str(t["script"]) for t in tests if "script" in t]
    assert any("unmix.nmf(" in s for s in scripts), "no test script runs unmix.nmf"
    about = recipe["about"]
    assert about["license"] == "BSD-3-Clause" == _pyproject_license()
    assert about.get("summary")


def _pyproject_license() -> str:
    with PYPROJECT.open("rb") as f:
        lic = tomllib.load(f)["project"]["license"]
    return lic["text"] if isinstance(lic, dict) else str(lic)


def test_typing_files_exist() -> None:
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_core.pyi").is_file()


def _stub_names() -> set[str]:
    tree = ast.parse((PACKAGE / "_core.pyi").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_stub_declares_every_public_name_of_core() -> None:
    public = {name for name in dir(unmix._core) if not name.startswith("_")}
    assert public, "unmix._core exports nothing public"
    missing = public - _stub_names()
    assert not missing, f"declared in unmix._core but not in _core.pyi: {sorted(missing)}"
    assert "__version__" in _stub_names()


def test_stub_declares_nothing_that_core_lacks() -> None:
    tree = ast.parse((PACKAGE / "_core.pyi").read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    stale = {name for name in functions if not hasattr(unmix._core, name)}
    assert not stale, f"_core.pyi declares functions unmix._core lacks: {sorted(stale)}"
    for name in functions:
        assert callable(getattr(unmix._core, name))
