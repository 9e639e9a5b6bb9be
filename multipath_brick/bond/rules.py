"""The rules of the data center, in one place.

From the oVirt feature page and ovirt-engine's ``IscsiBondValidator``:

* zero or more bonds per data center;
* a bond's name is unique in its data center, compared case-sensitively, as
  ovirt-engine compares it (Java's ``String.equals``): ``SAN`` and ``san`` may
  coexist, and an engine-side manager built on this model agrees with the engine;
* a bond is created with at least one network, and an edit may not take its last
  one away; its networks are networks of the data center, none of them
  *required* in a cluster (ovirt-engine refuses those);
* its storage connections are iSCSI connections of the data center;
* a network removed from the data center leaves every bond; a bond left without
  networks is kept, *dormant* (below);
* a storage connection removed from the data center leaves every bond;
* removing the data center removes its bonds.

Why a bond left without networks is kept, not removed: ovirt-engine keeps it
(the rows of its network map go by ``ON DELETE CASCADE``, the bond row stays),
and the user's bond (name, description, connections) survives to get a new
network. A dormant bond routes nothing: every host reaches its connections
through ``default``, exactly as if the bond were gone. The edit that empties a
bond names it (:attr:`~multipath_brick.bond.datacenter.Edit.emptied_bonds`) so
the caller can tell the user. Only the cascade may leave a bond dormant.

Every function raises :class:`~multipath_brick.exception.BondRuleError` naming
the bond, network or connection at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from multipath_brick.bond.model import IscsiBond, Network, StorageConnection
from multipath_brick.exception import BondRuleError

_T = TypeVar("_T")


def unique(subject: str, kind: str, values: Sequence[_T], key: Callable[[_T], str]) -> None:
    """No two of ``values`` share ``key`` (ids, network names, bond names)."""
    seen: dict[str, _T] = {}
    for value in values:
        k = key(value)
        if k in seen:
            raise BondRuleError(subject, f"two {kind}s are {k!r}: {seen[k]} and {value}")
        seen[k] = value


def members(
    datacenter: str,
    networks: Sequence[Network],
    connections: Sequence[StorageConnection],
    bond: IscsiBond,
) -> None:
    """The bond's networks and connections are the data center's, and allowed in a bond."""
    for network in bond.networks:
        mine = next((n for n in networks if n.id == network.id), None)
        if mine is None:
            raise BondRuleError(str(bond), f"{network} is not a network of {datacenter}")
        if mine != network:
            raise BondRuleError(str(bond), f"{network} differs from {datacenter}'s {mine}")
        if network.required:
            raise BondRuleError(
                str(bond), f"{network} is required in a cluster and cannot be in a bond"
            )
    for connection in bond.storage_connections:
        theirs = next((c for c in connections if c.id == connection.id), None)
        if theirs is None:
            raise BondRuleError(str(bond), f"{connection} is not a connection of {datacenter}")
        if not connection.is_iscsi:
            raise BondRuleError(str(bond), f"{connection} is not an iSCSI connection")
        if theirs != connection:
            raise BondRuleError(str(bond), f"{connection} differs from {datacenter}'s {theirs}")


def name_free(datacenter: str, bonds: Sequence[IscsiBond], bond: IscsiBond) -> None:
    """No other bond of the data center has ``bond``'s name (case-sensitive)."""
    for other in bonds:
        if other.id != bond.id and other.name == bond.name:
            raise BondRuleError(
                str(bond), f"the name {bond.name!r} is taken in {datacenter} by bond id {other.id}"
            )


def has_networks(bond: IscsiBond) -> None:
    """A bond is created with at least one network."""
    if bond.dormant:
        raise BondRuleError(str(bond), "a bond needs at least one network")


def can_add(bond: IscsiBond, member: Network | StorageConnection) -> None:
    """The bond does not hold ``member`` yet."""
    held = bond.networks if isinstance(member, Network) else bond.storage_connections
    if any(m.id == member.id for m in held):
        raise BondRuleError(str(bond), f"already holds {member}")


def can_remove_network(bond: IscsiBond, network_id: str) -> None:
    """The bond holds the network, and it is not the bond's last one."""
    if not any(n.id == network_id for n in bond.networks):
        raise BondRuleError(str(bond), f"does not hold network {network_id!r}")
    if len(bond.networks) == 1:
        raise BondRuleError(
            str(bond), f"{bond.networks[0]} is its last network; remove the bond instead"
        )


def can_remove_connection(bond: IscsiBond, connection_id: str) -> None:
    """The bond holds the storage connection."""
    if not any(c.id == connection_id for c in bond.storage_connections):
        raise BondRuleError(str(bond), f"does not hold storage connection {connection_id!r}")
