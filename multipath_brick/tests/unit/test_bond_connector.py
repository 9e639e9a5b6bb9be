"""ISCSIMultipathConnector(bonds=, inventory=) on the FakeHost: plan, logins, verdict.

Bond edits applied to volumes already attached are in
``test_bond_connector_edits.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick import verbs as v
from multipath_brick.bond import HostInventory, IscsiBond, StorageConnection
from multipath_brick.exception import (
    AuthenticationError,
    HostNonOperationalError,
    IfaceConflictError,
    InvalidSettings,
    NetdevError,
)
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.bondutil import C1, C2, IQN, P1, P2, SAN1, SAN2, bond
from multipath_brick.tests.unit.conftest import FAST, GIB

CHAP = ("mpb-user", "Pa55-w0rd-S3CRET")


ALL = HostInventory({"san1": "eth1", "san2": "eth2", "ovirtmgmt": "ovirtmgmt"})


SOME = HostInventory({"san1": "eth1", "ovirtmgmt": "ovirtmgmt"})


NONE = HostInventory({"ovirtmgmt": "ovirtmgmt"})


BOTH = (bond(networks=(SAN1, SAN2)),)


def props(*portals: str, lun: int = 1, password: str = CHAP[1]) -> dict[str, Any]:
    return {
        "target_portals": list(portals or (P1, P2)),
        "target_iqns": [IQN] * len(portals or (P1, P2)),
        "target_luns": [lun] * len(portals or (P1, P2)),
        "auth_method": "CHAP",
        "auth_username": CHAP[0],
        "auth_password": password,
    }


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0.05) as fake:
        fake.add_target(IQN, [P1, P2], luns={1: GIB, 2: GIB}, chap=CHAP)
        fake.add_netdev("eth1", "10.0.1.5/24")
        fake.add_netdev("eth2", "10.0.2.5/24")
        yield fake


def bonded(
    host: FakeHost,
    tmp_path: Any,
    inventory: HostInventory = ALL,
    bonds: tuple[IscsiBond, ...] = BOTH,
    **settings: Any,
) -> ISCSIMultipathConnector:
    return ISCSIMultipathConnector(
        use_multipath=True,
        host=host,
        settings=dataclasses.replace(FAST, **settings),
        lock_path=str(tmp_path),
        bonds=bonds,
        inventory=inventory,
    )


def pairs(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(portal, iface, state) of each path; a path still logging in when the
    attach returned (the grace is short here) counts as active."""
    return [
        (p["portal"], p["iface"], p["state"].replace("pending", "active")) for p in info["paths"]
    ]


def session_pairs(host: FakeHost) -> list[tuple[str, str]]:
    return sorted((portal, iface) for _, portal, _, iface in host.sessions())


# --- the host carries all, some or none of the bond's networks --------------------------


def test_all_networks_log_in_every_portal_through_every_netdev(host, tmp_path):
    connector = bonded(host, tmp_path)
    info = connector.connect_volume(props())
    assert pairs(info) == [
        (P1, "mpb-eth1", "active"),
        (P1, "mpb-eth2", "active"),
        (P2, "mpb-eth1", "active"),
        (P2, "mpb-eth2", "active"),
    ]
    assert session_pairs(host) == [
        (P1, "mpb-eth1"),
        (P1, "mpb-eth2"),
        (P2, "mpb-eth1"),
        (P2, "mpb-eth2"),
    ]
    records = host.iface_records()
    assert {name: rec["iface.net_ifacename"] for name, rec in records.items()} == {
        "mpb-eth1": "eth1",
        "mpb-eth2": "eth2",
    }
    (wwid,) = host.maps()
    assert len(host.maps()[wwid]) == 4
    connector.disconnect_volume(props(), info)
    # The ifaces are the host's configuration for its bonds: they stay until the
    # bonds no longer need them.
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}
    assert connector.collect_ifaces().removed == ()
    assert connector.collect_ifaces(()).removed == ("mpb-eth1", "mpb-eth2")
    assert host.leftovers() == {}


