"""Sphinx configuration of the bayesmix documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

API pages use autodoc with numpydoc (the library's docstrings follow the numpydoc convention,
checked by ruff's pydocstyle rules); the command-line page is generated from the typer app at
build time by the local extension ``_ext/bayesmix_cli.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the checkout's bayesmix, also without an editable install

import bayesmix  # noqa: E402

project = "bayesmix"
author = "bayesmix developers"
copyright = "bayesmix developers, Apache-2.0"
release = bayesmix.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "bayesmix_cli",
]

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "Bayesian data mixing laws", "fixed_sidebar": True}
html_show_sourcelink = False
pygments_style = "sphinx"

# ---------------------------------------------------------------------------- autodoc
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show ``DEFAULT_TRUST_MARGIN``, not its value
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
# every directive names its members (``:members:``, or a list): with Sphinx 9.0.4 a default
# ``"members"`` here overrides a directive's own list of members
autodoc_default_options = {"exclude-members": "__init__, __new__, __post_init__"}

# ---------------------------------------------------------------------------- numpydoc
numpydoc_show_class_members = False  # autodoc lists the members; numpydoc would list them again
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks: set[str] = set()  # style is checked by ruff (pydocstyle, numpy)
