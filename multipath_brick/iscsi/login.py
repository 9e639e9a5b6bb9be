"""Bringing paths up: node records, parallel logins, targeted scans.

Each path is brought up by its own task (:meth:`PathBringUp.run`), holding only
that path's node-record lock. Logins of the paths that are ready together go to
the host in ONE call (:class:`LoginBatch`), which on a real host spawns every
``iscsiadm --login`` at once inside the privsep daemon, so the daemon's thread
pool never caps them. A task does not wait for the whole batch: it watches
sysfs for its own session and moves on as soon as that session is logged in,
so a dead portal in the batch delays nobody but itself.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, wait

from multipath_brick.exception import CommandError
from multipath_brick.host.base import CommandResult, Host
from multipath_brick.iscsi import iscsiadm as iscsiadm_mod
from multipath_brick.iscsi.iscsiadm import Iscsiadm, IscsiadmExit, LoginTimeouts
from multipath_brick.iscsi.paths import Outcome, Path, PathResult
from multipath_brick.iscsi.properties import Chap
from multipath_brick.locks import Locks, TicketLock
from multipath_brick.privileged import verbs
from multipath_brick.scsi.sysfs import SessionInfo, Sysfs

# iscsiadm's node database takes a global lock; concurrent record writes from
# threads of this process are slow and have corrupted records, so they queue
# here, in order of the attach (or detach) that asked.
NODE_DB = TicketLock()

# Longest pause between two looks at sysfs while a path waits (for its session,
# its disk, its WWID). Looks start at the poll interval and widen by half each
# time: 32 path tasks looking every 50 ms take CPU from the udev workers and
# iscsiadm processes they wait for.
_LOOK_MAX = 0.25


def _pauses(first: float) -> Iterator[float]:
    """first, then half as long again each time, up to :data:`_LOOK_MAX`."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 1.5, max(first, _LOOK_MAX))


class LoginBatch:
    r"""Collects the logins of one attach and sends them to the host together.

    A path task :meth:`enter`\ s the batch once it holds its node-record lock,
    then prepares its record (serially: iscsiadm's database lock) and either
    :meth:`request`\ s a login or :meth:`skip`\ s. The batch fires when every
    expected path has checked in, or when no path that entered is still
    preparing and ``wait`` seconds have passed: a path still blocked on a lock
    held by another attach does not hold the others back; it logs in alone later.
    """

    def __init__(self, host: Host, expected: int, timeout: float, wait: float = 0.5) -> None:
        self._host = host
        self._expected = expected
        self._timeout = timeout
        self._wait = wait
        self._cond = threading.Condition()
        self._requests: list[Path] = []
        self._preparing: set[Path] = set()
        self._checked_in: set[Path] = set()
        self._fired = False
        self._results: dict[Path, Future[CommandResult]] = {}
        #: The attach's place in the node database queue.
        self.ticket = NODE_DB.ticket()

    def enter(self, path: Path) -> None:
        """The path holds its lock and is preparing its record."""
        with self._cond:
            if not self._fired:
                self._preparing.add(path)

    def skip(self, path: Path) -> None:
        """This path needs no login (or cannot log in); idempotent."""
        with self._cond:
            self._preparing.discard(path)
            self._checked_in.add(path)
            self._cond.notify_all()

    def _ready(self, started: float) -> bool:
        if self._fired or len(self._checked_in) >= self._expected:
            return True
        return not self._preparing and self._host.monotonic() - started >= self._wait

    def request(self, path: Path) -> Future[CommandResult]:
        """Ask to log this path in; the future gets its result."""
        future: Future[CommandResult] = Future()
        with self._cond:
            late = self._fired
            if not late:
                self._requests.append(path)
                self._results[path] = future
                self._preparing.discard(path)
                self._checked_in.add(path)
                self._cond.notify_all()
                started = self._host.monotonic()
                while not self._ready(started):
                    # Check-ins notify; the timed wake is for the ``wait`` rule only.
                    left = started + self._wait - self._host.monotonic()
                    self._cond.wait(max(left, self._wait / 5))
                fire = not self._fired
                if fire:
                    self._fired = True
                    self._cond.notify_all()
                    batch = list(self._requests)
                    futures = dict(self._results)
        if late:
            self._login([path], {path: future})
        elif fire:
            threading.Thread(target=self._login, args=(batch, futures), daemon=True).start()
        return future

    def _login(self, paths: Sequence[Path], futures: dict[Path, Future[CommandResult]]) -> None:
        logins = [verbs.NodeLogin(p.target.portal, p.target.iqn, p.iface) for p in paths]
        try:
            results = self._host.login_all(logins, timeout=self._timeout)
        except Exception as error:  # noqa: BLE001 - every waiter must hear of it
            for future in futures.values():
                future.set_exception(error)
            return
        for path, result in zip(paths, results, strict=True):
            futures[path].set_result(result)


