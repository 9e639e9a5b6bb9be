"""ISCSIMultipathConnector(bonds=...) on the real stack: 2 portals x 2 netdevs.

The lab's initiator netdevs ``mpbi0`` and ``mpbi1`` carry the bond's two
networks; an iface bound to one reaches the other's subnet too (Linux assumes
a bound socket's destination is on-link and the target's namespace answers
the ARP), so a bond of both networks gives 4 sessions to portals 0 and 1.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from multipath_brick.bond import (
    DataCenter,
    HostInventory,
    HostState,
    IscsiBond,
    Network,
    StorageConnection,
)
from multipath_brick.bond.edits import AttachedVolume
from multipath_brick.exception import HostNonOperationalError
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.iscsi.paths import path_from_dict
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.initiator import ifaces as our_ifaces
from multipath_brick.tests.lab.shell import read_file, run

from .conftest import ConnectorFactory, Note, host_state, read_sha256, volume_props, write_random


def _bond(lab: Lab) -> IscsiBond:
    return IscsiBond(
        "b1",
        "san",
        networks=(Network("n0", "san0"), Network("n1", "san1")),
        storage_connections=tuple(
            StorageConnection(f"c{i}", portal, lab.iqn) for i, portal in enumerate(lab.portals[:2])
        ),
    )


def _session_ifaces() -> list[tuple[str, str, str, str]]:
    """(portal, ifacename, netdev of its iscsi_host, tpgt) of every session, from sysfs."""
    found = []
    for name in sorted(run(["ls", "/sys/class/iscsi_session"]).stdout.split()):
        base = f"/sys/class/iscsi_session/{name}"
        sid = name.removeprefix("session")
        conn = f"/sys/class/iscsi_connection/connection{sid}:0"
        address = read_file(f"{conn}/persistent_address")
        port = read_file(f"{conn}/persistent_port")
        netdev = read_file(f"/sys/class/iscsi_host/{_host_dir(base)}/netdev")
        found.append(
            (
                f"{address}:{port}",
                read_file(f"{base}/ifacename"),
                netdev,
                read_file(f"{base}/tpgt"),
            )
        )
    return sorted(found)


def _host_dir(session_dir: str) -> str:
    """``hostN`` of a session: /sys/class/iscsi_session/sessionK/device is .../hostN/sessionK."""
    device = run(["readlink", "-f", f"{session_dir}/device"]).stdout.strip()
    return device.rsplit("/", 2)[-2]


def test_bond_of_two_networks_logs_in_4_sessions_each_through_its_netdev(
    lab: Lab, make_connector: ConnectorFactory, tmp_path: Any, note: Note
) -> None:
    lab.add_lun(1, 64)
    inventory = HostInventory({"san0": "mpbi0", "san1": "mpbi1"})
    connector = make_connector(bonds=[_bond(lab)], inventory=inventory)
    props = volume_props(lab, 1, portals=lab.portals[:2])

    t0 = time.monotonic()
    info = connector.connect_volume(props)
    note("attach_seconds", round(time.monotonic() - t0, 2))
    assert connector.wait_for_pending(180)
    pairs = sorted((p["portal"], p["iface"]) for p in info["paths"])
    assert pairs == sorted(
        (portal, iface) for portal in lab.portals[:2] for iface in ("mpb-mpbi0", "mpb-mpbi1")
    )
    note("path_states", [(p["portal"], p["iface"], p["state"]) for p in info["paths"]])

    sessions = _session_ifaces()
    note("sessions", sessions)
    assert [(portal, iface, netdev) for portal, iface, netdev, _ in sessions] == sorted(
        (portal, f"mpb-{dev}", dev) for portal in lab.portals[:2] for dev in ("mpbi0", "mpbi1")
    ), host_state()
    # Two node records per portal, one per iface, filed under the tag.
    records = run(["find", "/etc/iscsi/nodes", "-type", "f", "-printf", "%P\n"]).stdout.split()
    note("node_records", sorted(records))
    assert len(records) == 4 and all(r.rsplit("/", 1)[-1].startswith("mpb-mpbi") for r in records)

    # The map has the 4 paths and carries I/O.
    dm = info["path"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 60
    while len(run(["ls", f"/sys/block/{dm}/slaves"]).stdout.split()) < 4:
        assert time.monotonic() < deadline, host_state()
        time.sleep(0.5)
    digest = write_random(info["path"], str(tmp_path), 4)
    assert read_sha256(info["path"], 4) == digest

    connector.disconnect_volume(props, info)
    assert run(["iscsiadm", "-m", "session"], check=False).stdout == ""
    # The ifaces stay while the bond needs them; collected once it does not.
    assert sorted(our_ifaces()) == ["mpb-mpbi0", "mpb-mpbi1"]
    changes = connector.collect_ifaces(())
    assert changes.removed == ("mpb-mpbi0", "mpb-mpbi1")
    assert our_ifaces() == []


def _slaves(dm: str) -> list[str]:
    return sorted(run(["ls", f"/sys/block/{dm}/slaves"]).stdout.split())


def _wait_slaves(dm: str, count: int) -> list[str]:
    deadline = time.monotonic() + 90
    while len(slaves := _slaves(dm)) != count:
        assert time.monotonic() < deadline, host_state()
        time.sleep(0.5)
    return slaves


def test_network_added_then_removed_while_the_volume_is_attached(
    lab: Lab, make_connector: ConnectorFactory, tmp_path: Any, note: Note
) -> None:
    lab.add_lun(1, 64)
    san0, san1 = Network("n0", "san0"), Network("n1", "san1")
    connections = tuple(
        StorageConnection(f"c{i}", portal, lab.iqn) for i, portal in enumerate(lab.portals[:2])
    )
    dc = DataCenter("dc", "lab", (san0, san1), connections)
    before = dc.add_bond(IscsiBond("b1", "san", "", (san0,), connections)).datacenter
    assert before is not None
    inventory = HostInventory({"san0": "mpbi0", "san1": "mpbi1"})
    connector = make_connector(bonds=before.iscsi_bonds, inventory=inventory)
    props = volume_props(lab, 1, portals=lab.portals[:2])
    info = connector.connect_volume(props)
    assert connector.wait_for_pending(180)
    dm = info["path"].rsplit("/", 1)[-1]
    assert len(_wait_slaves(dm, 2)) == 2
    digest = write_random(info["path"], str(tmp_path), 4)
    volumes = {"vol": AttachedVolume(props, info)}

    def hosts() -> HostState:
        paths = [p for e in volumes["vol"].device_info["paths"] if (p := path_from_dict(e))]
        return HostState({"me": dict(inventory.networks)}, {"me": {"vol": paths}})

    added = before.add_network_to_bond("b1", "n1", hosts())
    assert added.datacenter is not None
    connector.use_bonds(added.datacenter.iscsi_bonds)
    report = connector.apply_bond_work(added.work.for_host("me"), volumes)
    assert connector.wait_for_pending(180)
    note("added", {"logged_in": [str(s) for s in report.logged_in], "failed": report.failed})
    assert len(report.logged_in) == 2 and report.failed == ()
    assert report.device_info["vol"]["path"] == info["path"]  # the same map
    assert len(_wait_slaves(dm, 4)) == 4
    assert read_sha256(info["path"], 4) == digest
    volumes = {"vol": AttachedVolume(props, report.device_info["vol"])}

    removed = added.datacenter.remove_network_from_bond("b1", "n0", hosts())
    assert removed.datacenter is not None
    connector.use_bonds(removed.datacenter.iscsi_bonds)
    report = connector.apply_bond_work(removed.work.for_host("me"), volumes)
    note("removed", {"logged_out": [str(s) for s in report.logged_out], "held": report.held})
    assert len(report.logged_out) == 2 and report.held == () and report.kept == ()
    assert report.ifaces.removed == ("mpb-mpbi0",)
    assert len(_wait_slaves(dm, 2)) == 2
    assert sorted(i for _, i, _, _ in _session_ifaces()) == ["mpb-mpbi1", "mpb-mpbi1"]
    assert read_sha256(info["path"], 4) == digest

    connector.disconnect_volume(props, report.device_info["vol"])
    assert connector.collect_ifaces(()).removed == ("mpb-mpbi1",)


def test_a_cut_wire_degrades_and_both_cut_is_non_operational(
    lab: Lab, make_connector: ConnectorFactory, note: Note
) -> None:
    lab.add_lun(1, 64)
    inventory = HostInventory({"san0": "mpbi0", "san1": "mpbi1"})
    connector = make_connector(
        bonds=[_bond(lab)],
        inventory=inventory,
        grace=2,
        login_timeouts=LoginTimeouts(login_timeout=3, retries=1),
    )
    props = volume_props(lab, 1, portals=lab.portals[:2])
    # portal_down(k) drops everything on the target's end of mpbi<k>'s wire: here,
    # where each NIC reaches both portals, that is mpbi1's link cut (first run:
    # the two pairs through mpb-mpbi1 failed, the two through mpb-mpbi0 did not).
    lab.portal_down(1)
    try:
        info = connector.connect_volume(props)
        late = connector.wait_for_pending(120)
        failed = {(r.path.target.portal, r.path.iface) for r in late.failed} | {
            (p["portal"], p["iface"]) for p in info["paths"] if p["state"] == "failed"
        }
        note("degraded", [(p["portal"], p["iface"], p["state"]) for p in info["paths"]])
        assert failed == {(lab.portals[0], "mpb-mpbi1"), (lab.portals[1], "mpb-mpbi1")}
        assert {(p["portal"], p["iface"]) for p in info["paths"] if p["state"] == "active"} == {
            (lab.portals[0], "mpb-mpbi0"),
            (lab.portals[1], "mpb-mpbi0"),
        }
        connector.disconnect_volume(props, info)

        lab.portal_down(0)
        with pytest.raises(HostNonOperationalError) as caught:
            connector.connect_volume(props)
        note("non_operational", str(caught.value))
        assert caught.value.networks == ("san0", "san1")
        assert len(caught.value.failures) == 4
        assert run(["iscsiadm", "-m", "session"], check=False).stdout == ""
        records = run(["find", "/etc/iscsi/nodes", "-type", "f"], check=False).stdout.split()
        assert records == [], records
    finally:
        lab.portal_up(0)
        lab.portal_up(1)
    assert connector.collect_ifaces(()).removed == ("mpb-mpbi0", "mpb-mpbi1")
