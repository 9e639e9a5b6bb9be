"""Bringing paths up: node records, logins, targeted scans.

Each path is brought up by its own task (:meth:`PathBringUp.run`), holding only
that path's node-record lock. A target's records are written one at a time,
two targets' at most side by side (the machine's node-record queue,
:func:`multipath_brick.inflight.node_records`), in the order of the attaches
that asked; each path logs in, in its own privileged call, as soon as its own
record is written. So the first path of a 4-portal attach is logging in while
the last record is still being written, and a dead portal delays nobody but
its own path. The privsep daemon's pool (32 threads by default) runs the
logins of several attaches at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from multipath_brick import verbs
from multipath_brick.exception import CommandError
from multipath_brick.host.base import Host
from multipath_brick.iscsi import iscsiadm as iscsiadm_mod
from multipath_brick.iscsi.iscsiadm import Iscsiadm, LoginTimeouts
from multipath_brick.iscsi.paths import Path, PathResult, PathState
from multipath_brick.iscsi.properties import Chap
from multipath_brick.locks import Locks, TicketLock
from multipath_brick.scsi.sysfs import SessionInfo, Sysfs
from multipath_brick.waiting import wait_until

#: The portal group tag a record is filed under when no session to its portal
#: tells the real one: the first portal group's tag on tgt and on LIO. Only the
#: record's file name depends on it: iscsid takes the target's tag from the
#: login response, so a wrong one still logs in, and the session shows the real
#: tag (lab: tests/fixtures/node_tpgt_sequence.txt, C).
DEFAULT_TPGT = 1

_T = TypeVar("_T")

# Settings every record of ours carries; iscsid.conf's defaults differ.
_OURS = (("node.session.scan", "manual"), ("node.startup", "manual"))


@dataclasses.dataclass
class _Made:
    """What one path's bring-up has made so far (for the release after an error)."""

    record: bool = False
    session: bool = False

    def failed(self, path: Path, reason: str) -> PathResult:
        return PathResult(
            path, PathState.FAILED, reason=reason, new_session=self.session, new_record=self.record
        )


