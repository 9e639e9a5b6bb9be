"""The iSCSI bond on a real kernel: two NICs, each reaching both portals.

The lab's bond topology (lab/bondnet.py): the NICs ``mpbn0`` (192.168.200.1)
and ``mpbn1`` (192.168.201.1), on two subnets, both reach the portals
192.168.210.1 and .2 by routing; ``mpbs0`` and ``mpbs1`` share one subnet in
front of 192.168.220.2. Which NIC a session really uses is read from sysfs
(``iscsi_host/hostH/netdev``, and ``ipaddress``: the local address of its TCP
connection). Every test ends with no session, node record, iface of ours
(``mpb-*``), disk or map (the autouse no-leftovers check): the connector's
ifaces are collected after the last detach.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from multipath_brick.exception import SameSubnetError
from multipath_brick.iscsi.paths import path_from_dict
from multipath_brick.tests.lab import initiator
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import run, wait_for

from .conftest import (
    BackgroundWrite,
    ConnectorFactory,
    Note,
    dm_name,
    host_state,
    read_sha256,
    volume_props,
    wait_slaves,
    write_random,
)

#: The routed bond's networks, in the order of the NICs that carry them.
SAN = ("san-a", "san-b")


def routed_bond(lab: Lab, networks: Sequence[str] = SAN) -> IscsiBond:
    """A bond of ``networks`` covering both routed portals of the lab's target."""
    return IscsiBond(
        "bond-1",
        "san",
        networks=tuple(Network(f"net-{name}", name) for name in networks),
        storage_connections=tuple(
            StorageConnection(f"conn-{k}", portal, lab.iqn)
            for k, portal in enumerate(lab.bond_portals)
        ),
    )


def routed_inventory(lab: Lab) -> HostInventory:
    """This host's networks: san-a on mpbn0, san-b on mpbn1, and a management
    network no bond uses."""
    nics = dict(zip(SAN, lab.bond_nics, strict=True))
    return HostInventory({**nics, "ovirtmgmt": lab.config.initiator_veth(0)})