class PathBringUp:
    """Brings one path from nothing to a SCSI disk with a WWID."""

    def __init__(
        self,
        host: Host,
        locks: Locks,
        *,
        chap: Chap | None,
        timeouts: LoginTimeouts,
        scan_attempts: int,
        scan_timeout: float,
        poll: float,
        command_timeout: float,
        sysfs: Sysfs | None = None,
    ) -> None:
        self._host = host
        self._locks = locks
        self._iscsiadm = Iscsiadm(host, timeout=command_timeout)
        self._sysfs = sysfs or Sysfs(host)
        self._settings = iscsiadm_mod.node_settings(chap, timeouts)
        self._timeouts = timeouts
        self._scan_attempts = max(1, scan_attempts)
        self._scan_timeout = scan_timeout
        self._poll = poll

    def session(self, path: Path) -> SessionInfo | None:
        """The logged-in session of a path, if any."""
        target = path.target
        return self._sysfs.find_session(target.iqn, target.portal, path.iface, logged_in=True)

    def run(self, path: Path, batch: LoginBatch) -> PathResult:
        """Bring the path up; never raises.

        The node-record lock is held from the record to the scan, until the
        LUN's SCSI device exists: from then on a detach of another LUN sees it
        and keeps the session (:meth:`.Releaser.release_session`), so the wait
        for the block device (sd's probe, about a second per LUN in the lab)
        does not hold back the next LUN's scan on the same session.
        """
        start = self._host.monotonic()
        lock = self._locks.node(path.target.portal, path.target.iqn, path.iface)
        lock.acquire()
        batch.enter(path)
        try:
            scanned = self._run_locked(path, batch)
        except Exception as error:  # noqa: BLE001 - reported as the path's failure
            scanned = PathResult(path, Outcome.FAILED, reason=str(error))
        finally:
            batch.skip(path)  # no-op when it already checked in
            lock.release()
        if isinstance(scanned, PathResult):
            result = scanned
        else:
            try:
                result = self._disk(path, *scanned)
            except Exception as error:  # noqa: BLE001
                result = PathResult(path, Outcome.FAILED, reason=str(error))
        return dataclasses.replace(result, seconds=self._host.monotonic() - start)

    def _run_locked(
        self, path: Path, batch: LoginBatch
    ) -> PathResult | tuple[SessionInfo, bool, bool]:
        """Record, login and scan: a failure, or (session, new_session, new_record)."""
        new_record = new_session = False
        session = self.session(path)
        if session is None:
            new_record = not self._iscsiadm.node_exists(path.target, path.iface)
            try:
                with NODE_DB.turn(batch.ticket):
                    self._iscsiadm.create_node(path.target, path.iface, self._settings)
            except CommandError as error:
                batch.skip(path)
                self._forget_record(path, new_record)
                return PathResult(path, Outcome.FAILED, reason=f"node record: {error}")
            outcome = self._await_login(path, batch.request(path))
            if isinstance(outcome, PathResult):
                self._forget_record(path, new_record)
                return dataclasses.replace(outcome, new_record=new_record)
            session = outcome
            new_session = True
        else:
            batch.skip(path)
        if not self._scan(session, path.target.lun):
            return PathResult(
                path,
                Outcome.FAILED,
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
        deadline = self._host.monotonic() + self._scan_timeout
        pauses = _pauses(self._poll)
        while (found := self._sysfs.disk(session, lun)) is None:
            if self._host.monotonic() > deadline:
                # Not a disk sd can use: take its SCSI device away again, or it
                # would keep the session (and we would report a leftover).
                channel, target = self._sysfs.scsi_target(session)
                remove = verbs.ScsiRemoveLun(session.host, channel, target, lun)
                self._host.write(remove, timeout=self._scan_timeout)
                return PathResult(
                    path,
                    Outcome.FAILED,
                    reason=f"LUN {lun} on session {session.sid} got no block device",
                    new_session=new_session,
                    new_record=new_record,
                )
            self._host.sleep(next(pauses))
        disk = found.device
        wwid = self._wait_wwid(disk)
        return PathResult(
            path,
            Outcome.ACTIVE,
            device=disk,
            wwid=wwid,
            reason=None if wwid else "disk has no WWID",
            new_session=new_session,
            new_record=new_record,
        )

    def _await_login(self, path: Path, future: Future[CommandResult]) -> SessionInfo | PathResult:
        """Wait for our login result or our session, whichever comes first."""
        deadline = self._host.monotonic() + self._timeouts.worst_case + 30.0
        pauses = _pauses(self._poll)
        while True:
            if future.done():
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001
                    return PathResult(path, Outcome.FAILED, reason=f"login: {error}")
                if result.exit_code in (0, IscsiadmExit.SESS_EXISTS):
                    session = self._wait_session(path)
                    if session is not None:
                        return session
                    return PathResult(path, Outcome.FAILED, reason="logged in, but no session")
                return PathResult(
                    path,
                    Outcome.FAILED,
                    reason=iscsiadm_mod.login_failure_reason(result),
                    auth_failed=iscsiadm_mod.is_auth_failure(result),
                )
            session = self.session(path)
            if session is not None:
                return session
            if self._host.monotonic() > deadline:
                return PathResult(path, Outcome.FAILED, reason="login did not finish")
            wait([future], timeout=next(pauses))  # our result ends the pause

    def _wait_session(self, path: Path) -> SessionInfo | None:
        deadline = self._host.monotonic() + self._scan_timeout
        while (session := self.session(path)) is None and self._host.monotonic() < deadline:
            self._host.sleep(self._poll)
        return session

    def _scan(self, session: SessionInfo, lun: int) -> bool:
        """Scan exactly H:C:T:L until the LUN's SCSI disk device exists."""
        for _ in range(self._scan_attempts):
            if lun in self._sysfs.disk_luns(session):
                return True
            channel, target = self._sysfs.scsi_target(session)
            self._host.write(
                verbs.ScsiScan(session.host, channel, target, lun), timeout=self._scan_timeout
            )
            # The kernel adds the device before the write returns; a LUN the
            # target does not have (or a path that dropped) adds none.
            deadline = self._host.monotonic() + self._scan_timeout / self._scan_attempts
            pauses = _pauses(self._poll)
            while self._host.monotonic() < deadline:
                if lun in self._sysfs.disk_luns(session):
                    return True
                self._host.sleep(next(pauses))
        return False

    def _wait_wwid(self, disk: str) -> str | None:
        deadline = self._host.monotonic() + self._scan_timeout
        pauses = _pauses(self._poll)
        while (wwid := self._sysfs.wwid(disk)) is None and self._host.monotonic() < deadline:
            self._host.sleep(next(pauses))
        return wwid

    def _forget_record(self, path: Path, created: bool) -> None:
        """Remove a record this attach created for a path that never logged in."""
        if created:
            with NODE_DB.turn():
                self._iscsiadm.delete_node(path.target, path.iface)
