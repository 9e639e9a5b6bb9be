"""The daemon's node record delete on the real open-iscsi.

The daemon deletes a record's files itself (``verbs.NodeDelete``), so each
delete here is done twice from the same start, once by ``iscsiadm -o
delete`` and once by the daemon, and the two trees must be the same: the
record file, iscsiadm's link to it under ``static/``, and its directories
once empty. A record in use by a session is refused (15), as iscsiadm
refuses it. The unit twin: ``tests/unit/test_nodedb_delete.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from multipath_brick import verbs
from multipath_brick.host.base import Host

from ..lab.api import Lab
from .conftest import ConnectorFactory

IFACES = ("mpb-mpbi0", "mpb-mpbi1")


def iscsiadm(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iscsiadm", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def tree() -> set[str]:
    """``/etc/iscsi/nodes`` and ``static`` as (kind, path, link) entries."""
    found = set()
    for top in ("/etc/iscsi/nodes", "/etc/iscsi/static"):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                link = os.readlink(path) if os.path.islink(path) else ""
                found.add(f"{'d' if name in dirnames else 'f'} {path} {link}")
    return found


@pytest.fixture
def ifaces() -> Iterator[None]:
    for name in IFACES:
        assert iscsiadm("-m", "iface", "-I", name, "-o", "new").returncode == 0
    yield
    iscsiadm("-m", "node", "-o", "delete")
    for name in IFACES:
        iscsiadm("-m", "iface", "-I", name, "-o", "delete")


def make(lab: Lab, records: list[tuple[int, str, int | None]]) -> None:
    """Node records of the lab's target: (portal index, iface, tpgt or None)."""
    for k, iface, tpgt in records:
        portal = lab.portals[k] + (f",{tpgt}" if tpgt is not None else "")
        made = iscsiadm("-m", "node", "-T", lab.iqn, "-p", portal, "-I", iface, "-o", "new")
        assert made.returncode == 0, made.stderr


def by_iscsiadm(lab: Lab, k: int, iface: str) -> int:
    argv = ("-m", "node", "-T", lab.iqn, "-p", lab.portals[k], "-I", iface, "-o", "delete")
    return iscsiadm(*argv).returncode


def by_daemon(host: Host, lab: Lab) -> Callable[[Lab, int, str], int]:
    def delete(lab: Lab, k: int, iface: str) -> int:
        verb = verbs.NodeDelete(lab.portals[k], lab.iqn, iface)
        return host.run(verb, timeout=60).exit_code

    return delete


FLAT = [(0, "default", None)]
TAGGED = [(0, IFACES[0], 1), (0, IFACES[1], 1), (1, "default", 1)]


@pytest.mark.parametrize(
    ("records", "steps"),
    [
        (FLAT, [(0, IFACES[0]), (0, "default"), (0, "default")]),
        (TAGGED, [(0, IFACES[1]), (0, IFACES[0]), (1, "default")]),
    ],
    ids=["flat", "tpgt"],
)
def test_the_daemon_leaves_the_tree_iscsiadm_leaves(
    lab: Lab,
    make_connector: ConnectorFactory,
    ifaces: None,
    records: list[tuple[int, str, int | None]],
    steps: list[tuple[int, str]],
) -> None:
    daemon = by_daemon(make_connector().host, lab)
    for n, (k, iface) in enumerate(steps):
        results = []
        for delete in (by_iscsiadm, daemon):
            iscsiadm("-m", "node", "-o", "delete")
            make(lab, records)
            for done_k, done_iface in steps[:n]:
                assert by_iscsiadm(lab, done_k, done_iface) in (0, 21)
            code = delete(lab, k, iface)
            results.append((code, tree()))
        assert results[0] == results[1], (k, iface)
    assert not [e for e in tree() if e.startswith("f ") or "/nodes/" in e]


def test_a_record_in_use_is_refused_until_logged_out(
    lab: Lab, make_connector: ConnectorFactory, ifaces: None
) -> None:
    daemon = by_daemon(make_connector().host, lab)
    make(lab, [(0, "default", 1)])
    user, password = lab.chap
    for name, value in (
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", user),
        ("node.session.auth.password", password),
        ("node.session.scan", "manual"),
    ):
        node = ("-m", "node", "-T", lab.iqn, "-p", lab.portals[0], "-I", "default")
        assert iscsiadm(*node, "-o", "update", "-n", name, "-v", value).returncode == 0
    node = ("-m", "node", "-T", lab.iqn, "-p", lab.portals[0], "-I", "default")
    assert iscsiadm(*node, "--login").returncode == 0
    before = tree()
    try:
        assert daemon(lab, 0, "default") == 15
        assert tree() == before
    finally:
        assert iscsiadm(*node, "--logout").returncode == 0
    assert daemon(lab, 0, "default") == 0
    assert not [e for e in tree() if "/nodes/" in e or ",default" in e]
