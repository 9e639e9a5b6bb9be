"""Attach: every path at once, the map as soon as it is usable.

The flow of :meth:`Attacher.attach`:

1. each path gets a task of its own (:meth:`Attacher._path_task`): node record,
   login (its own privileged call, as soon as its record is written), targeted
   scan, WWID (:class:`~.iscsi.login.PathBringUp`), then joining the map:
   once the disks of the paths logged in are processed by udev (at most
   ``gather`` seconds after the first one for a disk still to appear,
   :meth:`.volume.Volume.listed`), the WWID is listed in multipath's WWID file
   and the disks are handed to multipathd, which makes the map with all of
   them at once; a later disk is handed on its own until a map holds it;
2. the attach itself only watches: it returns once the map answers
   usable (:meth:`.Multipath.usable`) and either every path has resolved, or every path still
   out is a disk multipathd has accepted (it adds it itself), or ``grace``
   seconds have passed since the map became usable. A path still working then
   (a slow or dead portal, a slow udev) goes on in the background and joins
   the map when it can; if the volume is detached meanwhile it removes what it
   made.

Failure discipline: a path task never raises (an unexpected error, say a
failing edit of the WWID file, makes its path fail and releases what the path made);
a failed path releases its disk, session and record at once. If the attach
itself fails (no path came up, no usable map, or an error outside the paths),
every path is stopped and waited for, and everything this attach created (the
map, the wwids entry, disks, sessions, records) is removed before the library
error is raised. A process killed midway leaves things that the next attach of
the same volume reuses or repairs (see :mod:`.iscsi.login`) and the next detach
removes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from multipath_brick.exception import (
    AttachError,
    AuthenticationError,
    DeviceNotReadyTimeout,
    MultipathBrickError,
    NoUsablePathError,
)
from multipath_brick.host.base import Host
from multipath_brick.inflight import InFlight
from multipath_brick.iscsi.login import PathBringUp
from multipath_brick.iscsi.paths import Path, PathResult, PathState
from multipath_brick.iscsi.properties import Chap
from multipath_brick.locks import Locks
from multipath_brick.multipath.control import Multipath
from multipath_brick.settings import AttachSettings
from multipath_brick.volume import Volume
from multipath_brick.waiting import BUSY_LOOK_MAX, Backoff, Deadline, pauses
from multipath_brick.watch import PathTasks, watch

__all__ = ["Attacher", "Attachment", "AttachSettings"]

LOG = logging.getLogger(__name__)
# Seconds between two "add path" of a disk multipathd refused, doubling.
_ADD_PATH_RETRY = 0.25
_ADD_PATH_RETRY_MAX = 2.0
# After an "ok", multipathd holds the disk and adds it itself once udev has processed
# the new map (seconds, in the lab); asking again costs it a pathinfo under its global
# lock (93 asks took 120 s of its time for 8 volumes at once in the lab bench). So the
# next ask, in case it dropped the disk, comes much later.
_ADD_PATH_AFTER_OK = 5.0


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A volume attached through a multipath map (or one disk without multipath)."""

    device: str
    wwid: str | None
    map_name: str | None
    paths: tuple[PathResult, ...]


