"""The iSCSI bond: host networks mapped to iscsiadm ifaces.

The pure model (no I/O), usable by an engine-side manager as by a host agent:

* :mod:`.model`: :class:`Network`, :class:`StorageConnection`, :class:`IscsiBond`;
* :mod:`.datacenter`: :class:`DataCenter`, the registry that keeps the rules of
  :mod:`.rules`, and the :class:`Edit` every change returns;
* :mod:`.work`: the sessions a host should have, and the :class:`Work` of an edit
  for the :class:`HostState` given (host -> network -> netdev, attached volumes);
* :mod:`.iface`: the iface naming scheme (``mpb-<netdev>``, ``default``);
* :mod:`.rest`: the oVirt REST bodies, read with a parser that refuses DTDs.

The host side, through the :class:`~multipath_brick.host.base.Host` door:

* :mod:`.inventory`: :class:`HostInventory` (network -> netdev on this host),
  checked against the host's netdevs;
* :mod:`.plan`: :func:`plan` of an attach's (target, iface) pairs,
  :func:`check_on_host`, and the :func:`verdict` on the per-path results;
* :mod:`.ifaces`: :func:`reconcile` of the host's iscsiadm ifaces, with the
  garbage collection of ours;
* :mod:`.subnets`: several bond netdevs on one subnet, refused with the sysctls;
* :mod:`.connect`: what ``ISCSIMultipathConnector(bonds=..., inventory=...)``
  does with them on every attach;
* :mod:`.edits`: a bond edit applied to the volumes attached on this host
  (``ISCSIMultipathConnector.apply_bond_work``).
"""

from __future__ import annotations

from multipath_brick.bond.datacenter import DataCenter, Edit
from multipath_brick.bond.iface import DEFAULT_IFACE, IFACE_PREFIX, iface_for, is_ours, netdev_of
from multipath_brick.bond.ifaces import IfaceChanges, needed_ifaces, reconcile
from multipath_brick.bond.inventory import HostInventory
from multipath_brick.bond.model import IscsiBond, Network, StorageConnection
from multipath_brick.bond.plan import BondRoute, HostPlan, Verdict, check_on_host, plan, verdict
from multipath_brick.bond.work import HeldLogout, HostState, HostWork, Session, Work

__all__ = [
    "DEFAULT_IFACE",
    "IFACE_PREFIX",
    "BondRoute",
    "DataCenter",
    "Edit",
    "HeldLogout",
    "HostInventory",
    "HostPlan",
    "HostState",
    "HostWork",
    "IfaceChanges",
    "IscsiBond",
    "Network",
    "Session",
    "StorageConnection",
    "Verdict",
    "Work",
    "check_on_host",
    "iface_for",
    "is_ours",
    "needed_ifaces",
    "netdev_of",
    "plan",
    "reconcile",
    "verdict",
]
