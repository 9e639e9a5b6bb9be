"""Attach: every path at once, the map as soon as it is usable.

The flow of :meth:`Attacher.attach`:

1. each path gets a task (:class:`~.iscsi.login.PathBringUp`): node record,
   login (batched into one privileged call), targeted scan, WWID;
2. as paths turn active, their disks are handed to multipathd (under the WWID's
   lock), which makes or grows the map;
3. we return once the map answers ``multipath -C`` and either every path has
   resolved or ``grace`` seconds have passed since it became usable. A path
   still logging in then (a slow or dead portal) goes on in the background;
   when it arrives it joins the map, and if the volume was detached meanwhile it
   removes what it made.

If no path comes up, everything this attach created is removed before the
error is raised.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from multipath_brick.detach import Releaser
from multipath_brick.exception import AuthenticationError, DeviceNotReadyTimeout, NoUsablePathError
from multipath_brick.host.base import Host
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.iscsi.login import LoginBatch, PathBringUp
from multipath_brick.iscsi.paths import Outcome, Path, PathResult
from multipath_brick.iscsi.properties import Chap
from multipath_brick.locks import Locks
from multipath_brick.multipath.control import Multipath
from multipath_brick.scsi.sysfs import Sysfs

LOG = logging.getLogger(__name__)
# Seconds between two "add path" of a disk multipathd has not taken yet.
_ADD_PATH_RETRY = 0.25


@dataclasses.dataclass(frozen=True)
class AttachSettings:
    """Timing of an attach.

    :ivar grace: seconds to keep waiting for slow paths once the map is usable.
    :ivar timeouts: per-node login timeouts written before login.
    :ivar scan_attempts: targeted scans per path before giving up on its LUN.
    :ivar scan_timeout: seconds a scan (and the disk's appearance) may take.
    :ivar ready_timeout: seconds for a map to become usable after its first path.
    :ivar command_timeout: seconds any other command may take.
    :ivar flush_busy_for: seconds to keep retrying a flush that finds the map
        briefly in use (udev probing a new map holds it open).
    :ivar poll: seconds between looks at sysfs.
    """

    grace: float = 5.0
    timeouts: LoginTimeouts = LoginTimeouts()
    scan_attempts: int = 3
    scan_timeout: float = 10.0
    ready_timeout: float = 30.0
    command_timeout: float = 30.0
    flush_busy_for: float = 10.0
    poll: float = 0.05


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A volume attached through a multipath map (or one disk without multipath)."""

    device: str
    wwid: str | None
    map_name: str | None
    paths: tuple[PathResult, ...]


class PendingPaths:
    """Background path tasks, by WWID, so a detach can wait for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, list[Future[None]]] = {}

    def add(self, wwid: str, future: Future[None]) -> None:
        with self._lock:
            self._futures.setdefault(wwid, []).append(future)

    def wait(self, wwid: str | None = None, timeout: float | None = None) -> bool:
        """Wait for the background paths of one volume (or of all); True if none remain."""
        with self._lock:
            if wwid is None:
                futures = [f for fs in self._futures.values() for f in fs]
            else:
                futures = list(self._futures.get(wwid, ()))
        done, not_done = wait(futures, timeout=timeout)
        with self._lock:
            for key in list(self._futures):
                self._futures[key] = [f for f in self._futures[key] if f not in done]
                if not self._futures[key]:
                    del self._futures[key]
        return not not_done


class Attacher:
    """Attaches volumes on one host; shared by every call of a connector."""

    def __init__(self, host: Host, locks: Locks, settings: AttachSettings) -> None:
        self._host = host
        self._locks = locks
        self._settings = settings
        self._sysfs = Sysfs(host)
        self._multipath = Multipath(
            host, timeout=settings.command_timeout, flush_busy_for=settings.flush_busy_for
        )
        self.releaser = Releaser(
            host,
            locks,
            command_timeout=settings.command_timeout,
            flush_busy_for=settings.flush_busy_for,
        )
        self._executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="mpb-path")
        self.pending = PendingPaths()
        # Volumes attached by this process, so late paths know whether to join or clean up.
        self._attached: set[str] = set()
        self._attached_lock = threading.Lock()

    def forget(self, wwid: str) -> None:
        """Called by detach (under the WWID lock): late paths must not join any more."""
        with self._attached_lock:
            self._attached.discard(wwid)

    def _bring_up(self, chap: Chap | None) -> PathBringUp:
        s = self._settings
        return PathBringUp(
            self._host,
            self._locks,
            chap=chap,
            timeouts=s.timeouts,
            scan_attempts=s.scan_attempts,
            scan_timeout=s.scan_timeout,
            poll=s.poll,
            command_timeout=s.command_timeout,
        )

    def attach_single(self, paths: Sequence[Path], chap: Chap | None) -> Attachment:
        """Without multipath: the first path that works, one at a time, like os-brick."""
        bring_up = self._bring_up(chap)
        results: list[PathResult] = []
        for path in paths:
            result = bring_up.run(path, LoginBatch(self._host, 1, self._login_timeout()))
            results.append(result)
            if result.outcome is Outcome.ACTIVE and result.device:
                return Attachment(f"/dev/{result.device}", result.wwid, None, tuple(results))
        raise _no_path_error(results)

    def _login_timeout(self) -> float:
        # The command must outlive iscsid's own give-up time, or we kill a login
        # that was about to report its real reason.
        return self._settings.timeouts.worst_case + 15.0

    def attach(self, paths: Sequence[Path], chap: Chap | None) -> Attachment:
        """Attach through every path; see the module docstring."""
        bring_up = self._bring_up(chap)
        batch = LoginBatch(self._host, len(paths), self._login_timeout())
        futures = {self._executor.submit(bring_up.run, p, batch): p for p in paths}
        results: dict[Path, PathResult] = {}
        wwid: str | None = None
        map_name: str | None = None
        usable_at: float | None = None
        first_active: float | None = None
        start = self._host.monotonic()
        remaining = set(futures)
        while True:
            if remaining:
                done, remaining = wait(
                    remaining, timeout=self._settings.poll, return_when=FIRST_COMPLETED
                )
            else:
                done = set()
                self._host.sleep(self._settings.poll)
            for future in done:
                result = future.result()
                if result.outcome is Outcome.ACTIVE:
                    if wwid is None and result.wwid is not None:
                        wwid = result.wwid
                        first_active = self._host.monotonic()
                        self._multipath.add_wwid(wwid)
                    result = self._join(result, wwid)
                results[result.path] = result
            now = self._host.monotonic()
            if wwid is not None and usable_at is None:
                map_name = self._sysfs.map_for_wwid(wwid)
                if map_name is not None and self._multipath.usable(map_name):
                    usable_at = now
            if usable_at is not None:
                if not remaining or now - usable_at >= self._settings.grace:
                    break
            elif first_active is None:
                if not remaining:
                    break  # every path failed
            elif now - first_active > self._settings.ready_timeout:
                break
        if usable_at is None or wwid is None or map_name is None:
            self._abandon(futures, results, wwid)
            if wwid is not None and any(r.outcome is Outcome.ACTIVE for r in results.values()):
                raise DeviceNotReadyTimeout(map_name or wwid, self._host.monotonic() - start)
            raise _no_path_error(list(results.values()))
        with self._attached_lock:
            self._attached.add(wwid)
        for result in results.values():
            if result.outcome is Outcome.FAILED and result.new_session:
                # e.g. the LUN is not exported on that portal: do not keep its session.
                self.releaser.release_path(result)
        elapsed = self._host.monotonic() - start
        ordered = []
        for future, path in futures.items():
            if future in remaining:
                ordered.append(PathResult.pending(path, elapsed))
                self.pending.add(wwid, self._executor.submit(self._late, future, wwid))
            else:
                ordered.append(results[path])
        return Attachment(f"/dev/{map_name}", wwid, map_name, tuple(ordered))

    def _join(self, result: PathResult, wwid: str | None) -> PathResult:
        """Hand an active path's disk to multipathd, or reject it if it is another LUN."""
        assert result.device is not None  # noqa: S101 - active results carry a device
        if result.wwid is None or result.wwid != wwid:
            self.releaser.release_path(result)
            reason = f"WWID {result.wwid} differs from the volume's {wwid}: not the same LUN"
            return dataclasses.replace(result, outcome=Outcome.FAILED, reason=reason, device=None)
        if not self._add_path(wwid, result.device):
            self.releaser.release_path(result)
            reason = (
                f"multipathd did not take {result.device} into the map of {wwid} "
                f"within {self._settings.ready_timeout:.0f}s"
            )
            return dataclasses.replace(result, outcome=Outcome.FAILED, reason=reason, device=None)
        return result

    def _add_path(self, wwid: str, device: str) -> bool:
        """Hand the disk to multipathd; True once a map holds it.

        The first disk to join makes the map and pulls in every known disk of
        the WWID; later disks arrive by uevent once the WWID is whitelisted. But
        multipathd answers ``fail`` to ``add path`` for a disk udev has not
        processed yet (it reads the WWID from udev's database), and on a real
        host the library is usually faster than udev: the disk then joins only
        when udev's event reaches multipathd. So "active" waits for the disk to
        be in the map (a dm holder), asking again while it is not, for at most
        ``ready_timeout``.
        """
        with self._locks.wwid(wwid):
            return self._add_path_locked(device)

    def _add_path_locked(self, device: str) -> bool:
        """:meth:`_add_path`, the caller holding the WWID's lock."""
        deadline = self._host.monotonic() + self._settings.ready_timeout
        while not self._sysfs.holders(device):
            if self._host.monotonic() >= deadline:
                return False
            self._multipath.add_path(device)
            if self._sysfs.holders(device):
                break
            self._host.sleep(_ADD_PATH_RETRY)
        return True

    def _late(self, future: Future[PathResult], wwid: str) -> None:
        """Finish a path that was still pending when attach returned."""
        result = future.result()
        if result.outcome is not Outcome.ACTIVE or result.device is None:
            LOG.info("late path %s failed: %s", result.path, result.reason)
            return
        joined = False
        with self._locks.wwid(wwid):
            with self._attached_lock:
                attached = wwid in self._attached
            if attached and result.wwid == wwid:
                joined = self._add_path_locked(result.device)
        if joined:
            LOG.info("late path %s joined %s as %s", result.path, wwid, result.device)
            return
        if attached and result.wwid == wwid:
            LOG.warning(
                "late path %s: multipathd did not take %s into %s; removing it",
                result.path,
                result.device,
                wwid,
            )
        else:
            LOG.info("late path %s arrived after detach; removing it", result.path)
        self.releaser.release_path(result)

    def _abandon(
        self,
        futures: dict[Future[PathResult], Path],
        results: dict[Path, PathResult],
        wwid: str | None,
    ) -> None:
        """The attach failed: wait for every path and undo what each one made."""
        for future in futures:
            result = future.result()
            results[result.path] = result
        if wwid is not None:
            with self._locks.wwid(wwid):
                map_name = self._sysfs.map_for_wwid(wwid)
                if map_name is not None:
                    self._multipath.flush(self._sysfs.dm_name(map_name) or wwid)
        for result in results.values():
            if result.device is not None or result.new_session:
                self.releaser.release_path(result)


def _no_path_error(results: Sequence[PathResult]) -> NoUsablePathError:
    failures = [(str(r.path), r.reason or r.outcome.value) for r in results]
    if results and all(r.auth_failed for r in results):
        return AuthenticationError(failures)
    return NoUsablePathError(failures)