def attach(
    lab: Lab, connector: Any, portals: Sequence[str], paths: int
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Attach LUN 1 through ``portals``; wait until the map has ``paths`` disks."""
    props = volume_props(lab, 1, portals=portals)
    info = connector.connect_volume(props)
    assert connector.wait_for_pending(timeout=120)
    dm = dm_name(info["path"])
    wait_slaves(lab, dm, paths)
    return props, info, dm


def detach(connector: Any, props: dict[str, Any], info: dict[str, Any]) -> None:
    """Detach, then remove the connector's ifaces (no volume uses them any more)."""
    connector.disconnect_volume(props, info)
    connector.collect_ifaces(())
    assert not initiator.ifaces(), initiator.ifaces()


def routed_paths(lab: Lab) -> set[tuple[str, str, str, str]]:
    """(portal, iface, netdev, local address) of every session the bond should have."""
    return {
        (portal, f"mpb-{nic}", nic, lab.config.bond_nic_ip(j))
        for portal in lab.bond_portals
        for j, nic in enumerate(lab.bond_nics)
    }


def seen_paths(lab: Lab) -> set[tuple[str, str, str, str]]:
    return {(r.portal, r.iface, r.netdev, r.ipaddress) for r in lab.sessions_by_route()}


def nic_of_disks(lab: Lab) -> dict[str, str]:
    """sdX -> the NIC its session leaves by."""
    return {disk: r.netdev for r in lab.sessions_by_route() for disk in r.disks}


def use_nic(lab: Lab, wwid: str, nic: str) -> None:
    """Make the map send its I/O through a path of ``nic``.

    The lab's maps are multipath-tools' default ``failover``: one path per
    group, one group in use. Switching groups is what a failover does.
    """
    nics = nic_of_disks(lab)
    groups = initiator.path_groups(wwid)
    group = next(i for i, disks in enumerate(groups, 1) if disks and nics.get(disks[0]) == nic)
    run(["multipathd", "switchgroup", "map", wwid, "group", str(group)])


def test_bond_of_both_networks(lab: Lab, make_connector: ConnectorFactory, note: Note, tmp_path):
    """4 sessions, one per (portal, NIC), each leaving by its own NIC, and
    both NICs' transmit counters grow by the data written through them."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector(bonds=[routed_bond(lab)], inventory=routed_inventory(lab), grace=10)
    t0 = time.monotonic()
    props, info, _ = attach(lab, connector, lab.bond_portals, 4)
    note("attach_seconds", round(time.monotonic() - t0, 2))

    assert seen_paths(lab) == routed_paths(lab), host_state()
    assert len(lab.sessions_by_route()) == 4
    assert sorted((p["portal"], p["iface"]) for p in info["paths"]) == sorted(
        (portal, iface) for portal, iface, _, _ in routed_paths(lab)
    )
    assert not [p for p in info["paths"] if p["state"] == "failed"], info["paths"]

    mib = 8
    grown: dict[str, dict[str, int]] = {}
    for nic in lab.bond_nics:
        use_nic(lab, wwid, nic)
        before = {n: initiator.tx_bytes(n) for n in lab.bond_nics}
        expected = write_random(info["path"], str(tmp_path), mib)
        grown[nic] = {n: initiator.tx_bytes(n) - before[n] for n in lab.bond_nics}
        assert read_sha256(info["path"], mib) == expected
    note("tx_bytes_grown_by_nic_in_use", grown)
    for nic in lab.bond_nics:
        assert grown[nic][nic] >= mib << 20, grown

    detach(connector, props, info)


def test_nic_down_during_io_then_back(
    lab: Lab, make_connector: ConnectorFactory, note: Note, tmp_path
):
    """mpbn0 loses its link while a write goes through it: the write completes
    intact over mpbn1, whose paths the map keeps; mpbn0 back -> its paths return."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector(bonds=[routed_bond(lab)], inventory=routed_inventory(lab), grace=10)
    props, info, _ = attach(lab, connector, lab.bond_portals, 4)
    nics = nic_of_disks(lab)
    cut, kept = lab.bond_nics
    use_nic(lab, wwid, cut)
    # Each 64 KiB write waits 10 ms more for its reply: 512 of them take
    # several seconds, so the cut lands mid-I/O.
    for j in range(len(lab.bond_nics)):
        lab.set_nic_latency(j, 10)
    writer = BackgroundWrite(info["path"], str(tmp_path), 32)
    time.sleep(1.5)
    lab.nic_down(0)
    t_cut = time.monotonic()
    still_running = writer.running()
    writer.wait()
    note("io_after_cut_seconds", round(time.monotonic() - t_cut, 2))
    assert still_running, "dd finished before the NIC was cut; make the I/O longer"
    assert read_sha256(info["path"], writer.mib) == writer.sha256

    def split() -> dict[str, list[str]]:
        states = initiator.path_states()
        return {
            nic: sorted(states.get(d, "gone") for d, n in nics.items() if n == nic)
            for nic in (cut, kept)
        }

    def degraded() -> bool:
        # The checker's word for a path whose session is in recovery varies
        # (faulty, shaky, i/o pending); the map has failed it either way.
        now = split()
        return all(s.startswith("failed") for s in now[cut]) and now[kept] == ["active ready"] * 2

    try:
        wait_for("the cut NIC's paths failed", degraded, timeout=30)
    except TimeoutError:
        raise AssertionError(f"{split()}\n{host_state()}") from None
    assert sorted(nics) == initiator.dm_slaves(dm_name(info["path"]))

    for j in range(len(lab.bond_nics)):
        lab.set_nic_latency(j, 0)
    lab.nic_up(0)
    t_up = time.monotonic()
    healthy = {cut: ["active ready"] * 2, kept: ["active ready"] * 2}
    try:
        # iscsid reconnects once the link is back, then multipathd's checker
        # (every 2 s) reinstates the paths.
        wait_for("the NIC's paths back", lambda: split() == healthy, timeout=90)
    except TimeoutError:
        raise AssertionError(f"{split()}\n{host_state()}") from None
    note("paths_back_after_seconds", round(time.monotonic() - t_up, 2))

    detach(connector, props, info)


def test_network_added_then_removed_while_attached(
    lab: Lab, make_connector: ConnectorFactory, note: Note, tmp_path
):
    """A bond edit with the volume attached and written to: san-b added ->
    its 2 sessions through mpbn1 join the map while the write goes on; san-a
    removed -> its 2 sessions through mpbn0 go, the volume stays on mpbn1's."""
    wwid = lab.add_lun(1, 64)
    full = routed_bond(lab)
    networks = full.networks
    dc = DataCenter(
        "dc-1",
        "lab",
        networks=networks,
        storage_connections=full.storage_connections,
        iscsi_bonds=(routed_bond(lab, SAN[:1]),),
    )
    inventory = routed_inventory(lab)
    connector = make_connector(bonds=dc.iscsi_bonds, inventory=inventory, grace=10)
    props, info, dm = attach(lab, connector, lab.bond_portals, 2)
    on_a, on_b = ({p for p in routed_paths(lab) if p[2] == nic} for nic in lab.bond_nics)
    assert seen_paths(lab) == on_a, host_state()

    def hosts(device_info: dict[str, Any]) -> HostState:
        paths = [p for e in device_info["paths"] if (p := path_from_dict(e)) is not None]
        return HostState({"host-1": dict(inventory.networks)}, {"host-1": {"vol-1": paths}})

    # san-b joins while a write goes through the map (768 writes of 64 KiB,
    # each waiting 20 ms more for its reply: the write outlasts the logins).
    for j in range(len(lab.bond_nics)):
        lab.set_nic_latency(j, 20)
    writer = BackgroundWrite(info["path"], str(tmp_path), 48)
    edit = dc.add_network_to_bond("bond-1", networks[1].id, hosts(info))
    assert edit.datacenter is not None
    connector.use_bonds(edit.datacenter.iscsi_bonds)
    t0 = time.monotonic()
    report = connector.apply_bond_work(
        edit.work.for_host("host-1"), {"vol-1": AttachedVolume(props, info)}
    )
    note("add_network_apply_seconds", round(time.monotonic() - t0, 2))
    still_running = writer.running()
    assert not report.failed, report.failed
    assert len(report.logged_in) == 2, report
    info = dict(report.device_info["vol-1"])
    wait_slaves(lab, dm, 4)
    writer.wait()
    assert still_running, "the write ended before the new paths joined; make it longer"
    assert read_sha256(info["path"], writer.mib) == writer.sha256
    assert seen_paths(lab) == on_a | on_b, host_state()
    for j in range(len(lab.bond_nics)):
        lab.set_nic_latency(j, 0)

    # san-a leaves: the volume keeps working paths through mpbn1, so its
    # sessions go now, their disks out of the map first.
    dc = edit.datacenter
    edit = dc.remove_network_from_bond("bond-1", networks[0].id, hosts(info))
    assert edit.datacenter is not None
    connector.use_bonds(edit.datacenter.iscsi_bonds)
    report = connector.apply_bond_work(
        edit.work.for_host("host-1"), {"vol-1": AttachedVolume(props, info)}
    )
    assert len(report.logged_out) == 2 and not report.held and not report.kept, report
    info = dict(report.device_info["vol-1"])
    assert seen_paths(lab) == on_b, host_state()
    assert len(initiator.dm_slaves(dm)) == 2
    assert lab.dm_for_wwid(wwid) == dm
    assert read_sha256(info["path"], writer.mib) == writer.sha256
    assert initiator.ifaces() == ["mpb-mpbn1"], report.ifaces

    detach(connector, props, info)


def test_host_without_the_bonds_networks_uses_default(lab: Lab, make_connector: ConnectorFactory):
    """The host carries none of the bond's networks: one login per portal
    through ``default`` (unbound: the routing table picks mpbn0), no iface made."""
    lab.add_lun(1, 64)
    inventory = HostInventory({"ovirtmgmt": lab.config.initiator_veth(0)})
    connector = make_connector(bonds=[routed_bond(lab)], inventory=inventory, grace=10)
    props, info, _ = attach(lab, connector, lab.bond_portals, 2)

    assert sorted((p["portal"], p["iface"]) for p in info["paths"]) == [
        (portal, "default") for portal in lab.bond_portals
    ]
    default_route = lab.config.bond_nic_ip(0)
    assert seen_paths(lab) == {(p, "default", "", default_route) for p in lab.bond_portals}
    assert not initiator.ifaces()

    detach(connector, props, info)


def test_same_subnet_refused_without_sysctls_then_works(
    lab: Lab, make_connector: ConnectorFactory, note: Note
):
    """mpbs0 and mpbs1 share 192.168.220.0/24: refused, before anything is
    changed, with the exact sysctl lines; with them set, one session per NIC."""
    lab.add_lun(1, 64)
    bond = IscsiBond(
        "bond-2",
        "pair",
        networks=(Network("net-p0", "san-p0"), Network("net-p1", "san-p1")),
        storage_connections=(StorageConnection("conn-p", lab.pair_portal, lab.iqn),),
    )
    inventory = HostInventory(dict(zip(("san-p0", "san-p1"), lab.pair_nics, strict=True)))
    connector = make_connector(bonds=[bond], inventory=inventory, grace=10)
    props = volume_props(lab, 1, portals=[lab.pair_portal])

    with pytest.raises(SameSubnetError) as caught:
        connector.connect_volume(props)
    text = str(caught.value)
    note("refusal", text)
    assert "192.168.220.0/24" in text
    for nic in lab.pair_nics:
        for line in ("arp_ignore = 1", "arp_announce = 2", "rp_filter = 2"):
            assert f"net.ipv4.conf.{nic}.{line}" in text, text
    assert not any(lab.leftovers().values()), lab.leftovers()

    lab.set_pair_sysctls(True)
    props, info, _ = attach(lab, connector, [lab.pair_portal], 2)
    assert seen_paths(lab) == {
        (lab.pair_portal, f"mpb-{nic}", nic, lab.config.pair_nic_ip(j))
        for j, nic in enumerate(lab.pair_nics)
    }, host_state()

    detach(connector, props, info)
