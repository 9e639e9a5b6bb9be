"""Ifaces on the host: the privileged verbs, reconciliation and garbage collection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multipath_brick import verbs as v
from multipath_brick.bond.ifaces import IfaceChanges, needed_ifaces, reconcile
from multipath_brick.bond.inventory import HostInventory
from multipath_brick.exception import (
    BondValueError,
    CommandError,
    IfaceConflictError,
    InvalidArgument,
)
from multipath_brick.iscsi.ifaces import Ifaces, parse_iface_list
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.bondutil import IQN, P1, P2, SAN1, SAN2, bond
from multipath_brick.tests.unit.conftest import torn_down

INITIATOR = "iqn.2004-10.com.example:other-initiator"


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0) as fake:
        fake.add_target(IQN, [P1, P2], luns={1: 1 << 30})
        fake.add_netdev("eth1", "10.0.1.5/24")
        fake.add_netdev("eth2", "10.0.2.5/24")
        yield fake


def login(host: FakeHost, portal: str, iface: str) -> int:
    # A record of ours under a tpgt: without one, one portal keeps one record.
    tpgt = None if iface == "default" else 1
    assert host.run(v.NodeNew(portal, IQN, iface, tpgt), timeout=30).ok
    short = (
        ("node.conn[0].timeo.login_timeout", "2"),
        ("node.session.initial_login_retry_max", "1"),
    )
    assert host.run(v.NodeUpdate(portal, IQN, iface, short), timeout=30).ok
    return host.run(v.NodeLogin(portal, IQN, iface), timeout=30).exit_code


def logout(host: FakeHost, portal: str, iface: str) -> None:
    assert host.run(v.NodeLogout(portal, IQN, iface), timeout=30).ok
    assert torn_down(host)
    assert host.run(v.NodeDelete(portal, IQN, iface), timeout=30).ok


# --- the verbs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "tcp", "iser", "eth1", "mpb-", "-I", "mpb-a/b"])
def test_changing_verbs_accept_our_names_only(name: str) -> None:
    for make in (v.IfaceNew, v.IfaceDelete):
        with pytest.raises(InvalidArgument, match="iface"):
            make(name)
    with pytest.raises(InvalidArgument, match="iface"):
        v.IfaceUpdate(name, "iface.net_ifacename", "eth1")


def test_update_writes_only_the_three_settings_each_checked() -> None:
    assert v.IfaceUpdate("mpb-eth1", "iface.net_ifacename", "eth1").argv() == (
        "iscsiadm",
        "-m",
        "iface",
        "-I",
        "mpb-eth1",
        "-o",
        "update",
        "-n",
        "iface.net_ifacename",
        "-v",
        "eth1",
    )
    v.IfaceUpdate("mpb-eth1", "iface.initiatorname", INITIATOR)
    v.IfaceUpdate("mpb-eth1", "iface.transport_name", "tcp")
    for name, value, field in (
        ("iface.ipaddress", "10.0.0.1", "name"),
        ("iface.hwaddress", "00:11:22:33:44:55", "name"),
        ("iface.transport_name", "iser", "value"),
        ("iface.net_ifacename", "eth1 eth2", "value"),
        ("iface.net_ifacename", "-x", "value"),
        ("iface.initiatorname", "-o", "value"),
        ("iface.initiatorname", "a\nb", "value"),
    ):
        with pytest.raises(InvalidArgument) as info:
            v.IfaceUpdate("mpb-eth1", name, value)
        assert info.value.args[0] == field, (name, value)


def test_reading_verbs_take_any_valid_name() -> None:
    assert v.IfaceShow("default").argv()[-2:] == ("-o", "show")
    with pytest.raises(InvalidArgument):
        v.IfaceShow("-o")
    assert v.IfaceList().argv() == ("iscsiadm", "-m", "iface")


def test_parse_iface_list() -> None:
    text = (
        "default tcp,<empty>,<empty>,<empty>,<empty>\n"
        "mpb-eth1 tcp,<empty>,<empty>,eth1,iqn.x:a,b\n"
        "garbage\n"
    )
    default, ours = parse_iface_list(text)
    assert (default.name, default.transport, default.netdev) == ("default", "tcp", "")
    assert (ours.netdev, ours.initiatorname) == ("eth1", "iqn.x:a,b")


# --- reconciliation --------------------------------------------------------------------


def test_creates_and_binds_then_does_nothing(host: FakeHost) -> None:
    needed = needed_ifaces(HostInventory({"san1": "eth1", "san2": "eth2"}).carried([bond()]))
    assert needed == ("mpb-eth1",)
    changes = reconcile(host, [*needed, "default"])
    assert changes == IfaceChanges(created=("mpb-eth1",))
    record = host.iface_records()["mpb-eth1"]
    assert record["iface.net_ifacename"] == "eth1"
    assert record["iface.transport_name"] == "tcp"
    assert record["iface.initiatorname"] == ""
    calls = len(host.calls)
    assert reconcile(host, needed) == IfaceChanges()
    assert len(host.calls) == calls + 1  # one listing, nothing written


def test_initiatorname_is_written_and_kept(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1"])
    changes = reconcile(host, ["mpb-eth1"], initiatorname=INITIATOR)
    assert changes.updated == ("mpb-eth1",)
    assert Ifaces(host).show("mpb-eth1") == host.iface_records()["mpb-eth1"]
    assert host.iface_records()["mpb-eth1"]["iface.initiatorname"] == INITIATOR
    assert reconcile(host, ["mpb-eth1"], initiatorname=INITIATOR) == IfaceChanges()


def test_our_iface_left_unbound_is_completed(host: FakeHost) -> None:
    # A crash between -o new and -o update leaves an iface of ours bound to nothing.
    assert host.run(v.IfaceNew("mpb-eth1"), timeout=30).ok
    assert reconcile(host, ["mpb-eth1"]).updated == ("mpb-eth1",)
    assert host.iface_records()["mpb-eth1"]["iface.net_ifacename"] == "eth1"


def test_iface_of_our_name_bound_elsewhere_is_refused_and_nothing_changes(
    host: FakeHost,
) -> None:
    assert host.run(v.IfaceNew("mpb-eth2"), timeout=30).ok
    assert host.run(v.IfaceUpdate("mpb-eth2", "iface.net_ifacename", "eth1"), timeout=30).ok
    before = host.iface_records()
    with pytest.raises(IfaceConflictError, match="'mpb-eth2' exists bound to 'eth1', not 'eth2'"):
        reconcile(host, ["mpb-eth1", "mpb-eth2"])
    assert host.iface_records() == before  # mpb-eth1 was not created either


def test_names_outside_the_scheme_are_refused(host: FakeHost) -> None:
    for name in ("iser", "eth1", "mpb-a/b"):
        with pytest.raises(BondValueError, match="iface"):
            reconcile(host, [name])
    assert host.iface_records() == {}


def test_gc_removes_our_stale_ifaces_once_unused_never_others(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1", "mpb-eth2"])
    host.add_other_iface("storage0", "eth2")
    assert login(host, P2, "mpb-eth2") == 0
    changes = reconcile(host, ["mpb-eth1"], collect=True)
    assert changes == IfaceChanges(in_use=("mpb-eth2",))
    assert set(host.iface_records()) == {"mpb-eth1", "mpb-eth2", "storage0"}
    logout(host, P2, "mpb-eth2")
    assert reconcile(host, ["mpb-eth1"], collect=True) == IfaceChanges(removed=("mpb-eth2",))
    assert set(host.iface_records()) == {"mpb-eth1", "storage0"}
    assert reconcile(host, [], collect=True).removed == ("mpb-eth1",)
    assert set(host.iface_records()) == {"storage0"}


def test_without_collect_stale_ifaces_stay(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1", "mpb-eth2"])
    assert reconcile(host, ["mpb-eth1"]) == IfaceChanges()
    assert set(host.iface_records()) == {"mpb-eth1", "mpb-eth2"}


# --- the fake's sessions through ifaces ------------------------------------------------


def test_login_through_an_iface_makes_a_session_of_that_iface(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1", "mpb-eth2"])
    assert login(host, P1, "mpb-eth1") == 0
    assert login(host, P1, "default") == 0
    sessions = Sysfs(host).sessions()
    assert [(s.portal, s.iface) for s in sessions] == [(P1, "mpb-eth1"), (P1, "default")]
    node = host.node_settings(P1, IQN, "mpb-eth1")
    assert node["iface.net_ifacename"] == "eth1"


def test_login_through_a_netdev_that_is_down_fails(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1", "mpb-eth2"])
    host.set_netdev("eth2", up=False)
    assert login(host, P2, "mpb-eth2") == 8  # lab: connection timed out
    host.set_netdev("eth2", up=True, carrier=False)
    assert host.run(v.NodeLogin(P2, IQN, "mpb-eth2"), timeout=30).exit_code == 8
    host.set_netdev("eth2", carrier=True)
    assert host.run(v.NodeLogin(P2, IQN, "mpb-eth2"), timeout=30).ok
    # Off its subnet is not refused: Linux assumes a bound socket's destination is
    # on-link (the lab's wrong-subnet login succeeds); reachability is L2's business.
    assert login(host, P2, "mpb-eth1") == 0
    assert sorted(s[3] for s in host.sessions()) == ["mpb-eth1", "mpb-eth2"]


def test_node_record_through_a_missing_iface_is_refused(host: FakeHost) -> None:
    result = host.run(v.NodeNew(P1, IQN, "mpb-eth1"), timeout=30)
    assert result.exit_code == 3  # lab: iscsiadm calls it a memory failure
    assert host.node_records() == []


def test_iface_delete_takes_its_node_records_and_refuses_while_in_use(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1"])
    assert login(host, P1, "mpb-eth1") == 0
    assert host.run(v.IfaceDelete("mpb-eth1"), timeout=30).exit_code == 15
    assert host.run(v.NodeLogout(P1, IQN, "mpb-eth1"), timeout=30).ok
    assert host.run(v.IfaceDelete("mpb-eth1"), timeout=30).ok
    assert host.leftovers() == {}


def test_show_and_delete_of_a_missing_or_busy_iface(host: FakeHost) -> None:
    tool = Ifaces(host)
    assert tool.show("mpb-eth1") is None
    assert tool.delete("mpb-eth1") is False
    reconcile(host, ["mpb-eth1"])
    assert login(host, P1, "mpb-eth1") == 0
    with pytest.raises(CommandError, match="session exists"):
        tool.delete("mpb-eth1")
    assert [r.name for r in tool.list()] == ["mpb-eth1", "default", "iser"]


def test_leftovers_name_our_ifaces(host: FakeHost) -> None:
    reconcile(host, ["mpb-eth1"])
    assert host.leftovers() == {"ifaces": ["mpb-eth1"]}
    assert SAN1.name != SAN2.name
