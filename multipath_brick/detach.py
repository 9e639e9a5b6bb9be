"""Detach: flush the map, remove the disks, log out what nobody else uses.

The order is the kernel's, not a preference:

1. flush the map first (``multipath -f``): removing its paths while it still
   queues I/O would lose that I/O. If the flush fails and ``force`` is not set,
   stop there and leave everything as it was;
2. for each disk, make multipathd forget the path, then delete the SCSI device
   and wait until the kernel has let it go;
3. for each session, log out only when no other LUN still has a disk on it,
   then delete the node record;
4. once the map is gone, take its WWID out of ``/etc/multipath/wwids``
   (as ``multipath -w``), where the attach put it: left there, multipathd would
   map the LUN again whenever one of its disks appears.

A detach after a process was killed midway (attaching or detaching) finds
what is left through sysfs and removes it the same way. An unexpected error
(a failing read of sysfs, say) is reported as :class:`.DetachError`.

``force`` tries every step and raises the errors together; ``ignore_errors``
raises nothing. A detach of something not (or no longer) attached succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from multipath_brick.exception import CommandError, DetachError, FlushError, MultipathBrickError
from multipath_brick.host.base import CommandResult, Host
from multipath_brick.inflight import InFlight
from multipath_brick.iscsi.paths import Path
from multipath_brick.iscsi.properties import Target
from multipath_brick.locks import Locks
from multipath_brick.multipath.control import Multipath
from multipath_brick.settings import AttachSettings
from multipath_brick.waiting import wait_until

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


def _why(result: CommandResult) -> str:
    """What a failed command said, for an error: its words, else how it ended."""
    if result.timed_out:
        return f"{' '.join(result.argv)} timed out after {result.duration:.0f} s"
    said = result.stderr.strip() or result.stdout.strip()
    return said or f"{' '.join(result.argv)} exited {result.exit_code}"


def _each(step: Callable[[_T], list[str]], items: Sequence[_T]) -> list[str]:
    """Run one detach step on every item at once; their errors, in item order.

    Disks are removed independently of each other, and each session is released
    under its own record's lock, so nothing orders them but the kernel's and
    iscsiadm's own work, which is what takes the time.
    """
    if len(items) <= 1:
        return [error for item in items for error in step(item)]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="mpb-detach") as pool:
        return [error for errors in pool.map(step, items) for error in errors]


class Detacher:
    """The detach flow; see the module docstring.

    :param host: the host.
    :param locks: the connector's locks.
    :param settings: the connector's timing; udev is waited for at most
        ``ready_timeout`` seconds when a flush finds the map in use
        (:meth:`_let_udev_finish`).
    :param inflight: what the connector's attaches share with it.
    """

    def __init__(
        self, host: Host, locks: Locks, settings: AttachSettings, inflight: InFlight
    ) -> None:
        self._host = host
        self._locks = locks
        self._inflight = inflight
        self._releaser = inflight.releaser
        self._sysfs = inflight.sysfs
        self._multipath = Multipath(
            host, timeout=settings.command_timeout, flush_busy_for=settings.flush_busy_for
        )
        self._udev_settle = settings.ready_timeout

    def _disks(self, paths: Sequence[Path], iqns: frozenset[str]) -> tuple[list[str], list[Path]]:
        """Our disks, and the paths whose sessions carry them (found by sysfs)."""
        disks: list[str] = []
        session_paths: list[Path] = list(paths)
        luns = {p.target.lun for p in paths}
        for session in self._sysfs.sessions_to({p.target.iqn for p in paths} | iqns):
            exact = [
                p
                for p in paths
                if (p.target.portal, p.target.iqn, p.iface)
                == (session.portal, session.iqn, session.iface)
            ]
            wanted = {p.target.lun for p in exact}
            if not exact and session.iqn in iqns:
                # Paths found by discovery are not in the properties: match by IQN.
                wanted = luns
                session_paths += [
                    Path(Target(session.portal, session.iqn, lun), session.iface) for lun in luns
                ]
            for lun in sorted(wanted):  # none: another volume's session, not ours to read
                disk = self._sysfs.disk(session, lun)
                if disk is not None and disk.device not in disks:
                    disks.append(disk.device)
        return disks, sorted(set(session_paths))

    def detach(
        self,
        paths: Sequence[Path],
        wwid: str | None,
        *,
        discovery_iqns: frozenset[str] = frozenset(),
        force: bool = False,
        ignore_errors: bool = False,
    ) -> None:
        """Detach a volume; see the module docstring for the rules.

        :raises FlushError: the map could not be flushed (``force`` unset).
        :raises DetachError: some steps failed, or an unexpected error.
        """
        try:
            self._detach(paths, wwid, discovery_iqns, force, ignore_errors)
        except MultipathBrickError:
            raise
        except Exception as error:
            LOG.warning("detach failed", exc_info=True)
            if not ignore_errors:
                raise DetachError([f"unexpected error: {error}"]) from error

    def _detach(
        self,
        paths: Sequence[Path],
        wwid: str | None,
        discovery_iqns: frozenset[str],
        force: bool,
        ignore_errors: bool,
    ) -> None:
        disks, session_paths = self._disks(paths, discovery_iqns)
        if wwid is None:
            wwid = next((w for d in disks if (w := self._sysfs.wwid(d))), None)
        errors: list[str] = []
        if wwid is None:
            errors += _each(self._releaser.remove_disk, disks)
            errors += self._release(session_paths)
        else:
            errors += self._detach_map(paths, wwid, discovery_iqns, force, ignore_errors)
        if errors:
            if ignore_errors:
                LOG.warning("detach finished with errors: %s", "; ".join(errors))
                return
            raise DetachError(errors)

    def _release(self, session_paths: Sequence[Path]) -> list[str]:
        """Log out the sessions nobody uses any more and delete their records."""
        records = {(p.target.portal, p.target.iqn, p.iface): p for p in session_paths}
        return _each(self._releaser.release_session, list(records.values()))

    def _detach_map(
        self,
        paths: Sequence[Path],
        wwid: str,
        discovery_iqns: frozenset[str],
        force: bool,
        ignore_errors: bool,
    ) -> list[str]:
        """Flush the map, remove its disks, forget its WWID, release the sessions;
        the errors (a failed flush without ``force`` raises or, with
        ``ignore_errors``, stops the detach with none)."""
        errors: list[str] = []
        self._inflight.wait_pending(wwid)
        disks, session_paths = self._disks(paths, discovery_iqns)
        # The sessions' logouts and record deletes (seconds when many volumes go
        # at once) need neither the WWID lock nor the wwids file: they start as
        # soon as the disks are gone, beside the WWID's removal from the wwids
        # file (which may wait for multipath-tools' lock on it).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mpb-release") as background:
            with self._locks.wwid(wwid):
                self._inflight.forget(wwid)
                map_name = self._sysfs.map_for_wwid(wwid)
                map_left = False
                if map_name is not None:
                    disks += [d for d in self._sysfs.slaves(map_name) if d not in disks]
                    flushed = self._multipath.flush(
                        self._sysfs.dm_name(map_name) or wwid,
                        on_busy=lambda: self._let_udev_finish(map_name),
                    )
                    if not flushed.ok and self._sysfs.map_for_wwid(wwid) is None:
                        # The map went anyway: a flush that outlived its timeout
                        # (multipath waits for udev after removing the map), or
                        # multipathd removing it meanwhile. Either way, done.
                        LOG.info("%s is gone although the flush said: %s", map_name, _why(flushed))
                    elif not flushed.ok:
                        error = FlushError(map_name, _why(flushed))
                        if not force:
                            if ignore_errors:
                                LOG.warning("detach stopped: %s", error)
                                return []
                            raise error
                        errors.append(str(error))
                        map_left = True
                errors += _each(self._releaser.remove_disk, disks)
                if map_left:  # os-brick drops a map it could not flush, paths gone
                    errors += self._del_map(wwid)
                    map_left = self._sysfs.map_for_wwid(wwid) is not None
                released = background.submit(self._release, session_paths)
                if not map_left:  # a forced detach whose map stayed keeps the WWID
                    errors += self._forget_wwid(wwid)
            return errors + released.result()

    def _del_map(self, wwid: str) -> list[str]:
        """A forced detach whose flush failed: its paths are gone now, so the map,
        which would otherwise stay in multipathd with no path, is dropped as
        os-brick drops it (``multipathd del map``). It fails as the flush did
        while something really holds it open; that is reported."""
        map_name = self._sysfs.map_for_wwid(wwid)
        if map_name is None:
            return []
        result = self._multipath.del_map(self._sysfs.dm_name(map_name) or wwid)
        if result.ok or self._sysfs.map_for_wwid(wwid) is None:
            return []
        return [f"remove map {map_name}: {_why(result)}"]

    def _forget_wwid(self, wwid: str) -> list[str]:
        """Take the WWID out of the wwids file, its map gone (WWID lock held)."""
        try:
            self._multipath.remove_wwid(wwid)
        except CommandError as error:
            return [f"forget WWID {wwid}: {error}"]
        return []

    def _let_udev_finish(self, map_name: str) -> None:
        """Wait (at most ``udev_settle`` seconds) until udev has no event left:
        done only after a flush found the map in use, since udev's queue is the
        whole host's (8 volumes detached at once kept it busy 4.5-6.3 s, while
        most of their maps were free to go at once).

        Every table change of a map (its creation, and each late path that
        joins it) is a "change" uevent on which udev probes the map (blkid,
        kpartx), holding it open: a flush then answers "map in use". With 100 ms
        on every portal each probe takes seconds, and the last late path joins
        just before a detach that waited for it, so the flush's own short retry
        ran out while udev was still at it. No path of ours joins any more
        (the WWID lock is held and the volume forgotten), so once udev's queue
        is empty nothing of ours holds the map: an open that remains is a real
        user, which the flush reports.
        """
        if not self._sysfs.udev_idle():
            wait_until(self._host, self._sysfs.udev_idle, self._udev_settle, 0.05)
            LOG.info("waited for udev before flushing %s", map_name)
