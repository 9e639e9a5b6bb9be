"""Which iSCSI session uses a node record: the daemon's look before it deletes one.

``iscsiadm -o delete`` refuses (exit 15) while a session made from the record
is up (``iscsi_check_for_running_session``): deleting it would leave a session
that iscsid can no longer find the settings of when it must log in again.
The daemon's own delete
(:meth:`multipath_brick.privileged.nodedb.NodeDb.delete_node`) keeps that
rule, reading what iscsiadm reads::

    /sys/class/iscsi_session/sessionN/{targetname,ifacename}
    /sys/class/iscsi_connection/connectionN:0/{persistent_address,persistent_port}

A session whose connection cannot be read is skipped, as iscsiadm skips it
(``iscsi_sysfs_for_each_session`` goes on when a session's info cannot be
read). Taking it for a user instead refused deletes in the lab: a volume's
sessions are logged out side by side, and a session being torn down loses its
connection before its session directory, so each delete saw the others.
Within the library a record's login and its delete never overlap (both hold
the record's lock).
"""

from __future__ import annotations

import ipaddress

from multipath_brick.verbs import rooted

_SESSIONS = "/sys/class/iscsi_session"


def session_using(root: str, portal: str, iqn: str, iface: str) -> str | None:
    """The name (``sessionN``) of the first session made from the node record
    of (portal, iqn, iface), or None.

    :param portal: ``address:port`` as the verbs check it (IPv6 in brackets).
    :param root: the directory standing for ``/`` (a FakeHost's tree in tests).
    """
    address, _, port = portal.rpartition(":")
    address = address.removeprefix("[").removesuffix("]")
    for name in rooted.listing(root, _SESSIONS):
        sid = name.removeprefix("session")
        if not sid.isdigit():
            continue
        base = f"{_SESSIONS}/{name}"
        if rooted.read(root, f"{base}/targetname") != iqn:
            continue
        if rooted.read(root, f"{base}/ifacename") != iface:
            continue
        conn = f"/sys/class/iscsi_connection/connection{sid}:0"
        seen = rooted.read(root, f"{conn}/persistent_address")
        seen_port = rooted.read(root, f"{conn}/persistent_port")
        if seen and seen_port == port and _same_address(seen, address):
            return name
    return None


def _same_address(seen: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(seen) == ipaddress.ip_address(address)
    except ValueError:
        return seen == address