class Attacher:
    """Attaches volumes on one host; shared by every call of a connector.

    :param inflight: what the connector's attaches share with its detach.
    :param tagged: node records under a portal group tag (:meth:`.PathBringUp.tpgt`).
    """

    def __init__(
        self,
        host: Host,
        locks: Locks,
        settings: AttachSettings,
        inflight: InFlight,
        *,
        tagged: bool = False,
    ) -> None:
        self._host = host
        self._tagged = tagged
        self._locks = locks
        self._settings = settings
        self._inflight = inflight
        self._sysfs = inflight.sysfs
        self._multipath = Multipath(
            host, timeout=settings.command_timeout, flush_busy_for=settings.flush_busy_for
        )
        self._executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="mpb-path")

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
            records=self._inflight.records,
            sysfs=self._sysfs,
            tagged=self._tagged,
        )

    def attach_single(self, paths: Sequence[Path], chap: Chap | None) -> Attachment:
        """Without multipath: the first path that works, one at a time, like os-brick."""
        bring_up = self._bring_up(chap)
        results: list[PathResult] = []
        for path in paths:
            result = bring_up.run(path, self._inflight.records.ticket())
            if result.state is PathState.ACTIVE and result.device:
                results.append(result)
                return Attachment(f"/dev/{result.device}", result.wwid, None, tuple(results))
            results.append(self._release_failed(result))
        raise _no_path_error(results)

    def attach(self, paths: Sequence[Path], chap: Chap | None) -> Attachment:
        """Attach through every path; see the module docstring.

        :raises NoUsablePathError: no path came up.
        :raises DeviceNotReadyTimeout: paths came up, the map never answered usable.
        :raises AttachError: anything else went wrong (the cause is chained).
        """
        bring_up = self._bring_up(chap)
        # Our paths' records go before later attaches' ones.
        ticket = self._inflight.records.ticket()
        volume = Volume(self._settings.gather, self._settings.gather_udev)
        submit = self._executor.submit
        tasks = PathTasks(
            self._host,
            {submit(self._path_task, bring_up, path, ticket, volume): path for path in paths},
        )
        start = self._host.monotonic()
        try:
            map_name, usable = watch(
                tasks,
                volume,
                sysfs=self._sysfs,
                multipath=self._multipath,
                settings=self._settings,
            )
            wwid = volume.wwid
            if not usable or wwid is None or map_name is None:
                self._abandon(tasks, volume)
                if tasks.in_map():
                    waited = self._host.monotonic() - start
                    raise DeviceNotReadyTimeout(map_name or str(wwid), waited)
                raise _no_path_error(list(tasks.results.values()))
        except MultipathBrickError:
            raise
        except Exception as error:
            LOG.warning("attach failed, undoing it: %s", error, exc_info=True)
            self._abandon(tasks, volume)
            raise AttachError(str(error) or type(error).__name__) from error
        self._inflight.attached(wwid, volume)
        elapsed = self._host.monotonic() - start
        ordered = []
        for future, path in tasks.futures.items():
            if future in tasks.out:
                ordered.append(PathResult.pending(path, elapsed))
                self._inflight.pending.add(wwid, submit(self._late, future, path))
            else:
                ordered.append(tasks.results[path])
        return Attachment(f"/dev/{map_name}", wwid, map_name, tuple(ordered))

    def _path_task(
        self, bring_up: PathBringUp, path: Path, ticket: int, volume: Volume
    ) -> PathResult:
        """One path, from nothing to a disk in the volume's map (its own thread).

        Joining the map happens here, not in the attach's loop, so that a disk
        udev is slow to process delays only its own path, never the return.
        Never raises an ``Exception``: any error fails the path, and a failed
        path has released what it made.
        """
        result = bring_up.run(path, ticket, logged_in=lambda: volume.log_in(path))
        if result.state is not PathState.ACTIVE or result.device is None:
            volume.settle(path)
            return self._release_failed(result)
        try:
            wwid = volume.claim(result.wwid, result.device, self._multipath)
            if result.wwid is None or result.wwid != wwid:
                failure: str | None = (
                    f"WWID {result.wwid} differs from the volume's {wwid}: not the same LUN"
                )
            else:
                failure = self._join_map(volume, wwid, path, result.device)
        except Exception as error:  # noqa: BLE001 - the path fails, the attach goes on
            LOG.warning("%s: %s", path, error, exc_info=True)
            failure = f"unexpected error: {error}"
        if failure is None:
            return result
        volume.settle(path)
        return self._release_failed(
            dataclasses.replace(result, state=PathState.FAILED, reason=failure)
        )

    def _release_failed(self, result: PathResult) -> PathResult:
        """Release what a failed path made; the result says what is left, if anything."""
        if result.state is PathState.ACTIVE:
            return result
        if not (result.device or result.new_session or result.new_record):
            return result
        if self._inflight.releaser.release_path(result):
            return result  # something stayed: the abandon or the detach tries again
        return dataclasses.replace(result, device=None, new_session=False, new_record=False)

    def _join_map(self, volume: Volume, wwid: str, path: Path, device: str) -> str | None:
        """Hand the disk to multipathd; None once a map holds it, else why not.

        The first disk to join makes the map and pulls in every known disk of
        the WWID; later disks arrive by uevent once the WWID is whitelisted.
        multipathd reads a disk's WWID from udev's database, so asking it to add
        a disk udev has not processed yet only leaves a path without WWID that
        udev's own event must repair (seen in the lab, where udev ran a minute
        behind with 32 new disks). So we ask only once udev is done with the
        disk, then again, backing off so as not to flood a busy multipathd,
        until a map holds the disk (it has a dm holder) or ``ready_timeout``
        passes. Once multipathd answered ok, it holds the disk (maybe aside
        until udev has processed a new map) and the path counts as handed over:
        the attach does not wait for it. The WWID lock is held only while
        asking, never while waiting.
        """
        deadline = Deadline.after(self._host, self._settings.ready_timeout)
        asks = Backoff(self._host, _ADD_PATH_RETRY, _ADD_PATH_RETRY_MAX)
        looks = pauses(self._settings.poll, BUSY_LOOK_MAX)
        udev_done = False
        volume.arrive(path)
        while True:
            # Looking is cheap (sysfs) and catches the disk as soon as another
            # path's "add path" or udev's event puts it in the map.
            if self._sysfs.holders(device):
                volume.settle(path)  # a map holds it: nothing left to gather
                return None
            if volume.is_gone():
                return "the volume was detached meanwhile"
            if deadline.passed():
                waited = f"{deadline.waited():.0f}s"
                if not udev_done:
                    return f"udev had not processed {device} after {waited}"
                return f"multipathd did not take {device} into the map of {wwid} in {waited}"
            udev_done = udev_done or self._sysfs.udev_processed(device)
            now = self._host.monotonic()
            if udev_done and asks.due() and volume.listed(path, device, now, self._multipath):
                with self._locks.wwid(wwid):
                    if volume.is_gone():
                        continue
                    if self._sysfs.holders(device):
                        volume.settle(path)
                        return None  # another path's "add path" took it meanwhile
                    taken = self._multipath.add_path(device)
                if taken:
                    volume.hand_over(path)
                    asks.ask_after(_ADD_PATH_AFTER_OK)
                else:
                    asks.asked()
                continue
            self._host.sleep(min(next(looks), deadline.left()))

    def _late(self, future: Future[PathResult], path: Path) -> PathResult:
        """Log the end of a path that was still pending when attach returned.

        The path task never raises an ``Exception``; should it do so all the
        same, the path is reported failed rather than the error lost.
        """
        try:
            result = future.result()
        except Exception as error:  # noqa: BLE001 - reported, never swallowed
            LOG.warning("late path %s: unexpected error", path, exc_info=True)
            return PathResult(path, PathState.FAILED, reason=f"unexpected error: {error}")
        if result.state is PathState.ACTIVE:
            LOG.info("late path %s joined as %s", result.path, result.device)
        else:
            LOG.warning("late path %s failed: %s", result.path, result.reason)
        return result

    def _abandon(self, tasks: PathTasks, volume: Volume) -> None:
        """The attach failed: stop joins, wait for every path, undo what each made.

        Every step is tried whatever the others did; what could not be undone
        is logged (the next detach of the volume removes it).
        """
        if volume.wwid is not None:
            with self._locks.wwid(volume.wwid):
                volume.mark_gone()
        else:
            volume.mark_gone()
        tasks.wait_all()
        if volume.wwid is not None:
            try:
                self._remove_map(volume.wwid)
            except Exception as error:  # noqa: BLE001 - logged, the rest still undone
                LOG.warning("undoing the map of %s: %s", volume.wwid, error)
        for result in tasks.results.values():
            if result.device is not None or result.new_session or result.new_record:
                self._inflight.releaser.release_path(result)

    def _remove_map(self, wwid: str) -> None:
        with self._locks.wwid(wwid):
            map_name = self._sysfs.map_for_wwid(wwid)
            if map_name is not None:
                flushed = self._multipath.flush(self._sysfs.dm_name(map_name) or wwid)
                if not flushed.ok and self._sysfs.map_for_wwid(wwid) is not None:
                    LOG.warning("could not flush %s: %s", map_name, flushed.stderr.strip())
                    return
            self._multipath.remove_wwid(wwid)


def _no_path_error(results: Sequence[PathResult]) -> NoUsablePathError:
    failures = [(str(r.path), r.reason or r.state.value) for r in results]
    if results and all(r.auth_failed for r in results):
        return AuthenticationError(failures)
    return NoUsablePathError(failures)
