"""The host plan of an attach, and the verdict on what came up.

:func:`plan` turns the bonds, this host's :class:`~.inventory.HostInventory`
and a volume's connection properties into the paths to log in: every
(target, iface) pair, one iface per netdev that carries a network of a bond
covering the target (:func:`~.work.bond_ifaces`, the rule the data center's
work uses too); a target in no bond, or whose bonds' networks this host carries
none of, goes through ``default`` (the oVirt feature's fallback).

:func:`verdict` judges the per-path results of the attach: when the host
carries a bond's networks but no path through them came up, the host is
non-operational (:class:`~multipath_brick.exception.HostNonOperationalError`):
a bonded target must not silently fall back to the management network. When
only some paths failed, the attach stands, degraded, and the failed paths say
which (portal, iface) failed and why.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from multipath_brick.bond import iface
from multipath_brick.bond.inventory import HostInventory, check_netdevs
from multipath_brick.bond.model import IscsiBond
from multipath_brick.bond.subnets import check_same_subnet
from multipath_brick.bond.work import bond_ifaces
from multipath_brick.exception import HostNonOperationalError
from multipath_brick.host.base import Host
from multipath_brick.iscsi.paths import Path, PathResult, PathState
from multipath_brick.iscsi.properties import ConnectionProperties, Target


@dataclasses.dataclass(frozen=True)
class BondRoute:
    """The paths one bond routes on this host.

    :ivar bond: the bond's name.
    :ivar networks: its networks this host carries, sorted.
    :ivar paths: the paths through their ifaces, to the targets the bond covers.
    """

    bond: str
    networks: tuple[str, ...]
    paths: tuple[Path, ...]


@dataclasses.dataclass(frozen=True)
class HostPlan:
    """The paths of one attach on this host.

    :ivar paths: every (target, iface) pair: targets in the order of the
        connection properties, ifaces sorted within a target.
    :ivar routes: one entry per bond that routes some of them.
    :ivar netdevs: bond network -> netdev, for the networks the routes use.
    """

    paths: tuple[Path, ...]
    routes: tuple[BondRoute, ...] = ()
    netdevs: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "netdevs", MappingProxyType(dict(self.netdevs)))

    @property
    def ifaces(self) -> tuple[str, ...]:
        """The ifaces of ours the paths use (``default`` excluded), sorted."""
        return tuple(sorted({p.iface for p in self.paths} - {iface.DEFAULT_IFACE}))


def plan(
    bonds: Iterable[IscsiBond], inventory: HostInventory, properties: ConnectionProperties
) -> HostPlan:
    """The paths to log in for ``properties`` on a host with ``inventory``.

    Pure: checking the netdevs against the host is
    :func:`~multipath_brick.bond.inventory.check_netdevs`'s job (with
    :attr:`HostPlan.netdevs`).

    :param bonds: the data center's bonds (a dormant bond routes nothing).
    :param inventory: this host's networks.
    :param properties: the volume's connection properties.
    """
    bonds = tuple(bonds)
    carried = inventory.carried(bonds)
    paths: list[Path] = []
    for target in properties.targets:
        routes = bond_ifaces(bonds, carried, functools.partial(_covers, target))
        paths.extend(Path(target, name) for name in (sorted(routes) or [iface.DEFAULT_IFACE]))
    routes_out = []
    used: dict[str, str] = {}
    for bond in bonds:
        networks = tuple(sorted(n.name for n in bond.networks if n.name in carried))
        mine = {iface.iface_for(carried[n]) for n in networks}
        routed = tuple(p for p in paths if p.iface in mine and bond.covers(p.target))
        if routed:
            routes_out.append(BondRoute(bond.name, networks, routed))
            used.update((n, carried[n]) for n in networks)
    return HostPlan(tuple(paths), tuple(routes_out), used)


def _covers(target: Target, bond: IscsiBond) -> bool:
    return bond.covers(target)


def check_on_host(host: Host, host_plan: HostPlan) -> None:
    """Check that ``host`` can carry the plan's bond paths, before anything is changed.

    Every netdev the plan uses exists and is up
    (:func:`~multipath_brick.bond.inventory.check_netdevs`), and netdevs sharing
    a subnet have the ARP and rp_filter sysctls
    (:func:`~multipath_brick.bond.subnets.check_same_subnet`).

    :raises NetdevError: naming the network and its netdev.
    :raises SameSubnetError: naming the subnet, its netdevs and the sysctl lines.
    """
    check_netdevs(host, host_plan.netdevs)
    check_same_subnet(host, host_plan.netdevs.values())


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The attach stands; ``failed`` lists the paths that did not come up.

    :ivar failed: the failed paths' results, in the order given.
    """

    failed: tuple[PathResult, ...] = ()

    @property
    def degraded(self) -> bool:
        """True when some path failed (the volume works on the others)."""
        return bool(self.failed)


def verdict(host_plan: HostPlan, results: Sequence[PathResult]) -> Verdict:
    """Judge an attach's per-path results against its plan.

    A bond's path counts as up when it is active, or still pending (logging
    in in the background: it may yet arrive).

    :param host_plan: the plan the attach followed.
    :param results: one result per path (as ``device_info["paths"]`` has them).
    :returns: the verdict: degraded when some path failed.
    :raises HostNonOperationalError: when the host carries a bond's networks and
        none of that bond's paths came up; names those networks and each path's
        reason.
    """
    by_path = {r.path: r for r in results}
    networks: set[str] = set()
    failures: list[tuple[str, str]] = []
    for route in host_plan.routes:
        outcomes = [by_path.get(p) for p in route.paths]
        if any(r is not None and r.state != PathState.FAILED for r in outcomes):
            continue
        networks.update(route.networks)
        for path, result in zip(route.paths, outcomes, strict=True):
            reason = "not attempted" if result is None else result.reason or "failed"
            failures.append((str(path), reason))
    if networks:
        raise HostNonOperationalError(sorted(networks), sorted(set(failures)))
    return Verdict(tuple(r for r in results if r.state == PathState.FAILED))
