"""Bond edits applied by a bond connector to volumes already attached (FakeHost).

A network added or removed, and the sessions a volume cannot lose.
"""

from __future__ import annotations

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick import verbs as v
from multipath_brick.bond import HostState, HostWork, Session
from multipath_brick.bond.edits import AttachedVolume
from multipath_brick.exception import InvalidSettings
from multipath_brick.iscsi.paths import path_from_dict
from multipath_brick.tests.unit import test_bond_connector
from multipath_brick.tests.unit.bondutil import IQN, P1, P2, SAN1, SAN2, bond, datacenter
from multipath_brick.tests.unit.conftest import FAST
from multipath_brick.tests.unit.test_bond_connector import (
    ALL,
    SOME,
    bonded,
    pairs,
    props,
    session_pairs,
)

#: The bond's host (two portals, eth1 and eth2), as a fixture of this module too.
host = test_bond_connector.host


# --- bond edits applied to attached volumes ---------------------------------------------


def state(volumes: dict[str, AttachedVolume]) -> HostState:
    """This host ("me") as the engine sees it: its networks and attached paths."""
    paths = {
        vid: [p for e in v.device_info["paths"] if (p := path_from_dict(e))]
        for vid, v in volumes.items()
    }
    return HostState({"me": dict(ALL.networks)}, {"me": paths})


def test_network_added_then_removed_with_a_volume_attached(host, tmp_path):
    dc = datacenter(bond(networks=(SAN1,)))
    connector = bonded(host, tmp_path, bonds=dc.iscsi_bonds)
    info = connector.connect_volume(props())
    dm = info["path"]
    assert session_pairs(host) == [(P1, "mpb-eth1"), (P2, "mpb-eth1")]
    volumes = {"vol1": AttachedVolume(props(), info)}

    added = dc.add_network_to_bond("b1", SAN2.id, state(volumes))
    assert added.datacenter is not None
    work = added.work.for_host("me")
    assert sorted(s.iface for s in work.logins) == ["mpb-eth2", "mpb-eth2"]
    connector.use_bonds(added.datacenter.iscsi_bonds)
    report = connector.apply_bond_work(work, volumes)
    assert report.logged_in == work.logins and report.failed == ()
    info = dict(report.device_info["vol1"])
    assert info["path"] == dm  # the same map, four paths now
    assert connector.wait_for_pending(30)
    assert session_pairs(host) == [
        (P1, "mpb-eth1"),
        (P1, "mpb-eth2"),
        (P2, "mpb-eth1"),
        (P2, "mpb-eth2"),
    ]
    (slaves,) = host.maps().values()
    assert len(slaves) == 4

    volumes = {"vol1": AttachedVolume(props(), info)}
    removed = added.datacenter.remove_network_from_bond("b1", SAN1.id, state(volumes))
    assert removed.datacenter is not None
    work = removed.work.for_host("me")
    assert sorted(s.iface for s in work.logouts) == ["mpb-eth1", "mpb-eth1"] and not work.held
    connector.use_bonds(removed.datacenter.iscsi_bonds)
    report = connector.apply_bond_work(work, volumes)
    assert report.logged_out == work.logouts and report.kept == () and report.held == ()
    assert report.ifaces.removed == ("mpb-eth1",)
    assert session_pairs(host) == [(P1, "mpb-eth2"), (P2, "mpb-eth2")]
    (slaves,) = host.maps().values()
    assert len(slaves) == 2
    info = dict(report.device_info["vol1"])
    assert sorted((p["portal"], p["iface"]) for p in info["paths"]) == [
        (P1, "mpb-eth2"),
        (P2, "mpb-eth2"),
    ]
    connector.disconnect_volume(props(), info)
    assert host.leftovers() == {"ifaces": ["mpb-eth2"]}


def test_a_session_a_volume_depends_on_alone_is_held(host, tmp_path):
    connector = bonded(host, tmp_path, inventory=SOME)
    info = connector.connect_volume(props())
    volumes = {"vol1": AttachedVolume(props(), info)}
    leaving = tuple(sorted(Session(p, IQN, "mpb-eth1") for p in (P1, P2)))
    report = connector.apply_bond_work(HostWork("me", logouts=leaving), volumes)
    assert report.logged_out == ()
    assert [(h.session, h.volumes) for h in report.held] == [(s, ("vol1",)) for s in leaving]
    assert session_pairs(host) == [(P1, "mpb-eth1"), (P2, "mpb-eth1")]
    connector.disconnect_volume(props(), info)


def test_a_session_whose_other_paths_are_dead_is_held(host, tmp_path):
    # The engine thinks vol1 keeps mpb-eth2's paths; sysfs says they are gone.
    connector = bonded(host, tmp_path)
    info = connector.connect_volume(props(P1))
    for _sid, portal, iqn, iface in host.sessions():
        if iface == "mpb-eth2":
            assert host.run(v.NodeLogout(portal, iqn, iface), timeout=5).ok
    volumes = {"vol1": AttachedVolume(props(P1), info)}
    leaving = (Session(P1, IQN, "mpb-eth1"),)
    report = connector.apply_bond_work(HostWork("me", logouts=leaving), volumes)
    assert [h.session for h in report.held] == list(leaving) and report.logged_out == ()
    connector.disconnect_volume(props(P1), info)
    assert host.leftovers() == {"ifaces": ["mpb-eth1", "mpb-eth2"]}


def test_a_bond_edit_needs_a_bond_connector(host, tmp_path):
    connector = ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path)
    )
    with pytest.raises(InvalidSettings, match="bonds"):
        connector.apply_bond_work(HostWork("me"), {})


def test_ifaces_without_a_bond_get_a_record_each_too(host, tmp_path):
    for name, dev in (("mpb-eth1", "eth1"), ("mpb-eth2", "eth2")):
        assert host.run(v.IfaceNew(name), timeout=5).ok
        assert host.run(v.IfaceUpdate(name, "iface.net_ifacename", dev), timeout=5).ok
    connector = ISCSIMultipathConnector(
        use_multipath=True,
        host=host,
        settings=FAST,
        lock_path=str(tmp_path),
        ifaces=["mpb-eth1", "mpb-eth2"],
    )
    info = connector.connect_volume(props(P1))
    assert pairs(info) == [(P1, "mpb-eth1", "active"), (P1, "mpb-eth2", "active")]
    assert host.node_records() == [(P1, IQN, "mpb-eth1"), (P1, IQN, "mpb-eth2")]
    connector.disconnect_volume(props(P1), info)
    assert connector.collect_ifaces(()).removed == ("mpb-eth1", "mpb-eth2")
    assert host.leftovers() == {}
