"""The documentation's sources agree with the code.

The docs are built (with warnings as errors) by tools/run-tests, after
``docs/make_figures.py``; these tests check, without building, what a build
would not notice: that every generated file the pages use is one the script
makes, that the solver table lists every solver, that the API page covers
the public names, and that what the pages say about the code holds.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import unmix
from unmix import _core

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.rst"))

# Directives that name a file: figure/image (the argument), literalinclude
# and include (the argument).
_DIRECTIVE = re.compile(r"^\s*\.\. (figure|image|literalinclude|include)::\s*(\S+)\s*$", re.M)


def _make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _referenced(kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Files named by the given directives, relative to docs/, and the pages
    naming them."""
    out: dict[str, list[str]] = {}
    for page in PAGES:
        for kind, target in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            if kind in kinds:
                path = (page.parent / target).resolve()
                out.setdefault(str(path.relative_to(ROOT)), []).append(page.name)
    return out


def test_the_pages_exist():
    names = {p.stem for p in PAGES}
    assert {"index", "install", "tutorial", "cli", "hyperspy", "api", "solvers",
            "distributed"} <= names
    assert not (DOCS / "distributed.md").exists()  # converted to distributed.rst
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    for page in names - {"index"}:
        assert re.search(rf"^\s+{page}$", index, re.M), f"{page}.rst is not in the toctree"


def test_every_figure_is_made_by_make_figures():
    outputs = set(_make_figures().OUTPUTS)
    figures = _referenced(("figure", "image"))
    assert figures, "no figures found"
    for path, pages in figures.items():
        assert path.startswith("docs/_generated/"), (
            f"{path} (in {pages}) is not made by docs/make_figures.py: figures must be "
            "generated into docs/_generated/")
        assert Path(path).name in outputs, f"{path} (in {pages}) is not in OUTPUTS"
    # ... and every figure the script makes is shown somewhere.
    shown = {Path(p).name for p in figures}
    made = {name for name in outputs if name.endswith(".png")}
    assert made == shown


def test_every_generated_file_used_is_made():
    outputs = set(_make_figures().OUTPUTS)
    used = _referenced(("figure", "image", "literalinclude", "include"))
    generated = {Path(p).name for p in used if p.startswith("docs/_generated/")}
    assert generated == outputs
    for path in used:
        if not path.startswith("docs/_generated/"):
            assert (ROOT / path).is_file(), path


def test_the_tutorial_shows_code_that_make_figures_runs():
    """Each literalinclude of make_figures.py names a marker pair in it."""
    source = (DOCS / "make_figures.py").read_text(encoding="utf-8")
    text = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    markers = re.findall(r":start-after: # \[(\w+)\]\n\s+:end-before: # \[/(\w+)\]", text)
    assert len(markers) >= 6
    for start, end in markers:
        assert start == end
        assert f"# [{start}]\n" in source and f"# [/{start}]\n" in source, start


def test_every_substitution_is_made():
    """The |name| substitutions the pages use are all written to numbers.rst."""
    source = (DOCS / "make_figures.py").read_text(encoding="utf-8")
    defined = set(re.findall(r'numbers\["(\w+)"\]', source))
    defined |= {f"solver_{s}_{what}" for s in _core.solvers() for what in ("iter", "stop")}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"``.*?``", "", text)
        for name in re.findall(r"\|(\w+)\|", text):
            assert name in defined, f"|{name}| in {page.name}"


def _solver_table() -> list[list[str]]:
    """The rows of the list-table under "What each solver supports"."""
    text = (DOCS / "solvers.rst").read_text(encoding="utf-8")
    section = text.split("What each solver supports", 1)[1]
    table = section.split(".. list-table::", 1)[1]
    rows: list[list[str]] = []
    for line in table.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        stripped = line.strip()
        if stripped.startswith("* - "):
            rows.append([stripped[4:]])
        elif stripped.startswith("- ") and rows:
            rows[-1].append(stripped[2:])
    return rows


def test_the_solver_table_lists_every_solver():
    header, *body = _solver_table()
    solvers = [row[0].strip("`") for row in body]
    assert sorted(solvers) == sorted(_core.solvers())
    for row in body:
        assert len(row) == len(header), row
    for column in ("non-negativity", "ℓ1", "ℓ2", "fixed factor", "sparse data", "float32",
                   "distributed", "sum_to_one", "bounds", "fixed_H", "graph"):
        assert any(column in cell for cell in header), column


def test_the_solver_table_says_what_the_solvers_do():
    """Every "no" is refused by unmix.nmf; every other constraint cell runs."""
    import numpy as np
    import scipy.sparse as sp

    import unmix

    rng = np.random.default_rng(0)
    X = rng.random((30, 3)) @ rng.random((3, 20))
    options = {
        "sum_to_one": dict(sum_to_one=True),
        "bounds": dict(bounds_W=(0.0, 1.0)),
        "fixed_H": dict(fixed_H=rng.random((1, 20))),
        "graph": dict(graph_W=sp.eye(30, format="csr"), smooth_W=0.1),
        "kl": dict(loss="kl"),
        "minvol_H": dict(minvol_H=0.1),
    }
    header, *body = _solver_table()
    for row in body:
        solver = row[0].strip("`")
        for cell_header, cell in zip(header, row):
            key = next((k for k in options if k in cell_header), None)
            if key is None:
                continue
            if cell == "no":
                with pytest.raises(ValueError, match="not supported by solver|solved by solver"):
                    unmix.nmf(X, 3, solver=solver, max_iter=3, **options[key])
            else:
                unmix.nmf(X, 3, solver=solver, max_iter=3, **options[key])


