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
   (``multipath -w``), where the attach put it: left there, multipathd would
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

from multipath_brick import verbs
from multipath_brick.exception import (
    CommandError,
    DetachError,
    FlushError,
    LockPathError,
    LockTimeout,
    MultipathBrickError,
)
from multipath_brick.host.base import CommandResult, Host
from multipath_brick.iscsi.iscsiadm import Iscsiadm
from multipath_brick.iscsi.login import NODE_DB, pauses
from multipath_brick.iscsi.paths import Path, PathResult
from multipath_brick.iscsi.properties import Target
from multipath_brick.locks import Locks
from multipath_brick.multipath.control import Multipath
from multipath_brick.scsi.sysfs import Sysfs

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


class Releaser:
    """Removes disks and unused sessions, one path at a time."""

    def __init__(
        self,
        host: Host,
        locks: Locks,
        *,
        command_timeout: float,
        flush_busy_for: float = 10.0,
        poll: float = 0.05,
        sysfs: Sysfs | None = None,
    ) -> None:
        self._host = host
        self._locks = locks
        self._timeout = command_timeout
        self._poll = poll
        self.sysfs = sysfs or Sysfs(host)
        self.multipath = Multipath(host, timeout=command_timeout, flush_busy_for=flush_busy_for)
        self._iscsiadm = Iscsiadm(host, timeout=command_timeout)

    def remove_disk(self, device: str) -> list[str]:
        """Forget the path in multipathd, delete the SCSI device, wait for it to go."""
        if not self.sysfs.exists(device):
            return []
        self.multipath.remove_path(device)
        try:
            self._host.write(verbs.ScsiDelete(device), timeout=self._timeout)
        except (OSError, CommandError) as error:
            return [f"delete {device}: {error}"]
        deadline = self._host.monotonic() + self._timeout
        while self.sysfs.exists(device):
            if self._host.monotonic() > deadline:
                return [f"{device} still present {self._timeout:.0f}s after delete"]
            self._host.sleep(self._poll)
        return []

    def release_session(self, path: Path) -> list[str]:
        """Log out the path's session if no disk is left on it; delete its record."""
        target, iface = path.target, path.iface
        try:
            with self._locks.node(target.portal, target.iqn, iface):
                session = self.sysfs.find_session(target.iqn, target.portal, iface)
                if session is not None and self.sysfs.has_disk_luns(session):
                    # Another LUN still lives on this session, or is arriving: an
                    # attach lets go of this lock once its LUN's SCSI device exists,
                    # before sd has made the block device.
                    return []
                try:
                    if session is not None:
                        self._iscsiadm.logout(target, iface)
                    with NODE_DB.turn(key=target.iqn):
                        deleted = self._iscsiadm.delete_node(target, iface)
                except CommandError as error:
                    return [f"release {path}: {error}"]
                if not deleted:
                    # iscsiadm refused: a session uses the record that sysfs did not
                    # show us (a read failed, or it was still being set up). Say so,
                    # so that the caller detaches again, instead of leaving it silently.
                    return [f"release {path}: a session still uses its node record"]
            return []
        except (LockTimeout, LockPathError) as error:  # this record stays; the rest goes on
            return [f"release {path}: {error}"]

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
    """The detach flow; see the module docstring."""

    def __init__(
        self,
        host: Host,
        locks: Locks,
        releaser: Releaser,
        *,
        wait_pending: Callable[[str], object],
        forget: Callable[[str], None],
        udev_settle: float = 120.0,
    ) -> None:
        self._host = host
        self._locks = locks
        self._releaser = releaser
        self._sysfs = releaser.sysfs
        self._multipath = releaser.multipath
        self._wait_pending = wait_pending
        self._forget = forget
        self._udev_settle = udev_settle

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
        if wwid is not None:
            self._wait_pending(wwid)
            disks, session_paths = self._disks(paths, discovery_iqns)
            with self._locks.wwid(wwid):
                self._forget(wwid)
                map_name = self._sysfs.map_for_wwid(wwid)
                map_left = False
                if map_name is not None:
                    disks += [d for d in self._sysfs.slaves(map_name) if d not in disks]
                    self._let_udev_finish(map_name)
                    flushed = self._multipath.flush(self._sysfs.dm_name(map_name) or wwid)
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
                                return
                            raise error
                        errors.append(str(error))
                        map_left = True
                errors += _each(self._releaser.remove_disk, disks)
                if map_left:  # os-brick drops a map it could not flush, paths gone
                    errors += self._del_map(wwid)
                    map_left = self._sysfs.map_for_wwid(wwid) is not None
                if not map_left:  # a forced detach whose map stayed keeps the WWID
                    errors += self._forget_wwid(wwid)
        else:
            errors += _each(self._releaser.remove_disk, disks)
        records = {(p.target.portal, p.target.iqn, p.iface): p for p in session_paths}
        errors += _each(self._releaser.release_session, list(records.values()))
        if errors:
            if ignore_errors:
                LOG.warning("detach finished with errors: %s", "; ".join(errors))
                return
            raise DetachError(errors)

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
        """Wait (at most ``udev_settle`` seconds) until udev has no event left.

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
        deadline = self._host.monotonic() + self._udev_settle
        looks = pauses(0.05)
        waited = False
        while not self._sysfs.udev_idle() and self._host.monotonic() < deadline:
            waited = True
            self._host.sleep(next(looks))
        if waited:
            LOG.info("waited for udev before flushing %s", map_name)
