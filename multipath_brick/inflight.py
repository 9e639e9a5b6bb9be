"""The volumes in flight: what a connector's attaches and detaches share.

An attach (:mod:`multipath_brick.attach`) and a detach
(:mod:`multipath_brick.detach`) of the same volume meet here, and nowhere
else: neither imports the other. :class:`InFlight` holds

* the view of sysfs, which remembers sessions (:class:`~.scsi.sysfs.Sysfs`);
* the node-record queue of the machine (:func:`node_records`);
* the release of paths (:class:`~.release.Releaser`);
* the paths still coming up after an attach returned
  (:class:`~.pending.PendingPaths`), which a detach of their volume waits for;
* the volumes attached, which a detach marks gone so that a late path does not
  bring a detached map back.
"""

from __future__ import annotations

import sys
import threading
import weakref

from multipath_brick.host.base import Host
from multipath_brick.locks import Locks, TicketLock
from multipath_brick.pending import PendingPaths, PendingReport
from multipath_brick.release import Releaser
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.settings import AttachSettings
from multipath_brick.volume import Volume

__all__ = ["NODE_DB_WRITERS", "InFlight", "node_records"]

# Record writes (iscsiadm -o new, the daemon's writes and deletes) queue in a
# TicketLock, in order of the attach (or detach) that asked. Never two at once
# for one target: its records share a directory that is made and removed as
# records come and go, and vdsm serialises every record write for good reason.
# Two targets' records may be written side by side: every file write takes
# iscsiadm's database lock, and what iscsiadm does unlocked (a login listing
# the database) is told apart when it trips (login_succeeded). With the host
# busy (udev probing every new disk), each iscsiadm waits for CPU; two side by
# side cut a 32-record queue from 47 s to 35 s in the lab.
#: Node-record writes of different targets at once, at most.
NODE_DB_WRITERS = 2

# One queue per machine, kept as long as its host object lives.
_QUEUES: weakref.WeakKeyDictionary[object, TicketLock] = weakref.WeakKeyDictionary()
_QUEUES_GUARD = threading.Lock()


def node_records(host: Host) -> TicketLock:
    """The node-record queue of the machine ``host`` acts on.

    iscsiadm's node database belongs to the machine, not to a connector: nova
    and cinder make several connectors in one process, and their record writes
    must queue together (two connectors writing records of one target at once
    is what the queue is there to prevent). Every
    :class:`~multipath_brick.host.linux.LinuxHost` drives this one machine,
    whatever its ``root`` (which moves only its reads), so they all share one
    queue; any other host (a :class:`~multipath_brick.testing.FakeHost` is a
    machine of its own) has its own. Across processes nothing queues: there
    iscsiadm's own database lock is all there is.
    """
    key: object = host
    # Not imported here (it brings in oslo.privsep): without the module loaded,
    # no LinuxHost exists.
    linux = sys.modules.get("multipath_brick.host.linux")
    if linux is not None and isinstance(host, linux.LinuxHost):
        key = linux.LinuxHost
    with _QUEUES_GUARD:
        queue = _QUEUES.get(key)
        if queue is None:
            queue = _QUEUES[key] = TicketLock(holders=NODE_DB_WRITERS)
        return queue


class InFlight:
    """The volumes in flight on one connector; built by it, handed to its attach and detach.

    One per connector, as the attaches' background paths were before: a
    connector's :meth:`~multipath_brick.connector.ISCSIMultipathConnector.wait_for_pending`
    reports its own attaches' paths, and its detach waits for (and marks gone)
    the volumes it attached. Only the node-record queue is shared by every
    connector on the machine (:func:`node_records`).

    :param host: the host.
    :param locks: the connector's locks.
    :param settings: the connector's timing.

    :ivar sysfs: the one view of sysfs of every attach and detach.
    :ivar records: the machine's node-record queue.
    :ivar releaser: the release of paths.
    :ivar pending: the paths still coming up after their attach returned.
    """

    def __init__(self, host: Host, locks: Locks, settings: AttachSettings) -> None:
        self.sysfs = Sysfs(host)
        self.records = node_records(host)
        self.releaser = Releaser(
            host, locks, self.records, self.sysfs, command_timeout=settings.command_timeout
        )
        self.pending = PendingPaths()
        # A background path ends within its login's worst case, then a scan and
        # its join of the map.
        self._pending_for = settings.timeouts.worst_case + 60
        self._attached: dict[str, Volume] = {}
        self._lock = threading.Lock()

    def attached(self, wwid: str, volume: Volume) -> None:
        """An attach returned ``volume``: a detach of ``wwid`` marks it gone."""
        with self._lock:
            self._attached[wwid] = volume

    def wait_pending(self, wwid: str) -> PendingReport:
        """Wait (bounded) for the background paths of one volume, before its detach."""
        return self.pending.wait(wwid, self._pending_for)

    def forget(self, wwid: str) -> None:
        """The volume is being detached (WWID lock held): late paths must not join any more."""
        with self._lock:
            volume = self._attached.pop(wwid, None)
        if volume is not None:
            volume.mark_gone()
