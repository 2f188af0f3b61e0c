"""Sphinx configuration of the sktvae documentation."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
# Gallery examples run in their fast mode unless SKTVAE_EXAMPLES_FAST=0 is set.
os.environ.setdefault("SKTVAE_EXAMPLES_FAST", "1")

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
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# numpydoc's validation is left to the tests; Sphinx turns warnings into errors (-W).
intersphinx_mapping = {}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json", "sg_execution_times.rst"]

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"_settings\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = "sktvae"
html_static_path = ["_static"]
html_theme_options = {"show_toc_level": 2}
