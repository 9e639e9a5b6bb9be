"""The fake host's network devices: what a bond reads of them.

Each netdev is a directory under ``/sys/devices/virtual/net`` linked from
``/sys/class/net`` with ``operstate``, ``flags`` and ``carrier`` as the kernel
writes them (``carrier`` cannot be read while the netdev is down: EINVAL, here
a missing file); its IPv4 subnet appears in ``/proc/net/route`` while it is
administratively up; ``/proc/sys/net/ipv4/conf/<dev>/`` holds the ARP and
rp_filter sysctls. Formats as captured in the lab
(``tests/fixtures/iface_netdev_sequence.txt``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import struct

from multipath_brick.testing.sysfs_tree import SysfsTree

#: The sysctls a fake netdev has, and their kernel defaults.
SYSCTLS = {"arp_ignore": 0, "arp_announce": 0, "rp_filter": 0}
_ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
)
# IFF_UP | IFF_BROADCAST | IFF_MULTICAST, as an Ethernet netdev shows them.
_FLAGS_UP, _FLAGS_DOWN = 0x1003, 0x1002


@dataclasses.dataclass
class Netdev:
    """One network device.

    :ivar name: e.g. ``eth1``.
    :ivar address: its IPv4 address and prefix, or None.
    :ivar up: administratively up (``ip link set up``).
    :ivar carrier: the link is there (cable, peer up).
    """

    name: str
    address: ipaddress.IPv4Interface | None
    up: bool = True
    carrier: bool = True

    @property
    def running(self) -> bool:
        """Up with a link: sessions bound to it can connect."""
        return self.up and self.carrier


class Netdevs:
    """The netdevs of one fake host, mirrored as files in its tree.

    :param tree: the fake host's tree.
    """

    def __init__(self, tree: SysfsTree) -> None:
        self.tree = tree
        self.devices: dict[str, Netdev] = {}
        for scope in ("all", "default"):
            for name, value in SYSCTLS.items():
                tree.attr(f"/proc/sys/net/ipv4/conf/{scope}/{name}", value)
        self._write_routes()

    def add(self, name: str, address: str | None = None, *, up: bool = True) -> Netdev:
        """Add a netdev.

        :param name: its name.
        :param address: ``10.0.1.5/24``, or None for none.
        :param up: administratively up, with a link.
        """
        iface = ipaddress.IPv4Interface(address) if address is not None else None
        dev = Netdev(name, iface, up, carrier=True)
        self.devices[name] = dev
        real = f"/sys/devices/virtual/net/{name}"
        self.tree.link(f"/sys/class/net/{name}", real)
        for key, value in SYSCTLS.items():
            self.tree.attr(f"/proc/sys/net/ipv4/conf/{name}/{key}", value)
        self._write_state(dev)
        return dev

    def set_state(self, name: str, *, up: bool | None = None, carrier: bool | None = None) -> None:
        """Take a netdev down or up (``ip link``), or its link (a cable, a switch port).

        :raises KeyError: for a netdev that does not exist.
        """
        dev = self.devices[name]
        if up is not None:
            dev.up = up
        if carrier is not None:
            dev.carrier = carrier
        self._write_state(dev)

    def set_sysctl(self, netdev: str, name: str, value: int) -> None:
        """Set ``net.ipv4.conf.<netdev>.<name>`` (``netdev`` may be ``all``)."""
        if name not in SYSCTLS:
            raise ValueError(f"the fake host has no sysctl {name!r}")
        self.tree.attr(f"/proc/sys/net/ipv4/conf/{netdev}/{name}", value)

    def _write_state(self, dev: Netdev) -> None:
        real = f"/sys/devices/virtual/net/{dev.name}"
        self.tree.attr(f"{real}/flags", f"0x{_FLAGS_UP if dev.up else _FLAGS_DOWN:x}")
        self.tree.attr(f"{real}/operstate", "up" if dev.running else "down")
        if dev.up:
            self.tree.attr(f"{real}/carrier", int(dev.carrier))
        else:
            self.tree.remove(f"{real}/carrier")
        self._write_routes()

    def _write_routes(self) -> None:
        lines = [_ROUTE_HEADER]
        for dev in self.devices.values():
            if dev.up and dev.address is not None:
                network = dev.address.network
                lines.append(
                    f"{dev.name}\t{_hex(network.network_address)}\t00000000\t0001\t0\t0\t0\t"
                    f"{_hex(network.netmask)}\t0\t0\t0"
                )
        self.tree.write_file("/proc/net/route", "".join(f"{line:<127}\n" for line in lines))


def _hex(address: ipaddress.IPv4Address) -> str:
    # The kernel prints the __be32 as a host-order integer.
    return f"{struct.unpack('=I', socket.inet_aton(str(address)))[0]:08X}"