def test_two_ifaces_to_one_portal_keep_two_node_records(host, tmp_path):
    connector = bonded(host, tmp_path)
    info = connector.connect_volume(props(P1))
    assert host.node_records() == [(P1, IQN, "mpb-eth1"), (P1, IQN, "mpb-eth2")]
    for iface in ("mpb-eth1", "mpb-eth2"):
        record = host.node_settings(P1, IQN, iface)
        assert record["node.tpgt"] == "1"  # filed under the tag, one file per iface
        assert record["node.session.scan"] == "manual"
        assert record["iface.net_ifacename"] == iface.removeprefix("mpb-")
    new = [c[0] for c in host.calls if c[0][-2:] == ("-o", "new") and "node" in c[0]]
    assert all(f"{P1},1" in argv for argv in new), new
    connector.disconnect_volume(props(P1), info)
    assert host.node_records() == [] and host.sessions() == []


def test_a_records_tag_is_the_one_a_session_to_the_portal_got(host, tmp_path):
    host.targets[IQN].tpgt = 7
    first = bonded(host, tmp_path, inventory=SOME).connect_volume(props(P1, lun=1))
    # No session told the tag yet: 1, which logs in all the same (iscsid takes
    # the target's from the login response, as in the lab).
    assert host.node_settings(P1, IQN, "mpb-eth1")["node.tpgt"] == "1"
    connector = bonded(host, tmp_path)
    second = connector.connect_volume(props(P1, lun=2))
    # mpb-eth1's session tells the real one: mpb-eth2's record is filed under it.
    assert host.node_settings(P1, IQN, "mpb-eth2")["node.tpgt"] == "7"
    connector.disconnect_volume(props(P1, lun=2), second)
    connector.disconnect_volume(props(P1, lun=1), first)
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


def test_some_networks_log_in_through_the_netdevs_the_host_has(host, tmp_path):
    connector = bonded(host, tmp_path, inventory=SOME)
    info = connector.connect_volume(props())
    assert pairs(info) == [(P1, "mpb-eth1", "active"), (P2, "mpb-eth1", "active")]
    assert list(host.iface_records()) == ["mpb-eth1"]
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {"ifaces": ["mpb-eth1"]}


def test_none_of_the_networks_falls_back_to_default(host, tmp_path):
    connector = bonded(host, tmp_path, inventory=NONE)
    info = connector.connect_volume(props())
    assert pairs(info) == [(P1, "default", "active"), (P2, "default", "active")]
    assert host.iface_records() == {}
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {}


def test_a_target_in_no_bond_goes_through_default(host, tmp_path):
    connector = bonded(host, tmp_path, bonds=(bond(networks=(SAN1,), connections=(C1,)),))
    info = connector.connect_volume(props())
    assert pairs(info) == [(P1, "mpb-eth1", "active"), (P2, "default", "active")]
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {"ifaces": ["mpb-eth1"]}


# --- the verdict -----------------------------------------------------------------------


def test_no_path_through_the_bond_is_non_operational_and_leaves_nothing(host, tmp_path):
    host.set_unreachable(P1)
    host.set_unreachable(P2)
    connector = bonded(host, tmp_path)
    with pytest.raises(HostNonOperationalError) as caught:
        connector.connect_volume(props())
    assert caught.value.networks == ("san1", "san2")
    assert [p for p, _ in caught.value.failures] == [
        f"{portal} {IQN} lun 1 via {iface}"
        for portal in (P1, P2)
        for iface in ("mpb-eth1", "mpb-eth2")
    ]
    assert all("TRANS_TIMEOUT" in why for _, why in caught.value.failures)
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


def test_a_bond_down_while_default_works_is_non_operational_and_undone(host, tmp_path):
    # P1 is bonded (san1 on eth1), P2 is in no bond: its default path works, the
    # bond's does not. The volume would work, through the management network:
    # the feature says the host is non-operational instead.
    host.set_unreachable(P1)
    only_p1 = (bond(networks=(SAN1,), connections=(C1,)),)
    connector = bonded(host, tmp_path, bonds=only_p1)
    with pytest.raises(HostNonOperationalError, match="san1") as caught:
        connector.connect_volume(props())
    assert [p for p, _ in caught.value.failures] == [f"{P1} {IQN} lun 1 via mpb-eth1"]
    assert host.leftovers() == {"ifaces": ["mpb-eth1"]}


