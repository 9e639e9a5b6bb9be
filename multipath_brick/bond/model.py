"""The values of the iSCSI bond: networks, storage connections, bonds.

Named as the oVirt feature names them: a *data center* has logical *networks*
and *storage connections*; an *iSCSI bond* groups some of its networks and some
of its iSCSI storage connections, and every host then reaches those connections
through every bond network it carries. The rules that tie them together live in
:mod:`multipath_brick.bond.datacenter`; these are plain frozen values, checked
when built.

The model holds no secret: CHAP credentials arrive with the connection
properties at attach time, never here, so ``to_dict``, the REST bodies and the
error messages can be logged freely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from multipath_brick.bond import checks
from multipath_brick.exception import BondValueError, InvalidConnectionProperties
from multipath_brick.iscsi.properties import ConnectionProperties, Target

#: The storage type of the connections a bond may hold.
ISCSI = "iscsi"
_CONNECTION_FIELDS = {"target_portal": "portal", "target_iqn": "iqn"}


@dataclasses.dataclass(frozen=True)
class Network:
    """A logical network of the data center.

    :ivar id: its id (ovirt-engine: a GUID).
    :ivar name: its name, unique in the data center; hosts say which netdev
        carries it by this name.
    :ivar vlan_id: the VLAN tag (1-4094), or None for an untagged network. Plain
        data: the host's netdev already carries the tag.
    :ivar mtu: the MTU (68-65535), or None for the default. Plain data.
    :ivar required: the network is *required* in some cluster of the data center.
        ovirt-engine refuses such a network in a bond: a host missing a required
        network is non-operational already, while a bond network a host lacks
        must only send that host to the ``default`` fallback.
    """

    id: str
    name: str
    vlan_id: int | None = None
    mtu: int | None = None
    required: bool = False

    def __post_init__(self) -> None:
        subject = f"network {self.id!r}"
        checks.ident("network", "id", self.id)
        checks.name(subject, "name", self.name, checks.NETWORK_NAME_MAX)
        checks.optional_int(subject, "vlan_id", self.vlan_id, 1, 4094)
        checks.optional_int(subject, "mtu", self.mtu, 68, 65535)
        checks.flag(subject, "required", self.required)

    def __str__(self) -> str:
        return f"network {self.name!r} (id {self.id})"

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "vlan_id", "mtu", "required"}``; absent values are null."""
        return {
            "id": self.id,
            "name": self.name,
            "vlan_id": self.vlan_id,
            "mtu": self.mtu,
            "required": self.required,
        }

    @classmethod
    def from_dict(cls, data: object, *, where: str = "network") -> Network:
        """Build from :meth:`to_dict`'s shape.

        :param where: where ``data`` sits, for error messages.
        :raises BondValueError: naming the key at fault.
        """
        d = checks.mapping(where, data, ("id", "name", "vlan_id", "mtu", "required"))
        return cls(d["id"], d["name"], d["vlan_id"], d["mtu"], d["required"])


