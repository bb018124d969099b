"""
Sphinx configuration of socksgate's documentation site and man pages.

Build (as .ci/run does; warnings are errors, references are checked):

    sphinx-build -W --keep-going -n -b html docs docs/_build/html
    sphinx-build -W --keep-going -n -b man docs docs/_build/man

The html build also runs pydoctor on the package (the API reference, in
docs/_build/html/api/), with its warnings as errors too, and makes its
inventory available so that {py:obj} references into the API are checked.

Links: every internal link and reference (pages, headings, API names,
Python's and Twisted's names) is checked by every build, offline: the
Python and Twisted inventories are the files in docs/_inventories/, not
fetched.  External links (http...) are not checked in CI, which has no
network; `sphinx-build -b linkcheck docs docs/_build/linkcheck` checks them
where there is one (linkcheck_ignore lists the example hosts).
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))

import socksgate  # noqa: E402

project = "socksgate"
author = "the socksgate developers"
copyright = "the socksgate developers"
release = version = socksgate.__version__
# The man pages' date is the release's, not the day of the build.
today = f"socksgate {release}"

extensions = [
    "myst_parser",
    "sphinx.ext.intersphinx",
    "pydoctor.sphinx_ext.build_apidocs",
    "configref",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "images/*.md"]
nitpicky = True
myst_heading_anchors = 4
myst_enable_extensions = ["deflist"]
suppress_warnings: list[str] = []

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"socksgate {release}"

_INVENTORIES = os.path.join(HERE, "_inventories")
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", os.path.join(_INVENTORIES, "python.inv")),
    "twisted": ("https://docs.twisted.org/en/stable/api", os.path.join(_INVENTORIES, "twisted.inv")),
}

pydoctor_url_path = "api/"
pydoctor_args = [
    "--project-name=socksgate",
    f"--project-version={release}",
    "--docformat=epytext",
    "--warnings-as-errors",
    "--html-output={outdir}/api",
    f"--intersphinx-file={os.path.join(_INVENTORIES, 'python.inv')}::https://docs.python.org/3/",
    f"--intersphinx-file={os.path.join(_INVENTORIES, 'twisted.inv')}::https://docs.twisted.org/en/stable/api/",
    f"--project-base-dir={os.path.dirname(HERE)}",
    os.path.join(os.path.dirname(HERE), "socksgate"),
]

man_pages = [
    ("man/socksgate", "socksgate", "socksgate's administration tools and the twistd plugin", "", 1),
    ("man/socksgate.toml", "socksgate.toml", "socksgate's configuration file", "", 5),
]
man_show_urls = False

linkcheck_ignore = [r"https?://([a-z0-9-]+\.)*example\.(com|org|net)", r"https?://(127\.|localhost)"]
