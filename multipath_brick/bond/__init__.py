"""The iSCSI bond: host networks mapped to iscsiadm ifaces.

Built so far: the pure model (no I/O), usable by an engine-side manager as by a
host agent.

* :mod:`.model`: :class:`Network`, :class:`StorageConnection`, :class:`IscsiBond`;
* :mod:`.datacenter`: :class:`DataCenter`, the registry that keeps the rules of
  :mod:`.rules`, and the :class:`Edit` every change returns;
* :mod:`.work`: the sessions a host should have, and the :class:`Work` of an edit
  for the :class:`HostState` given (host -> network -> netdev, attached volumes);
* :mod:`.iface`: the iface naming scheme (``mpb-<netdev>``, ``default``);
* :mod:`.rest`: the oVirt REST bodies, read with a parser that refuses DTDs.

Not built yet: the host plan of an attach, the iface reconciliation on the
host, and the connector's ``bond=`` integration.
"""

from __future__ import annotations

from multipath_brick.bond.datacenter import DataCenter, Edit
from multipath_brick.bond.iface import DEFAULT_IFACE, IFACE_PREFIX, iface_for, is_ours, netdev_of
from multipath_brick.bond.model import IscsiBond, Network, StorageConnection
from multipath_brick.bond.work import HeldLogout, HostState, HostWork, Session, Work

__all__ = [
    "DEFAULT_IFACE",
    "IFACE_PREFIX",
    "DataCenter",
    "Edit",
    "HeldLogout",
    "HostState",
    "HostWork",
    "IscsiBond",
    "Network",
    "Session",
    "StorageConnection",
    "Work",
    "iface_for",
    "is_ours",
    "netdev_of",
]
