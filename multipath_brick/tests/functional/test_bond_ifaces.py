"""Bond ifaces on the real open-iscsi: reconciled, logged in through, collected.

The lab guest's initiator netdevs are the veth ends ``mpbi<k>`` (192.168.(100+k).1/24),
one subnet per portal: an iface bound to ``mpbi0`` reaches portal 0 only.
"""

from __future__ import annotations

import time

import pytest

from multipath_brick.bond.ifaces import IfaceChanges, reconcile
from multipath_brick.bond.inventory import HostInventory, check_netdevs
from multipath_brick.bond.model import IscsiBond, Network, StorageConnection
from multipath_brick.bond.plan import check_on_host, plan
from multipath_brick.exception import NetdevError
from multipath_brick.iscsi.ifaces import Ifaces
from multipath_brick.iscsi.iscsiadm import Iscsiadm, LoginTimeouts, login_succeeded, node_settings
from multipath_brick.iscsi.properties import Chap, ConnectionProperties, Target
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import read_file, run

from .conftest import ConnectorFactory, Note

IFACE = "mpb-mpbi0"


def test_iface_reconciled_logged_in_through_and_collected(
    lab: Lab, make_connector: ConnectorFactory, note: Note
) -> None:
    host = make_connector().host
    inventory = HostInventory({"san0": "mpbi0", "san1": "mpbi1"})
    bond = IscsiBond(
        "b1",
        "san",
        networks=(Network("n0", "san0"),),
        storage_connections=(StorageConnection("c0", lab.portals[0], lab.iqn),),
    )
    props = ConnectionProperties.from_dict(
        {"target_portals": lab.portals[:2], "target_iqns": [lab.iqn] * 2, "target_luns": [1, 1]}
    )
    host_plan = plan([bond], inventory, props)
    assert [p.iface for p in host_plan.paths] == [IFACE, "default"]
    check_on_host(host, host_plan)  # mpbi0 exists, is up, alone on its subnet

    assert reconcile(host, host_plan.ifaces) == IfaceChanges(created=(IFACE,))
    assert reconcile(host, host_plan.ifaces) == IfaceChanges()
    record = Ifaces(host).show(IFACE)
    assert record is not None
    assert (record["iface.net_ifacename"], record["iface.transport_name"]) == ("mpbi0", "tcp")

    # Someone else's iface, made with the plain tool: never collected.
    run(["iscsiadm", "-m", "iface", "-I", "other0", "-o", "new"])
    try:
        iscsiadm = Iscsiadm(host, timeout=60)
        user, password = lab.chap
        settings = node_settings(Chap(user, password), LoginTimeouts(login_timeout=2, retries=1))
        bonded = Target(lab.portals[0], lab.iqn, 1)
        iscsiadm.create_node(bonded, IFACE, settings)
        assert login_succeeded(iscsiadm.login(bonded, IFACE, timeout=60))
        (session,) = Sysfs(host).sessions()
        assert (session.portal, session.iface) == (lab.portals[0], IFACE)
        netdev = host.read_text(f"/sys/class/iscsi_host/host{session.host}/netdev").strip()
        note("iscsi_host_netdev", netdev)

        # Portal 1 is on mpbi1's subnet, not mpbi0's; Linux still sends a socket
        # bound to mpbi0 there (no route through it: the destination is assumed
        # on-link, and the target's namespace answers the ARP). Recorded, then undone.
        other = Target(lab.portals[1], lab.iqn, 1)
        iscsiadm.create_node(other, IFACE, settings)
        crossed = iscsiadm.login(other, IFACE, timeout=60)
        note("off_subnet_login", [crossed.exit_code, round(crossed.duration, 2)])
        if login_succeeded(crossed):
            iscsiadm.logout(other, IFACE)
        iscsiadm.delete_node(other, IFACE)

        # In use: kept; once logged out: collected; the other program's iface stays.
        assert reconcile(host, [], collect=True) == IfaceChanges(in_use=(IFACE,))
        iscsiadm.logout(bonded, IFACE)
        iscsiadm.delete_node(bonded, IFACE)
        assert reconcile(host, [], collect=True) == IfaceChanges(removed=(IFACE,))
        names = [r.name for r in Ifaces(host).list()]
        assert "other0" in names and IFACE not in names
    finally:
        run(["iscsiadm", "-m", "iface", "-I", "other0", "-o", "delete"], check=False)


def test_netdev_down_is_refused_before_anything_changes(
    lab: Lab, make_connector: ConnectorFactory
) -> None:
    host = make_connector().host
    run(["ip", "link", "set", "mpbi1", "down"])
    try:
        with pytest.raises(NetdevError, match="'mpbi1' is administratively down"):
            check_netdevs(host, {"san1": "mpbi1"})
        with pytest.raises(NetdevError, match="does not exist"):
            check_netdevs(host, {"san9": "mpbi9"})
    finally:
        run(["ip", "link", "set", "mpbi1", "up"])
    # The link comes back a moment after the admin state (veth carrier).
    deadline = time.monotonic() + 10
    while read_file("/sys/class/net/mpbi1/operstate") != "up" and time.monotonic() < deadline:
        time.sleep(0.1)
    check_netdevs(host, {"san1": "mpbi1"})
