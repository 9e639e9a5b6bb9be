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

"""Sphinx configuration for the multipath-brick release notes (reno)."""

import os
import subprocess

# reno reads the notes from git history, not from the working tree: with no
# commit yet it fails deep inside dulwich (KeyError: b'HEAD'). Say so plainly.
_repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if (
    subprocess.run(
        ["git", "-C", _repo, "rev-parse", "--verify", "--quiet", "HEAD"],
        capture_output=True,
        check=False,
    ).returncode
    != 0
):
    raise RuntimeError(
        "reno builds release notes from git history: commit releasenotes/notes first"
    )

project = "multipath-brick Release Notes"
copyright = "multipath-brick contributors"  # noqa: A001
author = "multipath-brick contributors"

extensions = [
    "reno.sphinxext",
]

templates_path: list[str] = []
exclude_patterns: list[str] = []
source_suffix = {".rst": "restructuredtext"}
master_doc = "index"
pygments_style = "sphinx"

html_theme = "alabaster"
html_static_path: list[str] = []