@dataclasses.dataclass(frozen=True)
class StorageConnection:
    """A storage connection of the data center: for iSCSI, one portal and target.

    The portal and IQN are parsed by the connection-properties parser
    (:class:`~multipath_brick.ConnectionProperties`), so they are written exactly
    as the :class:`~multipath_brick.Target` values of an attach are, and
    :meth:`matches` can compare them as plain strings.

    :ivar id: its id (ovirt-engine: a string of up to 50 characters).
    :ivar portal: ``host:port`` (IPv6 ``[addr]:port``, default port 3260); None
        only for a connection that is not iSCSI.
    :ivar iqn: the target name; None only for a connection that is not iSCSI.
    :ivar type: the storage type, ``iscsi`` unless said otherwise (``nfs``,
        ``fcp``...). Only iSCSI connections may join a bond; the others are kept so
        that the data center can say so by name.
    """

    id: str
    portal: str | None
    iqn: str | None
    type: str = ISCSI

    def __post_init__(self) -> None:
        subject = f"storage connection {self.id!r}"
        checks.ident("storage connection", "id", self.id)
        checks.storage_type(subject, self.type)
        if self.type != ISCSI:
            for field in ("portal", "iqn"):
                if getattr(self, field) is not None:
                    raise BondValueError(subject, field, "only an iSCSI connection has one")
            return
        object.__setattr__(self, "portal", parse_target(subject, self.portal, self.iqn).portal)

    @property
    def is_iscsi(self) -> bool:
        """True for an iSCSI connection, the only kind a bond may hold."""
        return self.type == ISCSI

    def matches(self, target: Target) -> bool:
        """True when ``target`` (a path of a volume) goes to this portal and target."""
        return self.is_iscsi and target.portal == self.portal and target.iqn == self.iqn

    def __str__(self) -> str:
        where = f" {self.portal} {self.iqn}" if self.is_iscsi else f" ({self.type})"
        return f"storage connection {self.id!r}{where}"

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "type", "portal", "iqn"}``; the portal as normalised."""
        return {"id": self.id, "type": self.type, "portal": self.portal, "iqn": self.iqn}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "storage connection") -> StorageConnection:
        """Build from :meth:`to_dict`'s shape.

        :raises BondValueError: naming the key at fault.
        """
        d = checks.mapping(where, data, ("id", "type", "portal", "iqn"))
        return cls(d["id"], d["portal"], d["iqn"], d["type"])


@dataclasses.dataclass(frozen=True)
class IscsiBond:
    """An iSCSI bond: networks of a data center and the storage connections they reach.

    A bond built alone is only checked for its own values; whether its networks
    and connections belong to a data center, and whether its name is free
    there, is :class:`~multipath_brick.bond.datacenter.DataCenter`'s job.

    :ivar id: its id.
    :ivar name: 1-50 letters, digits, ``.``, ``_``, ``-``; unique in its data
        center, compared case-sensitively (as ovirt-engine does).
    :ivar description: free text (up to 4000 characters), may be empty.
    :ivar networks: the bond's networks, in the order given, each once.
    :ivar storage_connections: the iSCSI connections it covers, each once.
    """

    id: str
    name: str
    description: str = ""
    networks: tuple[Network, ...] = ()
    storage_connections: tuple[StorageConnection, ...] = ()

    def __post_init__(self) -> None:
        subject = f"iSCSI bond {self.id!r}"
        checks.ident("iSCSI bond", "id", self.id)
        checks.name(subject, "name", self.name, checks.BOND_NAME_MAX)
        checks.description(subject, self.description)
        networks = _members(subject, "networks", self.networks, Network)
        connections = _members(
            subject, "storage_connections", self.storage_connections, StorageConnection
        )
        object.__setattr__(self, "networks", networks)
        object.__setattr__(self, "storage_connections", connections)

    @property
    def dormant(self) -> bool:
        """True when the bond has no network left (its last one left the data center).

        A dormant bond routes nothing: every host reaches its connections
        through the ``default`` iface, as ovirt-engine does with such a bond.
        """
        return not self.networks

    @property
    def network_names(self) -> frozenset[str]:
        """The names of its networks, as hosts report the netdevs that carry them."""
        return frozenset(n.name for n in self.networks)

    def covers(self, target: Target) -> bool:
        """True when one of its storage connections is ``target``'s portal and IQN."""
        return any(c.matches(target) for c in self.storage_connections)

    def __str__(self) -> str:
        return f"iSCSI bond {self.name!r} (id {self.id})"

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "description", "networks", "storage_connections"}``.

        The networks and connections are written whole (:meth:`Network.to_dict`,
        :meth:`StorageConnection.to_dict`), so a host agent can use a bond alone.
        """
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "networks": [n.to_dict() for n in self.networks],
            "storage_connections": [c.to_dict() for c in self.storage_connections],
        }

    @classmethod
    def from_dict(cls, data: object, *, where: str = "iscsi_bond") -> IscsiBond:
        """Build from :meth:`to_dict`'s shape.

        :raises BondValueError: naming the key at fault (e.g. ``networks[1].mtu``).
        """
        keys = ("id", "name", "description", "networks", "storage_connections")
        d = checks.mapping(where, data, keys)
        networks = checks.listing(where, "networks", d["networks"])
        connections = checks.listing(where, "storage_connections", d["storage_connections"])
        return cls(
            d["id"],
            d["name"],
            d["description"],
            tuple(
                Network.from_dict(n, where=f"{where}.networks[{i}]")
                for i, n in enumerate(networks)
            ),
            tuple(
                StorageConnection.from_dict(c, where=f"{where}.storage_connections[{i}]")
                for i, c in enumerate(connections)
            ),
        )


def parse_target(subject: str, portal: object, iqn: object) -> Target:
    """Check a portal and a target name with the connection-properties parser.

    One parser for both keeps a bond's portals written exactly as an attach's
    :class:`~multipath_brick.Target` values are (``host:port``, IPv6 in
    brackets), and its rules for what may reach iscsiadm's command line.

    :param subject: what holds them, for the error.
    :returns: the parsed target (LUN 0), with the portal normalised.
    :raises BondValueError: naming ``portal`` or ``iqn``.
    """
    for field, value in (("portal", portal), ("iqn", iqn)):
        if value is None:
            raise BondValueError(subject, field, "required for an iSCSI connection")
    try:
        props = ConnectionProperties.from_dict({"target_portal": portal, "target_iqn": iqn})
    except InvalidConnectionProperties as error:
        field = _CONNECTION_FIELDS.get(error.key, error.key)
        raise BondValueError(subject, field, error.reason) from None
    return props.targets[0]


def _members(subject: str, field: str, values: object, cls: type[Any]) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Sequence):
        raise BondValueError(subject, field, f"expected a sequence, got {checks.kind(values)}")
    for value in values:
        if not isinstance(value, cls):
            raise BondValueError(
                subject, field, f"expected {cls.__name__} values, got {checks.kind(value)}"
            )
    checks.unique_ids(subject, field, [v.id for v in values])
    return tuple(values)
