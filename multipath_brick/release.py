"""Release of paths: remove a disk, log out a session nobody uses, delete its record.

Shared by a failed path and an abandoned attach (:mod:`multipath_brick.attach`),
a detach (:mod:`multipath_brick.detach`) and a bond edit
(:mod:`multipath_brick.bond.edits`), through the connector's
:class:`~multipath_brick.inflight.InFlight`.
"""

from __future__ import annotations

import logging

from multipath_brick import verbs
from multipath_brick.exception import CommandError, LockPathError, LockTimeout
from multipath_brick.host.base import Host
from multipath_brick.iscsi.iscsiadm import Iscsiadm
from multipath_brick.iscsi.paths import Path, PathResult
from multipath_brick.locks import Locks, TicketLock
from multipath_brick.multipath.control import Multipath
from multipath_brick.scsi.session_numbers import SESSIONS
from multipath_brick.scsi.sysfs import SessionInfo, Sysfs
from multipath_brick.waiting import wait_until

LOG = logging.getLogger(__name__)


class Releaser:
    """Removes disks and unused sessions, one path at a time.

    :param host: the host.
    :param locks: the node-record locks a session is released under.
    :param records: the machine's node-record queue (:func:`.inflight.node_records`).
    :param sysfs: the connector's view of sysfs.
    :param command_timeout: seconds a command (and a deleted disk's going) may take.
    :param poll: the first pause while a deleted disk goes.
    """

    def __init__(
        self,
        host: Host,
        locks: Locks,
        records: TicketLock,
        sysfs: Sysfs,
        *,
        command_timeout: float,
        poll: float = 0.05,
    ) -> None:
        self._host = host
        self._locks = locks
        self._records = records
        self._timeout = command_timeout
        self._poll = poll
        self._sysfs = sysfs
        self._multipath = Multipath(host, timeout=command_timeout)
        self._iscsiadm = Iscsiadm(host, timeout=command_timeout)

    def remove_disk(self, device: str) -> list[str]:
        """Forget the path in multipathd, delete the SCSI device, wait for it to go."""
        if not self._sysfs.exists(device):
            return []
        self._multipath.remove_path(device)
        try:
            self._host.write(verbs.ScsiDelete(device), timeout=self._timeout)
        except (OSError, CommandError) as error:
            return [f"delete {device}: {error}"]
        if not wait_until(
            self._host, lambda: not self._sysfs.exists(device), self._timeout, self._poll
        ):
            return [f"{device} still present {self._timeout:.0f}s after delete"]
        return []

    def release_session(self, path: Path) -> list[str]:
        """Log out the path's session if no disk is left on it; delete its record."""
        target, iface = path.target, path.iface
        try:
            with self._locks.node(target.portal, target.iqn, iface):
                session = self._sysfs.find_session(target.iqn, target.portal, iface)
                if session is not None and self._sysfs.has_disk_luns(session):
                    # Another LUN still lives on this session, or is arriving: an
                    # attach lets go of this lock once its LUN's SCSI device exists,
                    # before sd has made the block device.
                    return []
                try:
                    if session is not None:
                        self._iscsiadm.logout(target, iface)
                        self._wait_session_gone(session)
                    # Another LUN's detach may have deleted the record first (LUNs
                    # of one target share the session): the daemon's delete then
                    # finds none, at the cost of a file lookup, not a process.
                    with self._records.turn(key=target.iqn):
                        deleted = self._iscsiadm.delete_node(target, iface)
                except CommandError as error:
                    return [f"release {path}: {error}"]
                if not deleted:
                    # The daemon refused: a session uses the record that sysfs did not
                    # show us (a read failed, or it was still being set up). Say so,
                    # so that the caller detaches again, instead of leaving it silently.
                    return [f"release {path}: a session still uses its node record"]
            return []
        except (LockTimeout, LockPathError) as error:  # this record stays; the rest goes on
            return [f"release {path}: {error}"]

    def _wait_session_gone(self, session: SessionInfo) -> None:
        """Wait (at most the command timeout) until the kernel has taken a
        logged-out session away. ``iscsiadm --logout`` returns once iscsid has
        answered, and nothing promises that the session's sysfs objects are gone
        by then (in the lab a shell looking some 30 ms later never found one);
        the daemon's delete refuses the record while such a session is there,
        as iscsiadm does. Usually no wait at all: one look."""
        path = f"{SESSIONS}/session{session.sid}"
        wait_until(self._host, lambda: not self._host.exists(path), self._timeout, self._poll)

    def release_path(self, result: PathResult) -> list[str]:
        """Undo one path of a failed or abandoned attach; never raises an ``Exception``.

        :returns: what could not be undone (also logged).
        """
        try:
            errors = self.remove_disk(result.device) if result.device else []
            if result.new_session or result.new_record:
                errors += self.release_session(result.path)
        except Exception as unexpected:  # noqa: BLE001 - an undo goes on; it is reported
            errors = [f"unexpected error: {unexpected}"]
        for error in errors:
            LOG.warning("cleanup of %s: %s", result.path, error)
        return errors
