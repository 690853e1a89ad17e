"""Sphinx configuration of the gk documentation.

Build with warnings as errors::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os

# The docs never need a GPU: document the NumPy backend whatever the shell says.
os.environ["GK_BACKEND"] = "numpy"

import gk  # noqa: E402

project = "gk"
author = "gk contributors"
copyright = "gk contributors"
version = release = gk.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
root_doc = "index"

html_theme = "alabaster"
html_title = f"gk {release}"
html_theme_options = {
    "description": "A toolkit for research on grokking",
    "fixed_sidebar": True,
}

# autodoc: members in source order; type hints in the signature only, so that they do not
# repeat (and clash with) the types numpydoc reads from the docstrings.
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# numpydoc: no autosummary tables of class members (autodoc documents them once; a second
# listing would register every attribute twice), and no cross-reference guessing of the free
# text in "Parameters" types (e.g. "array, shape (M, n)").
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
