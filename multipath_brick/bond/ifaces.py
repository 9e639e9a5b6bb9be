"""The iscsiadm ifaces of a host, reconciled with what the bonds need.

:func:`reconcile` makes the ifaces a plan needs exist, bound to their netdevs
(``mpb-<netdev>`` -> ``iface.net_ifacename = <netdev>``, transport ``tcp``),
idempotently: an iface already right is left alone. An iface of our name bound
to *another* netdev is refused (:class:`~multipath_brick.exception.IfaceConflictError`),
never rebound: its sessions, and whoever set it so, would silently change path.

With ``collect=True`` it also removes the ifaces of ours that no bond needs any
more, once no session uses them: the garbage collection vdsm never did (its
ifaces pile up). Ifaces that do not follow our scheme (``default``, ``iser``,
another program's) are never touched; the privileged verbs could not anyway.
A stale iface still in use is kept and reported, to be collected by a later
call once its sessions are logged out.

Callers serialise it with attaches on the host (the connector's lock): a login
through an iface that is being collected would fail.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from multipath_brick.bond import iface
from multipath_brick.exception import BondValueError, IfaceConflictError
from multipath_brick.host.base import Host
from multipath_brick.iscsi.ifaces import IfaceRecord, Ifaces
from multipath_brick.scsi.sysfs import Sysfs

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IfaceChanges:
    """What :func:`reconcile` did, each tuple sorted.

    :ivar created: ifaces made.
    :ivar updated: ifaces of ours whose settings were written (incomplete ones).
    :ivar removed: stale ifaces of ours deleted.
    :ivar in_use: stale ifaces of ours kept because a session uses them.
    """

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    in_use: tuple[str, ...] = ()


def reconcile(
    host: Host,
    needed: Iterable[str],
    *,
    initiatorname: str | None = None,
    collect: bool = False,
    timeout: float = 30.0,
) -> IfaceChanges:
    """Create and bind the ifaces ``needed``; with ``collect``, remove stale ones of ours.

    :param host: the host.
    :param needed: iface names; ``default`` is skipped, every other must be
        ``mpb-<netdev>``. For a collection, every iface the host's bonds need
        (not only one attach's).
    :param initiatorname: an initiator name for our ifaces to log in as; None
        keeps the host's own (``/etc/iscsi/initiatorname.iscsi``).
    :param collect: remove the ifaces of ours not in ``needed`` that no
        session uses.
    :param timeout: seconds each iscsiadm call may take.
    :returns: what was done.
    :raises BondValueError: for a name that is neither ``default`` nor ours.
    :raises IfaceConflictError: for an iface of our name bound to another netdev.
    :raises CommandError: when iscsiadm fails.
    """
    wanted = sorted({name for name in needed if name != iface.DEFAULT_IFACE})
    for name in wanted:
        if not iface.is_ours(name):
            raise BondValueError(
                "iface", "name", f"{name[:40]!r} is neither 'default' nor mpb-<netdev>"
            )
    tool = Ifaces(host, timeout=timeout)
    present = {record.name: record for record in tool.list()}
    # Every conflict is found before anything changes: a refusal leaves the host as it was.
    for name in wanted:
        record = present.get(name)
        if record is not None and record.netdev and record.netdev != iface.netdev_of(name):
            raise IfaceConflictError(name, str(iface.netdev_of(name)), record.netdev)
    created, updated = [], []
    for name in wanted:
        record = present.get(name)
        if record is None:
            tool.create(name)
            created.append(name)
            record = IfaceRecord(name, "tcp")
        if _bind(tool, record, initiatorname) and name not in created:
            updated.append(name)
    removed, in_use = [], []
    if collect:
        stale = sorted(n for n in present if iface.is_ours(n) and n not in wanted)
        used = {session.iface for session in Sysfs(host).sessions()} if stale else set()
        for name in stale:
            if name in used:
                in_use.append(name)
            elif tool.delete(name):
                removed.append(name)
        if in_use:
            LOG.info("stale ifaces kept while sessions use them: %s", ", ".join(in_use))
    return IfaceChanges(tuple(created), tuple(updated), tuple(removed), tuple(in_use))


def _bind(tool: Ifaces, record: IfaceRecord, initiatorname: str | None) -> bool:
    """Write the settings of one iface of ours that differ; True when some did."""
    wants = [
        ("iface.net_ifacename", str(iface.netdev_of(record.name)), record.netdev),
        ("iface.transport_name", "tcp", record.transport),
    ]
    if initiatorname is not None:
        wants.append(("iface.initiatorname", initiatorname, record.initiatorname))
    changed = False
    for setting, value, current in wants:
        if value != current:
            tool.update(record.name, setting, value)
            changed = True
    return changed


def needed_ifaces(carried: dict[str, str]) -> tuple[str, ...]:
    """The ifaces a host's bond networks need: one per netdev, sorted.

    :param carried: the bond networks this host carries: network -> netdev
        (:meth:`~multipath_brick.bond.inventory.HostInventory.carried`).
    """
    return tuple(sorted({iface.iface_for(dev) for dev in carried.values()}))