class PathBringUp:
    """Brings one path from nothing to a SCSI disk with a WWID.

    :param records: the machine's node-record queue
        (:func:`multipath_brick.inflight.node_records`).
    """

    def __init__(
        self,
        host: Host,
        locks: Locks,
        *,
        records: TicketLock,
        chap: Chap | None,
        timeouts: LoginTimeouts,
        scan_attempts: int,
        scan_timeout: float,
        poll: float,
        command_timeout: float,
        sysfs: Sysfs | None = None,
        tagged: bool = False,
    ) -> None:
        self._host = host
        self._tagged = tagged
        self._locks = locks
        self._records = records
        self._iscsiadm = Iscsiadm(host, timeout=command_timeout)
        self._sysfs = sysfs or Sysfs(host)
        self._settings = iscsiadm_mod.node_settings(chap, timeouts)
        self._login_timeout = timeouts.worst_case + 15.0
        self._scan_attempts = max(1, scan_attempts)
        self._scan_timeout = scan_timeout
        self._poll = poll

    def tpgt(self, path: Path) -> int | None:
        """The portal group tag to file the path's node record under; None: none.

        Without a tag open-iscsi keeps one record per (target, portal), so a
        second iface's record would replace the first's; with one, each iface
        has a record of its own (``nodes/<iqn>/<addr>,<port>,<tpgt>/<iface>``).
        So the records of a path through an iface other than ``default`` carry
        one, and every record of a connector that asks for it (``tagged``: a
        bond's, so that a flat record of its own never shadows the others:
        open-iscsi reads and deletes the flat file first, whatever its iface).
        The tag is the one a live session to the portal got from the target,
        else :data:`DEFAULT_TPGT`.
        """
        if not self._tagged and path.iface == "default":
            return None
        target = path.target
        found = self._sysfs.portal_group_tag(target.iqn, target.portal)
        return DEFAULT_TPGT if found is None else found

    def session(self, path: Path) -> SessionInfo | None:
        """The logged-in session of a path, if any."""
        target = path.target
        return self._sysfs.find_session(target.iqn, target.portal, path.iface, logged_in=True)

    def run(
        self, path: Path, ticket: int, *, logged_in: Callable[[], None] | None = None
    ) -> PathResult:
        """Bring the path up; never raises.

        :param ticket: the attach's place in the node-record queue, shared by
            its paths.
        :param logged_in: called once the path has its session (logged in now,
            or already), before the scan.

        The node-record lock is held from the record to the scan, until the
        LUN's SCSI device exists: from then on a detach of another LUN sees it
        and keeps the session (:meth:`.Releaser.release_session`), so the wait
        for the block device (sd's probe, about a second per LUN in the lab)
        does not hold back the next LUN's scan on the same session.
        """
        start = self._host.monotonic()
        made = _Made()
        try:
            # A lock not free in time (LockTimeout) fails this path only.
            with self._locks.node(path.target.portal, path.target.iqn, path.iface):
                scanned = self._run_locked(path, ticket, made, logged_in)
        except Exception as error:  # noqa: BLE001 - reported as the path's failure
            # What was made so far stays in the result, so that it is released.
            scanned = made.failed(path, str(error))
        if isinstance(scanned, PathResult):
            result = scanned
        else:
            try:
                result = self._disk(path, *scanned)
            except Exception as error:  # noqa: BLE001
                result = made.failed(path, str(error))
        return dataclasses.replace(result, seconds=self._host.monotonic() - start)

    def _run_locked(
        self, path: Path, ticket: int, made: _Made, logged_in: Callable[[], None] | None
    ) -> PathResult | tuple[SessionInfo, bool, bool]:
        """Record, login and scan: a failure, or (session, new_session, new_record).

        ``made`` says what exists because of this attach, as it happens.
        """
        new_record = new_session = False
        session = self.session(path)
        if session is None:
            new_record = self._record_is_ours(path)
            made.record = new_record
            try:
                tpgt = self.tpgt(path)
                with self._records.turn(ticket, key=path.target.iqn):
                    self._iscsiadm.create_node(path.target, path.iface, self._settings, tpgt)
            except CommandError as error:
                self._forget_record(path, new_record)
                return PathResult(path, PathState.FAILED, reason=f"node record: {error}")
            outcome = self._login(path)
            if isinstance(outcome, PathResult):
                self._forget_record(path, new_record)
                return dataclasses.replace(outcome, new_record=new_record)
            session = outcome
            new_session = made.session = True
        elif self._record_is_ours(path):
            # A session logged in with a record that carries iscsid.conf's
            # defaults (an attach killed between -o new and -o update, then a
            # login by another tool): the next reconnect of that session would
            # scan every LUN again (node.session.scan=auto). Rewrite it.
            tpgt = self.tpgt(path)
            with self._records.turn(ticket, key=path.target.iqn):
                self._iscsiadm.create_node(path.target, path.iface, self._settings, tpgt)
        if logged_in is not None:
            logged_in()
        if not self._scan(session, path.target.lun):
            return PathResult(
                path,
                PathState.FAILED,
                reason=f"LUN {path.target.lun} not found on session {session.sid}",
                new_session=new_session,
                new_record=new_record,
            )
        return session, new_session, new_record

    def _disk(
        self, path: Path, session: SessionInfo, new_session: bool, new_record: bool
    ) -> PathResult:
        """Wait for the scanned LUN's block device and its WWID."""
        lun = path.target.lun
        found = self._wait(lambda: self._sysfs.disk(session, lun))
        if found is None:
            # Not a disk sd can use: take its SCSI device away again, or it
            # would keep the session (and we would report a leftover).
            channel, target = self._sysfs.scsi_target(session)
            remove = verbs.ScsiRemoveLun(session.host, channel, target, lun)
            self._host.write(remove, timeout=self._scan_timeout)
            return PathResult(
                path,
                PathState.FAILED,
                reason=f"LUN {lun} on session {session.sid} got no block device",
                new_session=new_session,
                new_record=new_record,
            )
        disk = found.device
        wwid = self._wait(lambda: self._sysfs.wwid(disk))
        return PathResult(
            path,
            PathState.ACTIVE,
            device=disk,
            wwid=wwid,
            reason=None if wwid else "disk has no WWID",
            new_session=new_session,
            new_record=new_record,
        )

    def _login(self, path: Path) -> SessionInfo | PathResult:
        """Log the path in: its session, or why not.

        The command outlives iscsid's own give-up time (``login_timeout`` x
        ``initial_login_retry_max``), so that a login to a dead portal reports
        iscsid's reason rather than our timeout.
        """
        try:
            result = self._iscsiadm.login(path.target, path.iface, timeout=self._login_timeout)
        except Exception as error:  # noqa: BLE001
            return PathResult(path, PathState.FAILED, reason=f"login: {error}")
        if iscsiadm_mod.login_succeeded(result):
            session = self._wait(lambda: self.session(path))
            if session is not None:
                return session
            return PathResult(path, PathState.FAILED, reason="logged in, but no session")
        return PathResult(
            path,
            PathState.FAILED,
            reason=iscsiadm_mod.login_failure_reason(result),
            auth_failed=iscsiadm_mod.is_auth_failure(result),
        )

    def _wait(self, look: Callable[[], _T | None], timeout: float | None = None) -> _T | None:
        """Look at the path's kernel objects until ``look`` finds one, at most
        ``timeout`` (default ``scan_timeout``) seconds."""
        limit = self._scan_timeout if timeout is None else timeout
        return wait_until(self._host, look, limit, self._poll)

    def _scan(self, session: SessionInfo, lun: int) -> bool:
        """Scan exactly H:C:T:L until the LUN's SCSI disk device exists."""
        for _ in range(self._scan_attempts):
            if self._sysfs.has_disk_lun(session, lun):
                return True
            channel, target = self._sysfs.scsi_target(session)
            self._host.write(
                verbs.ScsiScan(session.host, channel, target, lun), timeout=self._scan_timeout
            )
            # The kernel adds the device before the write returns; a LUN the
            # target does not have (or a path that dropped) adds none.
            per_scan = self._scan_timeout / self._scan_attempts
            if self._wait(lambda: self._sysfs.has_disk_lun(session, lun), per_scan):
                return True
        return False

    def _record_is_ours(self, path: Path) -> bool:
        """Whether the path's node record is ours to write and to delete.

        True when there is none, or when it carries iscsid.conf's defaults
        instead of the settings we always write (``node.session.scan`` or
        ``node.startup`` not ``manual``): then it was left by an attach that
        was killed between ``-o new`` and ``-o update``, and is rewritten now
        and removed with the path like a record of this attach.
        """
        shown = self._iscsiadm.show_node(path.target, path.iface)
        if shown is None:
            return True
        return any(shown.get(name) != value for name, value in _OURS)

    def _forget_record(self, path: Path, created: bool) -> None:
        """Remove a record this attach created for a path that never logged in.

        The session iscsid set up for a failed login may still be in sysfs
        when iscsiadm returns (nothing promises otherwise), and the daemon
        refuses to delete the record while it is: then the delete is asked
        again once it has gone.
        """
        if not created:
            return
        target, iface = path.target, path.iface
        with self._records.turn(key=target.iqn):
            if self._iscsiadm.delete_node(target, iface):
                return
        self._wait(lambda: self._sysfs.find_session(target.iqn, target.portal, iface) is None)
        with self._records.turn(key=target.iqn):
            self._iscsiadm.delete_node(target, iface)
