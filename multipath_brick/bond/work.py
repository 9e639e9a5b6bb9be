"""Which sessions each host should have, and the work an edit of the bonds asks for.

The state a data center asks of a host is a set of :class:`Session` values, one
per (portal, target, iface), computed from the host's networks (an input:
logical network name -> the netdev that carries it on that host, as the
engine knows it) by the oVirt feature's rules:

* a storage connection covered by one or more bonds is reached through the
  iface of every netdev that carries one of those bonds' networks;
* a connection whose bonds' networks the host carries none of, or that is in no
  bond, is reached through ``default`` (the host's routing table).

An edit (a network or connection added to a bond or removed, a bond added or
removed...) changes that set; the difference is the work: sessions to log in
now (a network added to a bond: every host that carries it logs in to every
target of the bond through it), and sessions to log out. A session may be logged
out only when no attached volume depends on it alone: a volume whose every path
would go keeps the sessions it uses *held* until its map has another path (the
new logins joined it) or it is detached. :func:`split_logouts` decides that, and
may be called again with the volumes' current paths.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Set
from types import MappingProxyType
from typing import Any

from multipath_brick.bond import checks, iface
from multipath_brick.bond.model import IscsiBond, StorageConnection, parse_target
from multipath_brick.exception import BondValueError
from multipath_brick.iscsi.paths import Path

#: host -> logical network name -> netdev carrying it on that host.
HostNetworks = Mapping[str, Mapping[str, str]]
#: host -> attached volume id -> the volume's paths (as in ``device_info["paths"]``).
AttachedPaths = Mapping[str, Mapping[str, Iterable[Path]]]


@dataclasses.dataclass(frozen=True)
class HostState:
    """The host side of an edit: which netdevs carry which networks, what is attached.

    Both are inputs (the engine knows them; a host agent reads them), checked
    once here.

    :ivar networks: host -> logical network name -> netdev carrying it there.
        Networks no bond uses (the management network) may be listed.
    :ivar attached: host -> attached volume id -> its paths (rebuild them from
        ``device_info["paths"]`` with :func:`multipath_brick.iscsi.paths.path_from_dict`).
    :raises BondValueError: naming the host, network or volume at fault.
    """

    networks: HostNetworks = dataclasses.field(default_factory=dict)
    attached: AttachedPaths = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "networks", MappingProxyType(check_hosts(self.networks)))
        object.__setattr__(self, "attached", MappingProxyType(check_attached(self.attached)))


@dataclasses.dataclass(frozen=True, order=True)
class Session:
    """One iSCSI session a host should have: a portal and target through one iface.

    :ivar portal: ``host:port``, as :class:`~multipath_brick.Target` writes it.
    :ivar iqn: the target name.
    :ivar iface: ``mpb-<netdev>`` for a bond path, ``default`` otherwise.
    """

    portal: str
    iqn: str
    iface: str

    def __post_init__(self) -> None:
        subject = f"session {str(self.portal)[:80]} {str(self.iqn)[:80]}"
        object.__setattr__(self, "portal", parse_target(subject, self.portal, self.iqn).portal)
        if self.iface != iface.DEFAULT_IFACE and not (
            isinstance(self.iface, str) and iface.is_ours(self.iface)
        ):
            raise BondValueError(
                subject, "iface", f"{str(self.iface)[:40]!r} is neither 'default' nor mpb-<netdev>"
            )

    @property
    def netdev(self) -> str | None:
        """The netdev the session leaves by; None for ``default`` (the routing table's)."""
        return iface.netdev_of(self.iface)

    def carries(self, path: Path) -> bool:
        """True when ``path`` (one LUN of a volume) runs over this session."""
        target = path.target
        return (target.portal, target.iqn, path.iface) == (self.portal, self.iqn, self.iface)

    def __str__(self) -> str:
        return f"{self.portal} {self.iqn} via {self.iface}"

    def to_dict(self) -> dict[str, Any]:
        """``{"portal", "iqn", "iface", "netdev"}``; ``netdev`` is null for ``default``."""
        return {"portal": self.portal, "iqn": self.iqn, "iface": self.iface, "netdev": self.netdev}

    @classmethod
    def from_dict(cls, data: object, *, where: str = "session") -> Session:
        """Build from :meth:`to_dict`'s shape; ``netdev`` must agree with ``iface``."""
        d = checks.mapping(where, data, ("portal", "iqn", "iface", "netdev"))
        session = cls(d["portal"], d["iqn"], d["iface"])
        if d["netdev"] != session.netdev:
            raise BondValueError(where, "netdev", f"does not match iface {session.iface!r}")
        return session


@dataclasses.dataclass(frozen=True)
class HeldLogout:
    """A session that is to go, kept while attached volumes have no other path.

    :ivar session: the session.
    :ivar volumes: the attached volumes whose every path runs over sessions that are to go.
    """

    session: Session
    volumes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class HostWork:
    """What one host must do after an edit.

    :ivar host: the host.
    :ivar logins: sessions to log in, sorted.
    :ivar logouts: sessions to log out now: no attached volume depends on them alone.
    :ivar held: sessions to log out once the volumes named have another path.
    """

    host: str
    logins: tuple[Session, ...] = ()
    logouts: tuple[Session, ...] = ()
    held: tuple[HeldLogout, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"logins": [...], "logouts": [...], "held": [...]}``, sessions as
        :meth:`Session.to_dict`, each held entry with a ``volumes`` list added."""
        return {
            "logins": [s.to_dict() for s in self.logins],
            "logouts": [s.to_dict() for s in self.logouts],
            "held": [{**h.session.to_dict(), "volumes": list(h.volumes)} for h in self.held],
        }


@dataclasses.dataclass(frozen=True)
class Work:
    """The work of one edit, for every host that has some (hosts sorted by name).

    :ivar hosts: one entry per host with something to do.
    """

    hosts: tuple[HostWork, ...] = ()

    @property
    def empty(self) -> bool:
        """True when no host has anything to do."""
        return not self.hosts

    def for_host(self, host: str) -> HostWork:
        """The work of ``host``; empty when it has none."""
        for item in self.hosts:
            if item.host == host:
                return item
        return HostWork(host)

    def to_dict(self) -> dict[str, Any]:
        """``{"hosts": {host: HostWork.to_dict()}}``, hosts in name order."""
        return {"hosts": {h.host: h.to_dict() for h in self.hosts}}

    @classmethod
    def from_dict(cls, data: object) -> Work:
        """Build from :meth:`to_dict`'s shape.

        :raises BondValueError: naming the key at fault.
        """
        hosts = checks.mapping("work", data, ("hosts",))["hosts"]
        if not isinstance(hosts, Mapping):
            raise BondValueError("work", "hosts", f"expected an object, got {checks.kind(hosts)}")
        items = []
        for name, entry in hosts.items():
            host = checks.host(name)
            where = f"work.hosts[{host!r}]"
            d = checks.mapping(where, entry, ("logins", "logouts", "held"))
            lists = {k: checks.listing(where, k, d[k]) for k in ("logins", "logouts", "held")}
            held = []
            for i, raw in enumerate(lists["held"]):
                at = f"{where}.held[{i}]"
                fields = checks.mapping(at, raw, ("portal", "iqn", "iface", "netdev", "volumes"))
                volumes = checks.listing(at, "volumes", fields["volumes"])
                session = Session.from_dict({k: fields[k] for k in _SESSION_KEYS}, where=at)
                ids = tuple(checks.ident(at, "volumes", v) for v in volumes)
                held.append(HeldLogout(session, ids))
            items.append(
                HostWork(
                    host,
                    _sessions(f"{where}.logins", lists["logins"]),
                    _sessions(f"{where}.logouts", lists["logouts"]),
                    tuple(held),
                )
            )
        return cls(tuple(sorted(items, key=lambda h: h.host)))


_SESSION_KEYS = ("portal", "iqn", "iface", "netdev")


def _sessions(where: str, values: Iterable[object]) -> tuple[Session, ...]:
    return tuple(Session.from_dict(v, where=f"{where}[{i}]") for i, v in enumerate(values))


def check_hosts(hosts: object) -> dict[str, dict[str, str]]:
    """Check the host side input: host -> logical network name -> netdev.

    Networks a host carries that no bond uses are fine (the management network).

    :raises BondValueError: naming the host and network of a bad entry.
    """
    if not isinstance(hosts, Mapping):
        raise BondValueError("hosts", "(value)", f"expected a mapping, got {checks.kind(hosts)}")
    out: dict[str, dict[str, str]] = {}
    for name, networks in hosts.items():
        host = checks.host(name)
        out[host] = check_networks(f"host {host!r}", networks)
    return out


def check_networks(subject: str, networks: object) -> dict[str, str]:
    """Check one host's networks: logical network name -> the netdev carrying it.

    :param subject: the host, for the error (e.g. ``host 'h1'``).
    :raises BondValueError: naming the network of a bad entry.
    """
    if not isinstance(networks, Mapping):
        raise BondValueError(
            subject, "networks", f"expected a mapping, got {checks.kind(networks)}"
        )
    out: dict[str, str] = {}
    for network, netdev in networks.items():
        where = f"{subject} network {str(network)[:60]!r}"
        checks.name(where, "network", network, checks.NETWORK_NAME_MAX)
        out[network] = iface.check_netdev(where, netdev)
    return out


def check_attached(attached: object) -> dict[str, dict[str, tuple[Path, ...]]]:
    """Check the attached volumes' paths: host -> volume id -> paths.

    :raises BondValueError: naming the host and volume of a bad entry.
    """
    if not isinstance(attached, Mapping):
        raise BondValueError(
            "attached", "(value)", f"expected a mapping, got {checks.kind(attached)}"
        )
    out: dict[str, dict[str, tuple[Path, ...]]] = {}
    for name, volumes in attached.items():
        host = checks.host(name)
        if not isinstance(volumes, Mapping):
            raise BondValueError(
                f"host {host!r}", "volumes", f"expected a mapping, got {checks.kind(volumes)}"
            )
        out[host] = {}
        for volume, paths in volumes.items():
            subject = f"host {host!r} volume {str(volume)[:60]!r}"
            checks.ident(subject, "volume", volume)
            if isinstance(paths, (str, bytes, Mapping)) or not isinstance(paths, Iterable):
                raise BondValueError(subject, "paths", f"expected paths, got {checks.kind(paths)}")
            listed = tuple(paths)
            if not all(isinstance(p, Path) for p in listed):
                raise BondValueError(subject, "paths", "expected multipath_brick Path values")
            out[host][volume] = listed
    return out


def desired_sessions(
    connections: Iterable[StorageConnection],
    bonds: Iterable[IscsiBond],
    carried: Mapping[str, str],
) -> frozenset[Session]:
    """The sessions one host should have, by the oVirt feature's rules (see the module).

    :param connections: the data center's storage connections (others than
        iSCSI are skipped).
    :param bonds: the data center's bonds.
    :param carried: the host's networks: logical network name -> netdev.
    """
    bonds = tuple(bonds)
    sessions: set[Session] = set()
    for connection in connections:
        if not connection.is_iscsi or connection.portal is None or connection.iqn is None:
            continue
        routes = bond_ifaces(bonds, carried, functools.partial(_holds, connection.id))
        ifaces = set(routes) or {iface.DEFAULT_IFACE}
        sessions.update(Session(connection.portal, connection.iqn, i) for i in ifaces)
    return frozenset(sessions)


def _holds(connection_id: str, bond: IscsiBond) -> bool:
    return any(c.id == connection_id for c in bond.storage_connections)


def bond_ifaces(
    bonds: Iterable[IscsiBond], carried: Mapping[str, str], covers: Callable[[IscsiBond], bool]
) -> dict[str, tuple[str, ...]]:
    """The ifaces through which a host reaches one target, by the oVirt feature's rule.

    One iface per netdev that carries a network of a bond covering the target;
    none when no such bond or network (the caller then uses ``default``).

    :param bonds: the bonds.
    :param carried: the host's networks: logical network name -> netdev.
    :param covers: whether a bond covers the target.
    :returns: iface (``mpb-<netdev>``) -> the bond networks it carries, sorted.
    """
    routes: dict[str, set[str]] = {}
    for bond in bonds:
        if not covers(bond):
            continue
        for network in bond.networks:
            if network.name in carried:
                routes.setdefault(iface.iface_for(carried[network.name]), set()).add(network.name)
    return {name: tuple(sorted(networks)) for name, networks in sorted(routes.items())}


def split_logouts(
    leaving: Set[Session], volumes: Mapping[str, Iterable[Path]]
) -> tuple[tuple[Session, ...], tuple[HeldLogout, ...]]:
    """Split sessions that are to go into those that may go now and those held.

    A volume depends on the leaving sessions alone when every one of its paths
    runs over one of them: then the sessions it uses are held (a multipath map
    with no path left would queue or fail I/O). A volume that keeps one path
    over a session that stays holds nothing.

    :param leaving: sessions of one host that no bond asks for any more.
    :param volumes: that host's attached volumes: id -> current paths.
    :returns: (sessions to log out now, held sessions with their volumes), both sorted.
    """
    holders: dict[Session, list[str]] = {}
    for volume, paths in volumes.items():
        paths = tuple(paths)
        used = {s for s in leaving if any(s.carries(p) for p in paths)}
        keeps_one = any(not any(s.carries(p) for s in leaving) for p in paths)
        if used and not keeps_one:
            for session in used:
                holders.setdefault(session, []).append(volume)
    now = tuple(sorted(s for s in leaving if s not in holders))
    held = tuple(HeldLogout(s, tuple(sorted(holders[s]))) for s in sorted(holders))
    return now, held


def work_between(
    before: Mapping[str, frozenset[Session]],
    after: Mapping[str, frozenset[Session]],
    attached: AttachedPaths,
) -> Work:
    """The work that takes every host from ``before`` to ``after``.

    :param before: host -> the sessions it should have had.
    :param after: host -> the sessions it should have now (a host missing here
        should have none).
    :param attached: host -> attached volume id -> paths (checked with
        :func:`check_attached`).
    """
    volumes = check_attached(attached)
    items = []
    for host in sorted(set(before) | set(after)):
        old, new = before.get(host, frozenset()), after.get(host, frozenset())
        now, held = split_logouts(old - new, volumes.get(host, {}))
        item = HostWork(host, tuple(sorted(new - old)), now, held)
        if item.logins or item.logouts or item.held:
            items.append(item)
    return Work(tuple(items))
