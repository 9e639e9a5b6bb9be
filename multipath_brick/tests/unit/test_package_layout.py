"""The package's shape: who may import the privileged layer, how long a module may be.

Read from the source (the import statements of every library module), not from
``sys.modules``, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import multipath_brick

PACKAGE = pathlib.Path(multipath_brick.__file__).parent


def library_modules() -> list[pathlib.Path]:
    """Every module of the library, tests left out."""
    return sorted(p for p in PACKAGE.rglob("*.py") if "tests" not in p.relative_to(PACKAGE).parts)


def imported(path: pathlib.Path) -> set[str]:
    """The modules a file imports, as absolute dotted names (``from x import y`` gives ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_the_linux_host_imports_the_privileged_layer() -> None:
    # The privileged package builds the privsep context on import (oslo.privsep,
    # its daemon module, eventlet): the verbs, FakeHost and the flows never need it.
    # The Linux host calls it; privsep_daemon is the daemon's own program.
    importers = {
        str(path.relative_to(PACKAGE))
        for path in library_modules()
        if any(name.split(".")[:2] == ["multipath_brick", "privileged"] for name in imported(path))
    }
    assert importers, "the privileged layer is imported by nobody: the check reads nothing"
    outside = {p for p in importers if not p.startswith("privileged/")}
    assert outside == {"host/linux.py", "privsep_daemon.py"}


def test_the_public_api_and_fakehost_leave_the_privileged_layer_out() -> None:
    code = (
        "import sys, multipath_brick, multipath_brick.verbs, multipath_brick.host,"
        " multipath_brick.testing, multipath_brick.connector, multipath_brick.bond,"
        " multipath_brick.agent;"
        "sys.exit('multipath_brick.privileged' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: The longest a module may be, tests and the lab included: past it, a module
#: holds more than one concern and should be split by concern.
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
