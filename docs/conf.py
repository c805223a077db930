"""Sphinx configuration of the svi-bench docs (``nox -s docs``; warnings are errors).

Reference tables are generated at build time from the declarations they document
(``_ext/svi_bench_docs.py``, ``svi_bench.benchmarks.docs_pages``); nothing generated is checked in.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "svi-bench"
author = "svi-bench contributors"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "svi_bench_docs"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "measurements", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "pydata_sphinx_theme"
html_title = "svi-bench"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []
autodoc_typehints = "description"
autodoc_member_order = "bysource"
