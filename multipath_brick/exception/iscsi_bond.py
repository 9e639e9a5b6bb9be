"""The iSCSI bond's refusals (:mod:`multipath_brick.bond`).

A value of the model, a data-center rule, or this host.
"""

from __future__ import annotations

from collections.abc import Sequence

from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "BondError",
    "BondHostError",
    "BondNotFoundError",
    "BondRuleError",
    "BondValueError",
    "BondXmlError",
    "HostNonOperationalError",
    "IfaceConflictError",
    "NetdevError",
    "SameSubnetError",
]


class BondError(MultipathBrickError):
    """The iSCSI bond model (:mod:`multipath_brick.bond`) refused something."""


class BondValueError(BondError, ValueError):
    """A value of the bond model that cannot be used.

    :ivar subject: what holds the value, e.g. ``network 'san1'`` or
        ``data_center.iscsi_bonds[2]``.
    :ivar field: the offending field, e.g. ``mtu``.
    :ivar reason: why it was refused (never a secret: the model holds none).
    """

    def __init__(self, subject: str, field: str, reason: str) -> None:
        self.subject = subject
        self.field = field
        self.reason = reason
        super().__init__(f"{subject}: invalid {field!r}: {reason}", subject, field, reason)


class BondXmlError(BondValueError):
    """A REST body (``<iscsi_bond>``...) that is hostile, too large or malformed.

    :ivar element: where in the body, e.g. ``iscsi_bond/networks/network[3]``.
    :ivar reason: why it was refused; the body itself is never echoed.
    """

    def __init__(self, element: str, reason: str) -> None:
        super().__init__("XML body", element, reason)
        self.element = element
        self.args = (element, reason)
        self.msg = f"XML body refused at {element}: {reason}"


class BondRuleError(BondError):
    """A rule of the data center refused an edit; nothing was changed.

    :ivar subject: the bond, network or storage connection at fault, e.g.
        ``iSCSI bond 'san' (id b1)``.
    :ivar reason: the rule it breaks.
    """

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"{subject}: {reason}", subject, reason)


class BondNotFoundError(BondRuleError):
    """An edit named a bond, network or storage connection the data center does not hold.

    :ivar kind: ``iSCSI bond``, ``network`` or ``storage connection``.
    :ivar ident: the id that was asked for.
    :ivar data_center: the data center's id.
    """

    def __init__(self, kind: str, ident: str, data_center: str) -> None:
        self.kind = kind
        self.ident = ident
        self.data_center = data_center
        BondError.__init__(
            self,
            f"{kind} {ident!r} is not in data center {data_center!r}",
            kind,
            ident,
            data_center,
        )
        self.subject = f"{kind} {ident!r}"
        self.reason = f"not in data center {data_center!r}"


class BondHostError(BondError):
    """This host cannot carry the bond as asked; nothing was changed by the refusal."""


class NetdevError(BondHostError):
    """The netdev that carries a bond network on this host is missing or not up.

    :ivar network: the logical network, e.g. ``san1``.
    :ivar netdev: the netdev the caller said carries it, e.g. ``eth1``.
    :ivar reason: what the host shows, e.g. ``operstate is 'down'``.
    """

    def __init__(self, network: str, netdev: str, reason: str) -> None:
        self.network = network
        self.netdev = netdev
        self.reason = reason
        super().__init__(
            f"network {network!r}: netdev {netdev!r} {reason}", network, netdev, reason
        )


class IfaceConflictError(BondHostError):
    """An iface of this library's name exists bound to another netdev: never rebound.

    :ivar iface: the iface, e.g. ``mpb-eth1``.
    :ivar netdev: the netdev the name says, e.g. ``eth1``.
    :ivar bound_to: the netdev the record holds (empty: none).
    """

    def __init__(self, iface: str, netdev: str, bound_to: str) -> None:
        self.iface = iface
        self.netdev = netdev
        self.bound_to = bound_to
        shown = repr(bound_to) if bound_to else "no netdev"
        super().__init__(
            f"iface {iface!r} exists bound to {shown}, not {netdev!r}: left alone; "
            "remove or fix it by hand",
            iface,
            netdev,
            bound_to,
        )


class SameSubnetError(BondHostError):
    """Several bond netdevs share a subnet and lack the ARP and rp_filter sysctls.

    Without them the kernel answers ARP for every address on every such netdev
    and drops replies that arrive on the "wrong" one, so sessions bound to all
    but one netdev never log in.

    :ivar subnet: the shared subnet, e.g. ``192.168.10.0/24``.
    :ivar netdevs: the netdevs on it.
    :ivar lines: the ``sysctl`` settings that are missing, one ``key = value`` each.
    """

    def __init__(self, subnet: str, netdevs: Sequence[str], lines: Sequence[str]) -> None:
        self.subnet = subnet
        self.netdevs = tuple(netdevs)
        self.lines = tuple(lines)
        super().__init__(
            f"netdevs {', '.join(self.netdevs)} share subnet {subnet}: sessions through "
            "all but one would not log in. Set (e.g. in /etc/sysctl.d/):\n"
            + "\n".join(self.lines),
            subnet,
            self.netdevs,
            self.lines,
        )


class HostNonOperationalError(BondHostError):
    """The host carries a bond's networks but no path through them logged in.

    The oVirt feature makes such a host non-operational: it is not allowed to
    fall back to ``default`` (the management network) for a bonded target.

    :ivar networks: the bond networks the host carries.
    :ivar failures: ``(path, reason)`` of each bonded path, e.g.
        ``("10.0.0.1:3260 iqn... lun 1 via mpb-eth1", "connection timed out")``.
    """

    def __init__(self, networks: Sequence[str], failures: Sequence[tuple[str, str]]) -> None:
        self.networks = tuple(networks)
        self.failures = tuple(tuple(f) for f in failures)
        detail = "; ".join(f"{path}: {reason}" for path, reason in self.failures)
        super().__init__(
            f"host non-operational: no path through networks {', '.join(self.networks)} "
            f"logged in ({detail})",
            self.networks,
            self.failures,
        )
