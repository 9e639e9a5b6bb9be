"""The data center: the registry of networks, storage connections and iSCSI bonds.

A :class:`DataCenter` is a frozen value that keeps every rule of
:mod:`multipath_brick.bond.rules` on every value built. Every edit returns an
:class:`Edit`: the new data center and the
:class:`~multipath_brick.bond.work.Work` it asks of the hosts, computed for the
:class:`~multipath_brick.bond.work.HostState` given. A refused edit raises and
changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from multipath_brick.bond import checks, rules
from multipath_brick.bond.model import IscsiBond, Network, StorageConnection
from multipath_brick.bond.work import HostState, Session, Work, desired_sessions, work_between
from multipath_brick.exception import BondNotFoundError, BondRuleError
from multipath_brick.iscsi.properties import Target

_T = TypeVar("_T", Network, StorageConnection, IscsiBond)
_DC_KEYS = ("id", "name", "networks", "storage_connections", "iscsi_bonds")
_BOND_REF_KEYS = ("id", "name", "description", "networks", "storage_connections")
_NO_HOSTS = HostState()


@dataclasses.dataclass(frozen=True)
class Edit:
    """The outcome of an edit.

    :ivar datacenter: the data center after the edit; None when it was removed.
    :ivar work: the sessions each host must now log in and out.
    :ivar emptied_bonds: bonds this edit left without networks (dormant).
    """

    datacenter: DataCenter | None
    work: Work
    emptied_bonds: tuple[IscsiBond, ...] = ()


@dataclasses.dataclass(frozen=True)
class DataCenter:
    """A data center's networks, storage connections and iSCSI bonds, all rules kept.

    :ivar id: its id.
    :ivar name: its name.
    :ivar networks: its logical networks (ids and names unique).
    :ivar storage_connections: its storage connections (ids unique), iSCSI or not.
    :ivar iscsi_bonds: its bonds (ids and names unique).
    :raises BondRuleError: when the values break a rule, naming the bond,
        network or connection at fault.
    """

    id: str
    name: str
    networks: tuple[Network, ...] = ()
    storage_connections: tuple[StorageConnection, ...] = ()
    iscsi_bonds: tuple[IscsiBond, ...] = ()

    def __post_init__(self) -> None:
        checks.ident("data center", "id", self.id)
        checks.name(f"data center {self.id!r}", "name", self.name, checks.NETWORK_NAME_MAX)
        for field, cls in (
            ("networks", Network),
            ("storage_connections", StorageConnection),
            ("iscsi_bonds", IscsiBond),
        ):
            values = tuple(getattr(self, field))
            for value in values:
                if not isinstance(value, cls):
                    raise BondRuleError(str(self), f"{field} holds a {checks.kind(value)}")
            object.__setattr__(self, field, values)
        me = str(self)
        rules.unique(me, "network", self.networks, lambda n: n.id)
        rules.unique(me, "network name", self.networks, lambda n: n.name)
        rules.unique(me, "storage connection", self.storage_connections, lambda c: c.id)
        rules.unique(me, "iSCSI bond", self.iscsi_bonds, lambda b: b.id)
        rules.unique(me, "iSCSI bond name", self.iscsi_bonds, lambda b: b.name)
        for bond in self.iscsi_bonds:
            rules.members(me, self.networks, self.storage_connections, bond)

    def __str__(self) -> str:
        return f"data center {self.name!r} (id {self.id})"

    # --- lookups ---------------------------------------------------------------

    def bond(self, bond_id: str) -> IscsiBond:
        """The bond with this id.

        :raises BondNotFoundError: when there is none.
        """
        return self._find("iSCSI bond", self.iscsi_bonds, bond_id)

    def network(self, network_id: str) -> Network:
        """The network with this id.

        :raises BondNotFoundError: when there is none.
        """
        return self._find("network", self.networks, network_id)

    def storage_connection(self, connection_id: str) -> StorageConnection:
        """The storage connection with this id.

        :raises BondNotFoundError: when there is none.
        """
        return self._find("storage connection", self.storage_connections, connection_id)

    def bonds_covering(self, target: Target) -> tuple[IscsiBond, ...]:
        """The bonds one of whose connections is ``target``'s portal and IQN."""
        return tuple(b for b in self.iscsi_bonds if b.covers(target))

    def sessions(self, hosts: HostState) -> dict[str, frozenset[Session]]:
        """The sessions every host of ``hosts`` should have (see :mod:`.bond.work`)."""
        return {
            host: desired_sessions(self.storage_connections, self.iscsi_bonds, carried)
            for host, carried in hosts.networks.items()
        }

    def new_bond(
        self,
        bond_id: str,
        name: str,
        description: str = "",
        networks: Iterable[str] = (),
        storage_connections: Iterable[str] = (),
    ) -> IscsiBond:
        """Build a bond from ids, as a REST body names its networks and connections.

        The bond is not added: give it to :meth:`add_bond`.

        :raises BondNotFoundError: for an id the data center does not hold.
        :raises BondValueError: for a bad id, name or description.
        """
        return IscsiBond(
            bond_id,
            name,
            description,
            tuple(self.network(n) for n in networks),
            tuple(self.storage_connection(c) for c in storage_connections),
        )

    # --- edits of the data center -------------------------------------------------

    def add_network(self, network: Network) -> DataCenter:
        """Add a logical network. No session changes until a bond uses it.

        :raises BondRuleError: when its id or name is taken.
        """
        return dataclasses.replace(self, networks=(*self.networks, network))

    def remove_network(self, network_id: str, hosts: HostState = _NO_HOSTS) -> Edit:
        """Remove a network from the data center and from every bond holding it.

        :raises BondNotFoundError: when the network is not in the data center.
        """
        gone = self.network(network_id)
        bonds = tuple(
            dataclasses.replace(b, networks=tuple(n for n in b.networks if n.id != gone.id))
            for b in self.iscsi_bonds
        )
        emptied = tuple(
            new
            for old, new in zip(self.iscsi_bonds, bonds, strict=True)
            if new.dormant and not old.dormant
        )
        networks = tuple(n for n in self.networks if n.id != gone.id)
        after = dataclasses.replace(self, networks=networks, iscsi_bonds=bonds)
        return self._edit(after, hosts, emptied)

    def add_storage_connection(
        self, connection: StorageConnection, hosts: HostState = _NO_HOSTS
    ) -> Edit:
        """Add a storage connection; hosts reach an iSCSI one through ``default`` until a
        bond covers it.

        :raises BondRuleError: when its id is taken.
        """
        connections = (*self.storage_connections, connection)
        return self._edit(dataclasses.replace(self, storage_connections=connections), hosts)

    def remove_storage_connection(self, connection_id: str, hosts: HostState = _NO_HOSTS) -> Edit:
        """Remove a storage connection from the data center and from every bond.

        :raises BondNotFoundError: when it is not in the data center.
        """
        gone = self.storage_connection(connection_id)
        bonds = tuple(
            dataclasses.replace(
                b, storage_connections=tuple(c for c in b.storage_connections if c.id != gone.id)
            )
            for b in self.iscsi_bonds
        )
        connections = tuple(c for c in self.storage_connections if c.id != gone.id)
        after = dataclasses.replace(self, storage_connections=connections, iscsi_bonds=bonds)
        return self._edit(after, hosts)

    def remove(self, hosts: HostState = _NO_HOSTS) -> Edit:
        """Remove the data center and its bonds: every session it asked for is to go.

        :returns: an edit whose ``datacenter`` is None.
        """
        return Edit(None, work_between(self.sessions(hosts), {}, hosts.attached))

    # --- edits of the bonds -----------------------------------------------------

    def add_bond(self, bond: IscsiBond, hosts: HostState = _NO_HOSTS) -> Edit:
        """Add a bond: every host carrying its networks logs in to its targets through them.

        :raises BondRuleError: when it has no network, its id or name is taken, or
            a network or connection is not the data center's (or not allowed).
        """
        rules.has_networks(bond)
        rules.name_free(str(self), self.iscsi_bonds, bond)
        return self._edit(dataclasses.replace(self, iscsi_bonds=(*self.iscsi_bonds, bond)), hosts)

    def update_bond(
        self, bond_id: str, *, name: str | None = None, description: str | None = None
    ) -> DataCenter:
        """Change a bond's name or description (the REST PUT); no session changes.

        :raises BondNotFoundError: when the bond is not in the data center.
        :raises BondRuleError: when the new name is taken by another bond.
        """
        bond = self.bond(bond_id)
        changed = dataclasses.replace(
            bond,
            name=bond.name if name is None else name,
            description=bond.description if description is None else description,
        )
        rules.name_free(str(self), self.iscsi_bonds, changed)
        return self._with_bond(changed)

    def remove_bond(self, bond_id: str, hosts: HostState = _NO_HOSTS) -> Edit:
        """Remove a bond: its targets fall back to other bonds covering them, or ``default``.

        :raises BondNotFoundError: when the bond is not in the data center.
        """
        gone = self.bond(bond_id)
        bonds = tuple(b for b in self.iscsi_bonds if b.id != gone.id)
        return self._edit(dataclasses.replace(self, iscsi_bonds=bonds), hosts)

    def add_network_to_bond(
        self, bond_id: str, network_id: str, hosts: HostState = _NO_HOSTS
    ) -> Edit:
        """Add a network to a bond: hosts carrying it log in to the bond's targets through it.

        :raises BondNotFoundError: for an unknown bond or network.
        :raises BondRuleError: when the bond holds it already, or it is required.
        """
        bond, network = self.bond(bond_id), self.network(network_id)
        rules.can_add(bond, network)
        changed = dataclasses.replace(bond, networks=(*bond.networks, network))
        return self._edit(self._with_bond(changed), hosts)

    def remove_network_from_bond(
        self, bond_id: str, network_id: str, hosts: HostState = _NO_HOSTS
    ) -> Edit:
        """Take a network out of a bond: its sessions go once no volume needs them alone.

        :raises BondNotFoundError: for an unknown bond.
        :raises BondRuleError: when the bond does not hold it, or it is its last one.
        """
        bond = self.bond(bond_id)
        rules.can_remove_network(bond, network_id)
        kept = tuple(n for n in bond.networks if n.id != network_id)
        return self._edit(self._with_bond(dataclasses.replace(bond, networks=kept)), hosts)

    def add_connection_to_bond(
        self, bond_id: str, connection_id: str, hosts: HostState = _NO_HOSTS
    ) -> Edit:
        """Add a storage connection to a bond: hosts log in to it through the bond's networks.

        :raises BondNotFoundError: for an unknown bond or connection.
        :raises BondRuleError: when the bond holds it already, or it is not iSCSI.
        """
        bond, connection = self.bond(bond_id), self.storage_connection(connection_id)
        rules.can_add(bond, connection)
        changed = dataclasses.replace(
            bond, storage_connections=(*bond.storage_connections, connection)
        )
        return self._edit(self._with_bond(changed), hosts)

    def remove_connection_from_bond(
        self, bond_id: str, connection_id: str, hosts: HostState = _NO_HOSTS
    ) -> Edit:
        """Take a storage connection out of a bond; it falls back to other bonds or ``default``.

        :raises BondNotFoundError: for an unknown bond.
        :raises BondRuleError: when the bond does not hold it.
        """
        bond = self.bond(bond_id)
        rules.can_remove_connection(bond, connection_id)
        kept = tuple(c for c in bond.storage_connections if c.id != connection_id)
        changed = dataclasses.replace(bond, storage_connections=kept)
        return self._edit(self._with_bond(changed), hosts)

    # --- serialisation ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "networks", "storage_connections", "iscsi_bonds"}``.

        Networks and connections are written whole, once; each bond names its
        networks and connections by id (``{"id", "name", "description",
        "networks": [ids], "storage_connections": [ids]}``), so the two can never
        disagree.
        """
        return {
            "id": self.id,
            "name": self.name,
            "networks": [n.to_dict() for n in self.networks],
            "storage_connections": [c.to_dict() for c in self.storage_connections],
            "iscsi_bonds": [
                {
                    "id": b.id,
                    "name": b.name,
                    "description": b.description,
                    "networks": [n.id for n in b.networks],
                    "storage_connections": [c.id for c in b.storage_connections],
                }
                for b in self.iscsi_bonds
            ],
        }

    @classmethod
    def from_dict(cls, data: object) -> DataCenter:
        """Build from :meth:`to_dict`'s shape, checking every rule.

        :raises BondValueError: naming the key at fault.
        :raises BondRuleError: when the values break a rule of the data center.
        """
        d = checks.mapping("data_center", data, _DC_KEYS)
        empty = cls(
            d["id"],
            d["name"],
            tuple(
                Network.from_dict(n, where=f"data_center.networks[{i}]")
                for i, n in enumerate(checks.listing("data_center", "networks", d["networks"]))
            ),
            tuple(
                StorageConnection.from_dict(c, where=f"data_center.storage_connections[{i}]")
                for i, c in enumerate(
                    checks.listing("data_center", "storage_connections", d["storage_connections"])
                )
            ),
        )
        bonds = []
        for i, raw in enumerate(checks.listing("data_center", "iscsi_bonds", d["iscsi_bonds"])):
            where = f"data_center.iscsi_bonds[{i}]"
            ref = checks.mapping(where, raw, _BOND_REF_KEYS)
            networks = checks.listing(where, "networks", ref["networks"])
            connections = checks.listing(where, "storage_connections", ref["storage_connections"])
            bonds.append(
                empty.new_bond(
                    ref["id"],
                    ref["name"],
                    ref["description"],
                    (checks.ident(where, "networks", n) for n in networks),
                    (checks.ident(where, "storage_connections", c) for c in connections),
                )
            )
        return dataclasses.replace(empty, iscsi_bonds=tuple(bonds))

    # --- internals --------------------------------------------------------------

    def _find(self, kind: str, values: Sequence[_T], ident: str) -> _T:
        for value in values:
            if value.id == ident:
                return value
        raise BondNotFoundError(kind, str(ident)[:128], self.id)

    def _with_bond(self, bond: IscsiBond) -> DataCenter:
        bonds = tuple(bond if b.id == bond.id else b for b in self.iscsi_bonds)
        return dataclasses.replace(self, iscsi_bonds=bonds)

    def _edit(
        self, after: DataCenter, hosts: HostState, emptied: tuple[IscsiBond, ...] = ()
    ) -> Edit:
        work = work_between(self.sessions(hosts), after.sessions(hosts), hosts.attached)
        return Edit(after, work, emptied)
