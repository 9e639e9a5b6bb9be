# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Sphinx configuration for the multipath-brick documentation."""

import os
import sys

# Document the checkout being built, whether or not it is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

project = "multipath-brick"
copyright = "multipath-brick contributors"  # noqa: A001
author = "multipath-brick contributors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# The public API is documented with Sphinx field lists (:param x:, :returns:,
# :raises:), so napoleon is not used. No intersphinx: builds run offline.
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The docs environment installs requirements.txt, so os-brick and oslo import
# for real (our exceptions subclass os-brick's). Where they are absent, mock
# them rather than fail the import of our modules.
autodoc_mock_imports: list[str] = []
for _mod in ("os_brick", "oslo_concurrency", "oslo_config", "oslo_privsep", "tenacity"):
    try:
        __import__(_mod)
    except ImportError:
        autodoc_mock_imports.append(_mod)

templates_path: list[str] = []
exclude_patterns: list[str] = []
source_suffix = {".rst": "restructuredtext"}
master_doc = "index"
pygments_style = "sphinx"
nitpicky = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_title = "multipath-brick"


def _write_cli_reference(app):  # type: ignore[no-untyped-def]
    """Write the ``multipath-brick`` reference from its parser, so it cannot drift."""
    from multipath_brick.agent.cli import reference

    path = os.path.join(app.srcdir, "reference", "cli-generated.inc")
    text = reference()
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return  # unchanged: keep Sphinx from rebuilding every page
    except OSError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", _write_cli_reference)
