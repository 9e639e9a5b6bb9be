"""The attach's watch over its path tasks: when :meth:`.Attacher.attach` may return.

The path tasks do the work (:meth:`.Attacher._path_task`); the attach only
watches them (:func:`watch`) and the map they build.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait

from multipath_brick.host.base import Host
from multipath_brick.iscsi.paths import Path, PathResult, PathState
from multipath_brick.multipath.control import Multipath
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.settings import AttachSettings
from multipath_brick.volume import Volume
from multipath_brick.waiting import BUSY_LOOK_MAX, Backoff, Deadline


class PathTasks:
    """The path tasks of one attach, as the attach watches them.

    :param host: whose clock and sleep.
    :param futures: each task, and its path, in the order of the paths.

    :ivar results: the results of the tasks that ended, by path.
    :ivar out: the tasks still running.
    """

    def __init__(self, host: Host, futures: dict[Future[PathResult], Path]) -> None:
        self.host = host
        self.futures = futures
        self.results: dict[Path, PathResult] = {}
        self.out: set[Future[PathResult]] = set(futures)

    def wait(self, pause: float) -> None:
        """Wait ``pause`` seconds at most; a task's end wakes it."""
        if not self.out:
            self.host.sleep(pause)
            return
        done, self.out = wait(self.out, timeout=pause, return_when=FIRST_COMPLETED)
        for future in done:
            self._keep(future.result())

    def wait_all(self) -> None:
        """Wait for every task to end (the tasks never raise an ``Exception``)."""
        for future in self.futures:
            self._keep(future.result())
        self.out = set()

    def _keep(self, result: PathResult) -> None:
        self.results[result.path] = result

    def in_map(self) -> bool:
        """Whether a path has joined the map."""
        return any(r.state is PathState.ACTIVE for r in self.results.values())

    def handed_over(self, volume: Volume) -> bool:
        """Whether every task still out is a disk multipathd holds (and adds itself)."""
        return all(self.futures[f] in volume.handed for f in self.out)


def watch(
    tasks: PathTasks,
    volume: Volume,
    *,
    sysfs: Sysfs,
    multipath: Multipath,
    settings: AttachSettings,
) -> tuple[str | None, bool]:
    """Watch the paths until the attach may return: (the map, whether it is usable).

    Until a path is in the map only a path's end can change anything, and that
    wakes the wait. Then multipathd is asked whether the map is usable at a
    widening interval, from ``poll`` (it is busy enough already; 8 attaches
    waking every poll for nothing took CPU from the udev workers they all wait
    for). Once it is, the paths still out get ``grace`` seconds, unless each is
    a disk multipathd holds and will add itself: nothing the attach can do
    makes that faster. When every path has ended (each is bounded by its own
    timeouts) and the map is not usable, it gets ``ready_timeout`` more.
    """
    host = tasks.host
    asks = Backoff(host, settings.poll, BUSY_LOOK_MAX)
    map_name: str | None = None
    usable: Deadline | None = None  # the grace, from when the map answered usable
    ended: Deadline | None = None  # the ready_timeout, from when every path ended
    while True:
        tasks.wait(asks.pause if tasks.in_map() else BUSY_LOOK_MAX)
        wwid = volume.wwid
        if usable is None and tasks.in_map() and wwid is not None and asks.due():
            grace = Deadline.after(host, settings.grace)  # from the ask, not its answer
            map_name = sysfs.map_for_wwid(wwid)
            if map_name is not None and multipath.usable(wwid, map_name):
                usable = grace
            asks.asked()
        if usable is not None:
            if not tasks.out or usable.passed() or tasks.handed_over(volume):
                return map_name, True
        elif not tasks.out:
            if not tasks.in_map():
                return map_name, False  # every path failed
            ended = ended or Deadline.after(host, settings.ready_timeout)
            if ended.passed():
                return map_name, False
