"""Several bond netdevs on one subnet: detected, and refused with the fix.

When two netdevs of a host have addresses on one subnet, Linux by default
answers ARP for any local address on any netdev (``arp_ignore=0``), may source
ARP requests from another netdev's address (``arp_announce=0``), and with strict
reverse-path filtering (``rp_filter=1``) drops a reply that arrives on a netdev
other than the one its route prefers. Sessions bound to every such netdev but
one then never log in (vdsm BZ 1112861). The fix, per netdev:
``arp_ignore=1``, ``arp_announce=2``, ``rp_filter=2`` (loose).

Everything here is read unprivileged through the
:class:`~multipath_brick.host.base.Host` door: the kernel's connected routes
(``/proc/net/route``: IPv4; IPv6 is not checked) and the sysctls under
``/proc/sys/net/ipv4/conf``. The kernel applies the larger of ``all`` and the
netdev's own value for each of the three, so both are read.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

from multipath_brick.exception import SameSubnetError
from multipath_brick.host.base import Host

#: ``RTF_UP`` and ``RTF_GATEWAY`` of a ``/proc/net/route`` line (linux/route.h).
RTF_UP = 0x1
RTF_GATEWAY = 0x2

#: The settings several netdevs on one subnet need: name -> the value we advise.
SETTINGS = (("arp_ignore", 1), ("arp_announce", 2), ("rp_filter", 2))


def _address(hex_value: str) -> str:
    # The kernel prints the __be32 as a host-order integer: pack it back the same way.
    return socket.inet_ntoa(struct.pack("=I", int(hex_value, 16)))


def connected_subnets(route_table: str) -> dict[str, set[ipaddress.IPv4Network]]:
    """Parse ``/proc/net/route``: netdev -> the subnets it is directly connected to.

    Example line (a /24 on ``eth1``, little-endian host):
    ``eth1	0064A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0``.
    Routes through a gateway and the default route are not subnets of a netdev.
    """
    subnets: dict[str, set[ipaddress.IPv4Network]] = {}
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            flags = int(fields[3], 16)
            destination, mask = _address(fields[1]), _address(fields[7])
            network = ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)
        except (ValueError, struct.error):
            continue
        if flags & RTF_UP and not flags & RTF_GATEWAY and network.prefixlen > 0:
            subnets.setdefault(fields[0], set()).add(network)
    return subnets


def sysctl_key(netdev: str, name: str) -> str:
    """``net.ipv4.conf.<netdev>.<name>``; a ``.`` in the netdev (a VLAN) is written ``/``,
    as sysctl(8) needs (``net.ipv4.conf.eth0/100.rp_filter``)."""
    return f"net.ipv4.conf.{netdev.replace('.', '/')}.{name}"


def _read_int(host: Host, path: str) -> int:
    try:
        return int(host.read_text(path).strip())
    except (OSError, ValueError):
        return 0


def _tuned(host: Host, netdev: str) -> bool:
    conf = "/proc/sys/net/ipv4/conf"
    values = {
        name: max(
            _read_int(host, f"{conf}/all/{name}"), _read_int(host, f"{conf}/{netdev}/{name}")
        )
        for name, _ in SETTINGS
    }
    # arp_ignore 2 is stricter than 1 and works too; rp_filter 0 (off) works too.
    return (
        values["arp_ignore"] in (1, 2)
        and values["arp_announce"] == 2
        and values["rp_filter"] in (0, 2)
    )


def sysctl_lines(netdevs: Iterable[str]) -> list[str]:
    """The ``sysctl`` settings for ``netdevs``, one ``key = value`` line each."""
    return [f"{sysctl_key(dev, name)} = {value}" for dev in netdevs for name, value in SETTINGS]


def check_same_subnet(host: Host, netdevs: Iterable[str]) -> None:
    """Refuse bond netdevs that share an IPv4 subnet without the sysctls.

    :param host: the host.
    :param netdevs: the netdevs the bond paths leave by.
    :raises SameSubnetError: naming the subnet, its netdevs and the exact lines
        to set for those that lack them.
    """
    wanted = set(netdevs)
    if len(wanted) < 2:
        return
    try:
        table = host.read_text("/proc/net/route")
    except OSError:
        return  # no IPv4 routing table (an IPv6-only host): nothing to compare
    sharing: dict[ipaddress.IPv4Network, set[str]] = {}
    for dev, subnets in connected_subnets(table).items():
        if dev in wanted:
            for subnet in subnets:
                sharing.setdefault(subnet, set()).add(dev)
    for subnet, devs in sorted(sharing.items()):
        if len(devs) < 2:
            continue
        untuned = [dev for dev in sorted(devs) if not _tuned(host, dev)]
        if untuned:
            raise SameSubnetError(str(subnet), sorted(devs), sysctl_lines(untuned))