def test_some_failed_pairs_make_a_degraded_attach_naming_them(host, tmp_path):
    host.set_unreachable(P2)
    connector = bonded(host, tmp_path)
    info = connector.connect_volume(props())
    states = {(p["portal"], p["iface"]): (p["state"], p["reason"]) for p in info["paths"]}
    assert states[(P1, "mpb-eth1")] == ("active", None)
    assert states[(P1, "mpb-eth2")] == ("active", None)
    # A dead portal's logins run into their timeout after the map is usable:
    # failed by the time the grace ran out, or pending and reported failed later.
    late = connector.wait_for_pending(30)
    failed = {(r.path.target.portal, r.path.iface): r.reason for r in late.failed}
    for iface in ("mpb-eth1", "mpb-eth2"):
        state, reason = states[(P2, iface)]
        if state == "pending":
            reason = failed[(P2, iface)]
        else:
            assert state == "failed"
        assert "TRANS_TIMEOUT" in str(reason)
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


def test_wrong_chap_stays_an_authentication_error(host, tmp_path):
    connector = bonded(host, tmp_path)
    with pytest.raises(AuthenticationError):
        connector.connect_volume(props(password="Wr0ng-Pa55-w0rd"))
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


# --- checks before anything is changed -------------------------------------------------


def test_a_netdev_down_is_refused_before_any_command(host, tmp_path):
    host.set_netdev("eth2", up=False)
    connector = bonded(host, tmp_path)
    with pytest.raises(NetdevError, match="eth2"):
        connector.connect_volume(props())
    assert host.leftovers() == {}
    assert not [c for c in host.calls if "iscsiadm" in c[0]]


def test_an_iface_of_our_name_bound_elsewhere_is_refused(host, tmp_path):
    assert host.run(v.IfaceNew("mpb-eth1"), timeout=5).ok
    assert host.run(v.IfaceUpdate("mpb-eth1", "iface.net_ifacename", "eth2"), timeout=5).ok
    connector = bonded(host, tmp_path)
    with pytest.raises(IfaceConflictError, match="mpb-eth1"):
        connector.connect_volume(props())
    assert host.leftovers() == {"ifaces": ["mpb-eth1"]}
    assert host.sessions() == []


def test_ifaces_and_bonds_together_are_refused(host, tmp_path):
    with pytest.raises(InvalidSettings, match="bonds"):
        ISCSIMultipathConnector(
            use_multipath=True, host=host, ifaces=["default"], bonds=BOTH, inventory=ALL
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bonds": BOTH}, "inventory"),
        ({"inventory": ALL}, "inventory"),
        ({"bonds": BOTH[0], "inventory": ALL}, "bonds"),
        ({"bonds": ["san"], "inventory": ALL}, "bonds"),
        ({"bonds": BOTH, "inventory": {"san1": "eth1"}}, "inventory"),
    ],
)
def test_bad_bond_arguments_name_the_field(host, changes, field):
    with pytest.raises(InvalidSettings) as caught:
        ISCSIMultipathConnector(host=host, **changes)
    assert caught.value.field == field


def test_without_bonds_nothing_changes(host, tmp_path):
    connector = ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path)
    )
    info = connector.connect_volume(props())
    assert pairs(info) == [(P1, "default", "active"), (P2, "default", "active")]
    # The records keep open-iscsi's flat layout (no tag on -p), as before bonds.
    assert {host.node_settings(p, IQN)["node.tpgt"] for p in (P1, P2)} == {"-1"}
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {}


def test_detach_without_device_info_finds_the_bond_paths(host, tmp_path):
    connector = bonded(host, tmp_path)
    connector.connect_volume(props())
    connector.disconnect_volume(props(), None)
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


def test_a_connection_the_bond_lists_by_another_id_is_covered(host, tmp_path):
    same_portal = StorageConnection("other-id", P2, IQN)
    connector = bonded(host, tmp_path, bonds=(bond(networks=(SAN2,), connections=(same_portal,)),))
    info = connector.connect_volume(props())
    assert pairs(info) == [(P1, "default", "active"), (P2, "mpb-eth2", "active")]
    connector.disconnect_volume(props(), info)
    assert C2.portal == P2
