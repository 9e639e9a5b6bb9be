"""The host inventory: which netdev carries each logical network on this host.

The caller gives it (the engine knows the mapping; as its ``netIfaceName``
rule has it, a bridged network is carried by the bridge named after the
network, another by its NIC, VLAN device or bond device), and
:func:`check_netdevs` checks it against the host through the
:class:`~multipath_brick.host.base.Host` door, so a
:class:`~multipath_brick.testing.FakeHost` can model it: every netdev a plan
uses must exist and be up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from multipath_brick.bond.model import IscsiBond
from multipath_brick.bond.work import check_networks
from multipath_brick.exception import NetdevError
from multipath_brick.host.base import Host

#: ``IFF_UP`` of ``/sys/class/net/<dev>/flags`` (linux/if.h): administratively up.
IFF_UP = 0x1


@dataclasses.dataclass(frozen=True)
class HostInventory:
    """This host's networks: logical network name -> the netdev that carries it.

    Networks no bond uses (the management network) may be listed.

    :ivar networks: e.g. ``{"san1": "eth1", "san2": "bond0.200", "ovirtmgmt": "ovirtmgmt"}``.
    :raises BondValueError: naming the network of a bad entry.
    """

    networks: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        checked = check_networks("host inventory", self.networks)
        object.__setattr__(self, "networks", MappingProxyType(checked))

    def carried(self, bonds: Iterable[IscsiBond]) -> dict[str, str]:
        """The networks of ``bonds`` this host carries: network name -> netdev."""
        names = {n.name for bond in bonds for n in bond.networks}
        return {name: dev for name, dev in self.networks.items() if name in names}

    def to_dict(self) -> dict[str, Any]:
        """``{"networks": {network: netdev}}``."""
        return {"networks": dict(self.networks)}

    @classmethod
    def from_dict(cls, data: object) -> HostInventory:
        """Build from :meth:`to_dict`'s shape.

        :raises BondValueError: naming the key at fault.
        """
        from multipath_brick.bond import checks

        return cls(checks.mapping("host inventory", data, ("networks",))["networks"])


def check_netdevs(host: Host, networks: Mapping[str, str]) -> None:
    """Check that every netdev exists and is up on ``host``.

    Up means administratively up (``IFF_UP`` in ``flags``) and with a working
    link: ``operstate`` ``up``, or ``unknown`` (drivers that do not report it:
    dummy, some tun and bridge setups) with ``carrier`` 1. A session bound to a
    netdev that is not would never log in (iscsid's socket is bound to it).

    :param host: the host.
    :param networks: logical network name -> netdev, for the networks to check.
    :raises NetdevError: naming the first network whose netdev is missing or down.
    """
    for network, netdev in sorted(networks.items()):
        base = f"/sys/class/net/{netdev}"
        if not host.exists(base):
            raise NetdevError(network, netdev, "does not exist on this host")
        try:
            operstate = host.read_text(f"{base}/operstate").strip()
            flags = int(host.read_text(f"{base}/flags").strip(), 16)
        except (OSError, ValueError) as exc:
            raise NetdevError(network, netdev, f"state unreadable: {exc}") from None
        if not flags & IFF_UP:
            raise NetdevError(network, netdev, "is administratively down")
        if operstate == "unknown":
            operstate = "up" if _carrier(host, base) else operstate
        if operstate != "up":
            raise NetdevError(network, netdev, f"has no link (operstate {operstate!r})")


def _carrier(host: Host, base: str) -> bool:
    try:
        return host.read_text(f"{base}/carrier").strip() == "1"
    except OSError:  # EINVAL while the netdev is down
        return False