def test_the_api_page_covers_the_public_names():
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    for name in unmix.__all__:
        if name in ("__version__", "get_include"):
            continue
        assert re.search(rf"\.\. auto\w+:: unmix\.{name}$", text, re.M), name
    for module in ("io", "preprocess", "report", "metrics", "endmembers", "datasets",
                   "distributed"):
        assert f".. automodule:: unmix.{module}\n" in text, module


def test_hyperspy_page_is_right_about_explained_variance():
    """hyperspy.rst gives explained_variance_ as the energy of each rank-one
    term per pixel, not sorted and not adding up to the data's energy."""
    import numpy as np

    text = (DOCS / "hyperspy.rst").read_text(encoding="utf-8")
    assert r"\|W_{:,i}\|^2 \, \|H_{i,:}\|^2}{n_\text{pixels}}" in text
    rng = np.random.default_rng(0)
    X = rng.random((40, 3)) @ rng.random((3, 20))
    model = unmix.NMF(n_components=3, random_state=0)
    W = model.fit_transform(X)
    H = model.components_
    energies = [np.linalg.norm(np.outer(W[:, i], H[i])) ** 2 / X.shape[0] for i in range(3)]
    np.testing.assert_allclose(model.explained_variance_, energies, rtol=1e-10)


def test_install_page_takes_the_readme_commands():
    """install.rst includes the README's two commands (read at build time),
    by the markers tools/readme_command.py uses."""
    text = (DOCS / "install.rst").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for which in ("main", "test"):
        marker = f"<!-- command: {which} -->"
        assert f":start-after: {marker}" in text
        after = readme.split(marker, 1)[1].lstrip("\n").splitlines()
        assert after[0] == "```bash" and after[1].startswith("apt-get")  # :lines: 2


def test_run_tests_builds_the_docs():
    script = (ROOT / "tools" / "run-tests").read_text(encoding="utf-8")
    assert "docs/make_figures.py" in script
    assert "-m sphinx -W --keep-going -b html docs build/docs" in script


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_no_tabs_or_trailing_spaces(page):
    for i, line in enumerate((DOCS / page).read_text(encoding="utf-8").splitlines(), 1):
        assert "\t" not in line and line == line.rstrip(), f"{page}:{i}"


def _python_blocks(page: str) -> list[str]:
    """The ``.. code-block:: python`` blocks of a page, dedented, in order."""
    import textwrap

    blocks, lines = [], (DOCS / page).read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip() == ".. code-block:: python":
            body = []
            for following in lines[i + 2:]:
                if following.strip() and not following.startswith("   "):
                    break
                body.append(following)
            blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


@pytest.mark.filterwarnings(r"ignore:Importing `\w+` from `hyperspy\._signals")  # exspy's
def test_the_hyperspy_page_runs_as_written_on_integer_eds_counts(tmp_path, monkeypatch):
    """Every code block of hyperspy.rst, in order and as written, on
    ``map.hspy``: a small EDS map of integer counts with its elements."""
    import matplotlib
    import numpy as np

    hs = pytest.importorskip("hyperspy.api")
    pytest.importorskip("rsciio.hspy")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    energy = 0.2 + 0.01 * np.arange(300)
    # three phases of two X-ray lines each (Mg+Si, Fe, Ca+Si), in keV
    peaks = np.array([sum(np.exp(-0.5 * ((energy - e) / 0.06) ** 2) for e in lines)
                      for lines in ((1.25, 1.74), (6.4, 0.7), (3.69, 1.74))])
    fractions = rng.dirichlet(np.ones(3), size=(14, 12))
    counts = rng.poisson(30 * fractions @ peaks + 0.5)
    assert counts.dtype.kind == "i"
    s = hs.signals.Signal1D(counts)
    axis = s.axes_manager.signal_axes[0]
    axis.offset, axis.scale, axis.units, axis.name = 0.2, 0.01, "keV", "Energy"
    s.metadata.set_item("Sample.elements", ["Ca", "Fe", "Mg", "Si"])
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    s.metadata.set_item("Signal.signal_type", "EDS_TEM")
    monkeypatch.chdir(tmp_path)
    s.save("map.hspy")

    blocks = _python_blocks("hyperspy.rst")
    assert len(blocks) >= 4 and any("save_hyperspy" in b for b in blocks)
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, "hyperspy.rst", "exec"), namespace)
    finally:
        plt.close("all")
    # what the blocks say they give: counts fitted as counts, although
    # eXSpy's EDS signals normalize Poisson noise by default
    assert namespace["model"].noise_ == "poisson"
    assert namespace["image"].data.dtype.kind == "i"
    assert namespace["image"].metadata["elements"] == ["Ca", "Fe", "Mg", "Si"]
    loaded = namespace["loaded"]
    assert loaded.learning_results.factors.shape == (300, 4)
    assert "unmix" in loaded.learning_results.decomposition_algorithm
    assert namespace["maps"].data.shape == (4, 14, 12)
