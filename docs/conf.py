"""Sphinx configuration of the unmix documentation.

Build (figures first; CI does this in tools/run-tests)::

    python docs/make_figures.py
    python -m sphinx -W --keep-going -b html docs build/docs
"""

from __future__ import annotations

import unmix

project = "unmix"
author = "The unmix developers"
copyright = "The unmix developers"
version = release = unmix.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",  # MathJax is loaded by the reader's browser, not at build time
    "numpydoc",
]

exclude_patterns = ["_build", "_generated"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "alabaster"
html_theme_options = {"description": "Physically constrained linear unmixing",
                      "fixed_sidebar": True}
html_title = f"unmix {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc docstrings carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Docstrings write shapes as "(*spatial, channels)", which reStructuredText
# reads as the start of an emphasis. Escape that star, outside inline
# literals, after numpydoc has turned the docstring into reST.
import re  # noqa: E402

_LITERAL = re.compile(r"(``.+?``)")
_STAR = re.compile(r"(?<=\()\*(?=spatial\b)")


def _escape_shape_stars(app, what, name, obj, options, lines):  # noqa: ANN001
    for i, line in enumerate(lines):
        if "(*spatial" in line:
            parts = _LITERAL.split(line)
            lines[i] = "".join(p if p.startswith("``") else _STAR.sub(r"\\*", p)
                               for p in parts)


def setup(app):  # noqa: ANN001
    app.connect("autodoc-process-docstring", _escape_shape_stars, priority=600)
