"""The map one attach builds: its WWID, when to whitelist it, and whether it is gone.

Shared by the path tasks of one attach (:mod:`multipath_brick.attach`). Every
method is safe to call from any of them.
"""

from __future__ import annotations

import threading

from multipath_brick.iscsi.paths import Path
from multipath_brick.multipath.control import Multipath


class Volume:
    """The map one attach builds. The first WWID a path finds is the volume's;
    :meth:`listed` whitelists it once the paths are gathered; :meth:`is_gone`
    tells late joins that the volume was detached or abandoned."""

    def __init__(self, gather: float, gather_udev: float) -> None:
        self.wwid: str | None = None
        #: Paths whose disk multipathd accepted (it adds them to the map itself).
        self.handed: frozenset[Path] = frozenset()
        self._gather = gather
        self._gather_udev = gather_udev
        #: Paths whose disk is ready for multipathd, or that have none.
        self._settled: set[Path] = set()
        #: Paths that have a disk (udev may not have processed it yet).
        self._arrived: set[Path] = set()
        #: Paths that have a session (their disk follows a scan away).
        self._logged_in: set[Path] = set()
        self._first_ready: float | None = None
        self._listed = False
        self._gone = threading.Event()
        self._lock = threading.Lock()

    def hand_over(self, path: Path) -> None:
        with self._lock:
            self.handed = self.handed | {path}

    def is_gone(self) -> bool:
        """Detached or abandoned: a late path must not join (or make) the map."""
        return self._gone.is_set()

    def mark_gone(self) -> None:
        self._gone.set()

    def claim(self, wwid: str | None, device: str, multipath: Multipath) -> str | None:
        """The volume's WWID: the first path's (whitelisted at once if ``gather`` is 0).

        :param device: the path's disk, which carries ``wwid``.
        """
        with self._lock:
            if self.wwid is None and wwid is not None:
                if self._gather <= 0:
                    multipath.add_wwid(wwid, device)
                    self._listed = True
                self.wwid = wwid
            return self.wwid

    def log_in(self, path: Path) -> None:
        """The path has its session: the gathering waits for its disk."""
        with self._lock:
            self._logged_in.add(path)

    def arrive(self, path: Path) -> None:
        """The path has its disk: the gathering waits for udev to process it."""
        with self._lock:
            self._arrived.add(path)

    def settle(self, path: Path) -> None:
        """The path will bring no disk: the gathering does not wait for it."""
        with self._lock:
            self._settled.add(path)

    def listed(self, path: Path, device: str, now: float, multipath: Multipath) -> bool:
        """The path's disk ``device``, of the volume's WWID, is ready: is the
        WWID whitelisted yet?

        With ``find_multipaths``, multipathd maps only a whitelisted WWID, and
        it makes the map from the first disk it hears of. Whitelisting once
        the disks are ready lets one ``add path`` make the map with all of
        them, where an early whitelist makes multipathd reload the map for each
        later disk, with a round of udev work on the map each time. What is
        waited for, from the first ready disk: a disk udev has not processed
        yet, up to ``gather_udev`` seconds; a path logged in whose disk has not
        appeared yet (the scan and sd's probe, about a second), up to
        ``gather`` seconds. A path still logging in is not waited for: a dead
        portal takes its login timeouts to fail, and a late disk joins the map
        by its own uevent.
        """
        with self._lock:
            if self._listed:
                return True
            self._settled.add(path)
            if self._first_ready is None:
                self._first_ready = now
            waited = now - self._first_ready
            if self._arrived - self._settled and waited < self._gather_udev:
                return False  # a disk of the volume is still with udev
            if self._logged_in - self._arrived - self._settled and waited < self._gather:
                return False  # a logged-in path's disk is on its way
            if self.wwid is None:  # pragma: no cover - a ready disk has claimed it
                return False
            multipath.add_wwid(self.wwid, device)
            self._listed = True
            return True
