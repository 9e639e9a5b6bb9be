"""The connector's side of the bond: plan, check, ifaces, logins, verdict.

:class:`BondRouting` is what an
:class:`~multipath_brick.ISCSIMultipathConnector` made with ``bonds=`` holds.
An attach through it:

1. plans the paths (:func:`~.plan.plan`): every (target, iface) pair, one
   ``mpb-<netdev>`` iface per netdev carrying a bond network that covers the
   target, ``default`` for a target no bond network of this host reaches;
2. checks the host before changing anything (:func:`~.plan.check_on_host`):
   every netdev exists and is up, netdevs sharing a subnet have the sysctls;
3. makes the plan's ifaces exist, bound to their netdevs
   (:func:`~.ifaces.reconcile`; never a collection: removing an iface while
   another volume's attach logs in through it would break that login);
4. logs in to every pair at once, exactly as without a bond, every node
   record filed under a portal group tag (two ifaces to one portal need two
   records: :meth:`~multipath_brick.iscsi.login.PathBringUp.tpgt`);
5. judges the outcome (:func:`~.plan.verdict`): the host carries a bond's
   networks but none of that bond's paths came up ->
   :class:`~multipath_brick.exception.HostNonOperationalError`, after the
   volume is detached again (nothing left behind, as after an
   :class:`~multipath_brick.exception.AttachError`); some paths failed -> the
   attach stands, degraded, and ``device_info["paths"]`` says which
   (portal, iface) failed and why.

The ifaces stay between attaches: they are the host's configuration for its
bonds, like its netdevs. :meth:`BondRouting.collect` removes the ones the
bonds no longer need, once no session uses them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence

from multipath_brick.attach import Attachment
from multipath_brick.bond.ifaces import IfaceChanges, needed_ifaces, reconcile
from multipath_brick.bond.inventory import HostInventory
from multipath_brick.bond.model import IscsiBond
from multipath_brick.bond.plan import HostPlan, Verdict, check_on_host, plan, verdict
from multipath_brick.detach import Detacher
from multipath_brick.exception import (
    AuthenticationError,
    HostNonOperationalError,
    InvalidSettings,
    NoUsablePathError,
)
from multipath_brick.host.base import Host
from multipath_brick.iscsi.paths import Path
from multipath_brick.iscsi.properties import ConnectionProperties, Target

LOG = logging.getLogger(__name__)

#: Undo of a volume whose attach the verdict refused: (attachment) -> None.
Undo = Callable[[Attachment], None]


def bond_routing(
    host: Host,
    bonds: Iterable[IscsiBond] | None,
    inventory: HostInventory | None,
    ifaces: Iterable[str] | None,
    *,
    command_timeout: float,
) -> BondRouting | None:
    """Check a connector's bond arguments; the routing, or None without ``bonds``.

    :raises InvalidSettings: naming ``bonds`` or ``inventory`` when they are
        given wrong: ``bonds`` with ``ifaces`` (the bond chooses the ifaces), a
        bond that is not an :class:`~.model.IscsiBond`, an ``inventory`` that
        is not a :class:`~.inventory.HostInventory`, or one without ``bonds``.
    """
    if bonds is None:
        if inventory is not None:
            raise InvalidSettings("inventory", "only means something with bonds=")
        return None
    if ifaces is not None:
        raise InvalidSettings(
            "bonds", "give either ifaces= or bonds=, not both: the bonds choose the ifaces"
        )
    if isinstance(bonds, (str, bytes, IscsiBond)):
        raise InvalidSettings("bonds", f"expected a list of IscsiBond, got {type(bonds).__name__}")
    listed = tuple(bonds)
    for bond in listed:
        if not isinstance(bond, IscsiBond):
            raise InvalidSettings("bonds", f"expected IscsiBond values, got {type(bond).__name__}")
    if not isinstance(inventory, HostInventory):
        raise InvalidSettings(
            "inventory",
            "bonds= needs this host's HostInventory (network -> netdev); "
            "HostInventory() for a host that carries none of the bonds' networks",
        )
    return BondRouting(host, listed, inventory, command_timeout)


@dataclasses.dataclass(frozen=True)
class BondRouting:
    """The bonds of a connector and this host's networks.

    :ivar host: the host.
    :ivar bonds: the data center's bonds (those covering no target of a
        volume change nothing for it).
    :ivar inventory: this host's networks: network -> netdev.
    :ivar command_timeout: seconds each iscsiadm call may take.
    """

    host: Host
    bonds: tuple[IscsiBond, ...]
    inventory: HostInventory
    command_timeout: float = 30.0

    def plan(self, props: ConnectionProperties, targets: tuple[Target, ...]) -> HostPlan:
        """The paths of one volume: ``targets`` (the properties' own, or what
        discovery found) through the bonds' ifaces."""
        return plan(self.bonds, self.inventory, dataclasses.replace(props, targets=targets))

    @property
    def needed(self) -> tuple[str, ...]:
        """The ifaces this host's bond networks need, sorted."""
        return needed_ifaces(self.inventory.carried(self.bonds))

    def prepare(self, host_plan: HostPlan) -> IfaceChanges:
        """Check the host, then make the plan's ifaces; nothing is changed on a refusal.

        :raises NetdevError: a netdev is missing or down.
        :raises SameSubnetError: netdevs share a subnet without the sysctls.
        :raises IfaceConflictError: an iface of our name is bound to another netdev.
        """
        check_on_host(self.host, host_plan)
        changes = reconcile(self.host, host_plan.ifaces, timeout=self.command_timeout)
        if changes.created or changes.updated:
            LOG.info(
                "ifaces created %s, rebound %s",
                ", ".join(changes.created) or "none",
                ", ".join(changes.updated) or "none",
            )
        return changes

    def attach(
        self, host_plan: HostPlan, attach: Callable[[], Attachment], undo: Undo
    ) -> tuple[Attachment, Verdict]:
        """Run ``attach`` (the plan's logins) and judge it.

        :param attach: attaches through ``host_plan.paths``.
        :param undo: detaches the volume again (the verdict refused it).
        :raises HostNonOperationalError: the host carries a bond's networks and
            none of its paths came up; nothing of the attach is left.
        """
        try:
            attachment = attach()
        except AuthenticationError:
            raise  # the target refused our credentials: no network is at fault
        except NoUsablePathError as error:
            if host_plan.routes:
                raise _non_operational(host_plan, error.failures) from error
            raise
        try:
            judged = verdict(host_plan, attachment.paths)
        except HostNonOperationalError:
            LOG.warning("no path through a bond came up; detaching %s", attachment.device)
            undo(attachment)
            raise
        if judged.degraded:
            LOG.warning(
                "attached %s degraded: %s",
                attachment.device,
                "; ".join(f"{r.path}: {r.reason}" for r in judged.failed),
            )
        return attachment, judged

    def connect(
        self,
        props: ConnectionProperties,
        targets: tuple[Target, ...],
        attach: Callable[[Sequence[Path], ConnectionProperties], Attachment],
        detacher: Detacher,
    ) -> Attachment:
        """The connector's attach through the bonds: plan, prepare, attach, verdict.

        :param targets: the volume's targets (the properties', or discovery's).
        :param attach: the connector's attach through given paths.
        :param detacher: the connector's detach, for an attach the verdict refuses.
        :raises HostNonOperationalError: no path through a bond came up; nothing
            of the attach is left.
        """
        host_plan = self.plan(props, targets)
        self.prepare(host_plan)

        def undo(done: Attachment) -> None:
            paths = [r.path for r in done.paths]
            detacher.detach(paths, done.wwid, force=True, ignore_errors=True)

        attachment, _ = self.attach(host_plan, lambda: attach(host_plan.paths, props), undo)
        return attachment

    def collect(self, needed: Iterable[str] | None = None) -> IfaceChanges:
        """Remove the ifaces of ours no bond needs, once no session uses them.

        :param needed: the ifaces to keep; default :attr:`needed` (what this
            host's bond networks need). ``()`` removes every unused iface of ours.
        """
        keep = self.needed if needed is None else tuple(needed)
        return reconcile(self.host, keep, collect=True, timeout=self.command_timeout)


def collect(
    host: Host, routing: BondRouting | None, needed: Iterable[str] | None, timeout: float
) -> IfaceChanges:
    """Remove the ``mpb-<netdev>`` ifaces not ``needed``, once no session uses them.

    Never part of an attach or a detach: an iface removed while another
    volume's attach logs in through it would fail that login (``iscsiadm -m
    iface -o delete`` takes the node records bound to it). Call it after the
    bonds changed (:func:`multipath_brick.bond.edits.apply_work` does), or
    when the host leaves the bonds' data center (``needed=()``).

    :param routing: the connector's bonds; None without ``bonds=``.
    :param needed: the ifaces to keep; default: those this host's bond
        networks need (none without bonds). ``()`` keeps none.
    :returns: what was removed, and what was kept because sessions use it.
    """
    if routing is not None:
        return routing.collect(needed)
    return reconcile(host, needed or (), collect=True, timeout=timeout)


def _non_operational(
    host_plan: HostPlan, failures: Iterable[tuple[str, str]]
) -> HostNonOperationalError:
    networks = sorted({n for route in host_plan.routes for n in route.networks})
    routed = {str(p) for route in host_plan.routes for p in route.paths}
    return HostNonOperationalError(networks, sorted(f for f in failures if f[0] in routed))
