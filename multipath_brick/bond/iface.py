"""The one naming scheme of the iscsiadm ifaces a bond uses.

A bond path leaves the host through a netdev (a NIC, a VLAN device, a bond
device, or a bridge): open-iscsi binds a session to a netdev through an iface
record whose ``iface.net_ifacename`` names it, and every node operation passes
``-I <iface>``. This library names that iface ``mpb-<netdev>``:

* one iface per netdev, so two bonds sharing a NIC share its iface and its sessions;
* the ``mpb-`` prefix marks the ifaces this library made, so that the ones no bond
  needs any more can be removed without touching anyone else's (vdsm never removes
  the ifaces it makes; they pile up);
* it can never be one of open-iscsi's reserved names (``default``, ``tcp``, ``iser``).

A path through no bond network uses open-iscsi's ``default`` iface, which
leaves by whatever netdev the routing table picks (the oVirt feature's fallback).
"""

from __future__ import annotations

from multipath_brick.exception import BondValueError

# The scheme's prefix, the reserved names and the netdev rule live with the
# privileged verbs' checks, which enforce them again inside the daemon.
from multipath_brick.verbs.checks import IFACE_PREFIX, RESERVED_IFACES, is_netdev

__all__ = [
    "DEFAULT_IFACE",
    "IFACE_PREFIX",
    "RESERVED_IFACES",
    "check_netdev",
    "iface_for",
    "is_ours",
    "netdev_of",
]

#: open-iscsi's iface for paths that follow the routing table.
DEFAULT_IFACE = "default"


def check_netdev(subject: str, value: object) -> str:
    """A Linux netdev name that is safe on an iscsiadm command line.

    :param subject: who gives it, for the error (e.g. ``host 'h1' network 'san1'``).
    :param value: the name, e.g. ``eth1``, ``bond0.100``, ``ovirtmgmt``.
    :returns: the name.
    :raises BondValueError: when it is not one.
    """
    if not isinstance(value, str) or not is_netdev(value):
        raise BondValueError(
            subject,
            "netdev",
            f"{str(value)[:40]!r} is not a netdev name (1-15 of A-Z a-z 0-9 . _ -)",
        )
    return value


def iface_for(netdev: str) -> str:
    """The iface of this library bound to ``netdev``: ``mpb-<netdev>``.

    :raises BondValueError: when ``netdev`` is not a netdev name.
    """
    return IFACE_PREFIX + check_netdev("iface", netdev)


def is_ours(iface: str) -> bool:
    """True when ``iface`` follows this library's scheme (``mpb-<netdev>``)."""
    return iface.startswith(IFACE_PREFIX) and netdev_of(iface) is not None


def netdev_of(iface: str) -> str | None:
    """The netdev an iface of ours is bound to; None for ``default`` or anyone else's."""
    if not iface.startswith(IFACE_PREFIX):
        return None
    netdev = iface[len(IFACE_PREFIX) :]
    return netdev if is_netdev(netdev) else None
