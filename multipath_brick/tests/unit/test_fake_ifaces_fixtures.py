"""The fake host's ifaces and netdevs against real output captured in the QEMU lab.

``lab/capture_ifaces.sh`` ran a sequence of ``iscsiadm -m iface`` and node
commands on the real open-iscsi; the fake, set up like the lab (target, CHAP,
the initiator netdev ``mpbi0`` on portal 0's subnet), replays the same
sequence and must answer each command with the same exit code, stdout and
stderr.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterator

import pytest

from multipath_brick import verbs as v
from multipath_brick.iscsi.ifaces import parse_iface_list, parse_record
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.test_fake_host_fixtures import (
    IQN,
    PORTALS,
    Capture,
    capture,
    captures,
)

IFACE = "mpb-mpbi0"
MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Captured(v.Command):
    """The argv of a capture's header, to replay on the fake (tests only)."""

    entrypoint = "none"
    line: str

    def argv(self) -> tuple[str, ...]:
        return tuple(shlex.split(self.line))


@pytest.fixture
def lab() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0) as host:
        host.add_target(IQN, PORTALS, luns={1: 64 * MIB}, chap=("mpbuser", "mpb-secret-123"))
        for k in range(4):
            host.add_netdev(f"mpbi{k}", f"192.168.{100 + k}.1/24")
        yield host


def replay(host: FakeHost, real: Capture) -> None:
    # The capture's own command line, some of it outside any verb (built-in ifaces,
    # unknown settings): asked of the fake's iscsiadm directly, past the verbs'
    # checks and the ownership rules, which would refuse it before iscsiadm.
    with host._st.lock:
        outcome = host._iscsid.handle(Captured(real.command).argv()).commit()
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (
        real.exit_code,
        real.stdout,
        real.stderr,
    ), real.command


def prepare_node(host: FakeHost, portal: str) -> None:
    """capture_ifaces.sh's prepare_node: CHAP, manual scan, short login timeouts."""
    settings = (
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", "mpbuser"),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", "2"),
        ("node.session.initial_login_retry_max", "1"),
    )
    assert host.run(v.NodeUpdate(portal, IQN, IFACE, settings), timeout=30).ok
    # The lab wrote the secret with iscsiadm -o update; the library writes it off the argv.
    assert host.run(v.NodeWrite(portal, IQN, IFACE, password="mpb-secret-123"), timeout=30).ok


def test_iface_records(lab: FakeHost) -> None:
    replay(lab, capture("iscsiadm_iface.txt"))
    for name in (
        "iscsiadm_iface_show_missing.txt",
        "iscsiadm_iface_update_missing.txt",
        "iscsiadm_iface_delete_missing.txt",
        "iscsiadm_node_new_iface_missing.txt",
        "iscsiadm_iface_new.txt",
        "iscsiadm_iface_new_exists.txt",
        "iscsiadm_iface_show_new.txt",
        "iscsiadm_iface_update.txt",
        "iscsiadm_iface_update_two.txt",
        "iscsiadm_iface_update_bad_name.txt",
        "iscsiadm_iface_show.txt",
        "iscsiadm_iface_list.txt",
        "iscsiadm_iface_new_default.txt",
        "iscsiadm_iface_update_default.txt",
        "iscsiadm_iface_delete_default.txt",
        "iscsiadm_iface_show_default.txt",
        "iscsiadm_iface_new_iser.txt",
    ):
        replay(lab, capture(name))


def test_parsers_read_the_real_output() -> None:
    records = parse_iface_list(capture("iscsiadm_iface_list.txt").stdout)
    ours = next(r for r in records if r.name == IFACE)
    assert (ours.transport, ours.netdev) == ("tcp", "mpbi0")
    assert ours.initiatorname == "iqn.2024-01.org.multipath-brick.lab:initiator0"
    shown = parse_record(capture("iscsiadm_iface_show.txt").stdout)
    assert shown["iface.iscsi_ifacename"] == IFACE
    assert shown["iface.net_ifacename"] == "mpbi0"


def make_iface(host: FakeHost) -> None:
    assert host.run(v.IfaceNew(IFACE), timeout=30).ok
    assert host.run(v.IfaceUpdate(IFACE, "iface.net_ifacename", "mpbi0"), timeout=30).ok


def test_login_through_the_iface(lab: FakeHost) -> None:
    make_iface(lab)  # as the record sequence left it, initiator name included
    initiator = "iqn.2024-01.org.multipath-brick.lab:initiator0"
    assert lab.run(v.IfaceUpdate(IFACE, "iface.initiatorname", initiator), timeout=30).ok
    replay(lab, capture("iscsiadm_node_new_iface.txt"))
    prepare_node(lab, PORTALS[0])
    replay(lab, capture("iscsiadm_login_iface.txt"))
    replay(lab, capture("iscsiadm_session_iface.txt"))
    sequence = "iface_netdev_sequence.txt"
    assert lab.read_text("/sys/class/iscsi_session/session1/ifacename") == (
        capture(sequence, "ifacename").stdout
    )
    replay(lab, capture("iscsiadm_iface_delete_in_use.txt"))
    replay(lab, capture(sequence, "iscsiadm -m iface"))
    replay(lab, capture("iscsiadm_logout_iface.txt"))


def test_logins_through_a_netdev_off_subnet_and_down(lab: FakeHost) -> None:
    # capture_ifaces.sh from its wrong-subnet step on: the iface is made again
    # (-o new over it drops the initiatorname) and bound to mpbi0 only.
    make_iface(lab)
    assert lab.run(v.NodeNew(PORTALS[1], IQN, IFACE), timeout=30).ok
    prepare_node(lab, PORTALS[1])
    replay(lab, capture("iscsiadm_login_iface_wrong_subnet.txt"))
    # The script's node delete is refused: the session is logged in.
    assert lab.run(v.NodeDelete(PORTALS[1], IQN, IFACE), timeout=30).exit_code == 15
    assert lab.run(v.NodeNew(PORTALS[0], IQN, IFACE), timeout=30).ok
    prepare_node(lab, PORTALS[0])
    lab.set_netdev("mpbi0", up=False)
    replay(lab, capture("iscsiadm_login_iface_down.txt"))
    lab.set_netdev("mpbi0", up=True)
    replay(lab, capture("iscsiadm_iface_delete.txt"))
    for block in captures("iface_netdev_sequence.txt")[-6:-1]:
        replay(lab, block)  # node list, show/delete of the gone record, iface list


def test_netdev_files(lab: FakeHost) -> None:
    def real(part: str) -> str:
        return capture("iface_netdev_sequence.txt", part).stdout

    up = real("cat /sys/class/net/mpbi0/operstate /sys/class/net/mpbi0/flags")
    ours = "".join(
        lab.read_text(f"/sys/class/net/mpbi0/{f}") for f in ("operstate", "flags", "carrier")
    )
    assert ours == up
    routes = real("cat /proc/net/route").splitlines()
    mpbi0 = [line for line in routes if line.startswith("mpbi0")]
    assert [line for line in lab.read_text("/proc/net/route").splitlines() if "mpbi0" in line] == (
        mpbi0
    )
    assert lab.read_text("/proc/net/route").splitlines()[0] == routes[0]
