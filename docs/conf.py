"""Sphinx configuration of the sktvae documentation."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
# Gallery examples run at full size (about five minutes on 2 CPU cores), so the pages
# show what the examples show; SKTVAE_EXAMPLES_FAST=1 builds with their smoke-test size.

import sktvae  # noqa: E402

project = "sktvae"
author = "the sktvae developers"
copyright = "2026, the sktvae developers"
release = sktvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the built site: math renders offline
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
templates_path = ["_templates"]  # class pages list every method with its docstring
numpydoc_show_class_members = False
autodoc_typehints = "none"  # the type hints are for IDEs; the numpydoc sections say it
numpydoc_xref_param_type = False
# numpydoc's validation is left to the tests; Sphinx turns warnings into errors (-W).

# Links to the libraries' own documentation, where their inventories can be fetched; an
# offline build (as in CI) skips them rather than failing on the unreachable URLs.
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}


def _online(url="https://numpy.org/doc/stable/objects.inv", timeout=3):
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


_links = os.environ.get("SKTVAE_DOCS_INTERSPHINX", "auto")
intersphinx_mapping = _INTERSPHINX if _links == "1" or (_links == "auto" and _online()) \
    else {}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json", "sg_execution_times.rst"]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # Each API page lists the gallery examples that use it.
    "doc_module": ("sktvae",),
    "backreferences_dir": "generated/backreferences",
}

html_theme = "pydata_sphinx_theme"
html_title = "sktvae"
html_static_path = ["_static"]
html_theme_options = {"show_toc_level": 2}
html_css_files = ["custom.css"]
# No left sidebar: its "Section Navigation" is empty on most pages and took a third of
# the width; the top bar and each page's own contents (right) navigate.
html_sidebars = {"**": []}
