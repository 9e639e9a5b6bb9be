"""The fake host's node-record layout against open-iscsi's, captured in the QEMU lab.

``lab/capture_tpgt.sh`` made records of one portal through two ifaces with and
without a tpgt on ``-p``, logged in through them, used a wrong tpgt, and mixed
a flat record with tagged ones, printing ``/etc/iscsi/nodes`` after each step
(``tests/fixtures/node_tpgt_sequence.txt``). The fake replays every iscsiadm
command of it and must answer with the same exit code and output, and its
record layout must be the one ``find`` printed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest

from multipath_brick import verbs as v
from multipath_brick.iscsi.iscsiadm import parse_record
from multipath_brick.testing import FakeHost
from multipath_brick.testing.state import split_portal
from multipath_brick.tests.unit.test_fake_host_fixtures import (
    FIXTURES,
    IQN,
    PORTALS,
    Capture,
    captures,
)
from multipath_brick.tests.unit.test_fake_ifaces_fixtures import Captured

SEQUENCE = "node_tpgt_sequence.txt"
MIB = 1 << 20
CHAP = ("mpbuser", "mpb-secret-123")
_SESSION_LINE = re.compile(r"echo (session\d+) ")


@pytest.fixture
def lab() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0) as host:
        host.add_target(IQN, PORTALS, luns={1: 64 * MIB}, chap=CHAP)
        for k in range(4):
            host.add_netdev(f"mpbi{k}", f"192.168.{100 + k}.1/24")
        for k in (0, 1):
            name = f"mpb-mpbi{k}"
            assert host.run(v.IfaceNew(name), timeout=5).ok
            assert host.run(v.IfaceUpdate(name, "iface.net_ifacename", f"mpbi{k}"), timeout=5).ok
        yield host


def sections() -> list[list[Capture]]:
    """The sequence's blocks, split where the script wiped the node database."""
    blocks = iter(captures(SEQUENCE))
    out: list[list[Capture]] = []
    for line in (FIXTURES / SEQUENCE).read_text().splitlines():
        if line.startswith("# NOTE:"):
            out.append([])
        elif line.startswith("# $ "):
            out[-1].append(next(blocks))
    return out


def layout(host: FakeHost) -> set[str]:
    """``find /etc/iscsi/nodes -mindepth 1 -printf '%y %P\\n'`` of the fake's records."""
    found = set()
    for portal, iqn, iface in host.node_records():
        address, port = split_portal(portal)
        tpgt = host.node_settings(portal, iqn, iface)["node.tpgt"]
        found.add(f"d {iqn}")
        if tpgt == "-1":
            found.add(f"f {iqn}/{address},{port}")
        else:
            found |= {
                f"d {iqn}/{address},{port},{tpgt}",
                f"f {iqn}/{address},{port},{tpgt}/{iface}",
            }
    return found


def prepare(host: FakeHost, portal: str, iface: str) -> None:
    """capture_tpgt.sh's prepare (not captured): CHAP, manual scan, short timeouts."""
    settings = (
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", CHAP[0]),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", "2"),
        ("node.session.initial_login_retry_max", "1"),
    )
    assert host.run(v.NodeUpdate(portal, IQN, iface, settings), timeout=30).ok
    assert host.run(v.NodeWrite(portal, IQN, iface, password=CHAP[1]), timeout=30).ok


def replay(host: FakeHost, real: Capture) -> None:
    argv = shlex.split(real.command)
    if argv[0] == "find":
        assert layout(host) == set(real.stdout.splitlines()), real.command
        return
    if argv[0] == "sh":  # a session's sysfs attributes
        session = _SESSION_LINE.search(real.command)
        assert session is not None
        base = f"/sys/class/iscsi_session/{session[1]}"
        tpgt, iface = (host.read_text(f"{base}/{a}").strip() for a in ("tpgt", "ifacename"))
        assert f"{session[1]} tpgt={tpgt} ifacename={iface} " in real.stdout
        return
    if "--login" in argv:
        prepare(host, argv[argv.index("-p") + 1], argv[argv.index("-I") + 1])
    with host._st.lock:
        outcome = host._iscsid.handle(Captured(real.command).argv()).commit()
    assert outcome.exit_code == real.exit_code, real.command
    if "show" in argv:
        # Record defaults differ with the lab's iscsid.conf: compare what places it.
        keys = ("node.tpgt", "iface.iscsi_ifacename", "iface.net_ifacename", "node.name")
        ours, theirs = parse_record(outcome.stdout), parse_record(real.stdout)
        assert {k: ours.get(k) for k in keys} == {k: theirs.get(k) for k in keys}
    else:
        assert (outcome.stdout, outcome.stderr) == (real.stdout, real.stderr), real.command


def test_node_records_are_laid_out_and_found_as_open_iscsi_does(lab: FakeHost) -> None:
    parts = sections()
    # A (no tpgt: two ifaces, one flat record), B (tpgt: one file each, logins,
    # logouts, deletes), C (a wrong tpgt logs in; the session has the real one),
    # D (a tagged record deletes a flat one), E (deleting a tagged record takes
    # the flat one beside it instead), F (discovery: not replayed).
    assert len(parts) == 6
    for blocks in parts[:5]:
        for block in blocks:
            replay(lab, block)
        with lab._st.lock:
            lab._st.nodes.clear()  # the script's wipe between parts
