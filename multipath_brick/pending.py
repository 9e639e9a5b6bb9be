"""Paths still coming up after ``connect_volume`` returned, and what became of them.

A path that is still logging in (a slow or dead portal) or joining the map
when the attach returns goes on in the background (:mod:`multipath_brick.attach`).
Its end is logged when it happens (a failure at WARNING, with its reason) and
kept here until :meth:`ISCSIMultipathConnector.wait_for_pending
<multipath_brick.ISCSIMultipathConnector.wait_for_pending>` reports it, once.
A detach of the volume waits for its background paths first (see
:mod:`multipath_brick.detach`).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from concurrent.futures import Future, wait

from multipath_brick.iscsi.paths import PathResult, PathState

#: Failures kept for the next report at most; older ones were logged anyway.
KEPT_FAILURES = 1024


@dataclasses.dataclass(frozen=True)
class PendingReport:
    """What :meth:`PendingPaths.wait` found. True when no background path is left.

    :ivar remaining: background paths still running when the wait ended.
    :ivar joined: background paths that joined their map since the last report.
    :ivar failed: background paths that failed since the last report, each
        with its ``reason`` (a dead portal, a disk multipathd would not take,
        or an unexpected error); what they had made was removed.
    """

    remaining: int = 0
    joined: tuple[PathResult, ...] = ()
    failed: tuple[PathResult, ...] = ()

    def __bool__(self) -> bool:
        return self.remaining == 0


class PendingPaths:
    """Background path tasks, by WWID, so a detach can wait for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, list[Future[PathResult]]] = {}
        self._joined: collections.deque[PathResult] = collections.deque(maxlen=KEPT_FAILURES)
        self._failed: collections.deque[PathResult] = collections.deque(maxlen=KEPT_FAILURES)

    def add(self, wwid: str, future: Future[PathResult]) -> None:
        with self._lock:
            self._futures.setdefault(wwid, []).append(future)

    def wait(self, wwid: str | None = None, timeout: float | None = None) -> PendingReport:
        """Wait for the background paths of one volume (or of all).

        Only a wait for all (``wwid`` None) reports the ended paths: a detach
        waiting for its volume keeps them for the caller's next
        :meth:`ISCSIMultipathConnector.wait_for_pending`.
        """
        with self._lock:
            if wwid is None:
                futures = [f for fs in self._futures.values() for f in fs]
            else:
                futures = list(self._futures.get(wwid, ()))
        _, not_done = wait(futures, timeout=timeout)
        with self._lock:
            for key in list(self._futures):
                for future in self._futures[key]:
                    if future.done():
                        self._keep(future)
                self._futures[key] = [f for f in self._futures[key] if not f.done()]
                if not self._futures[key]:
                    del self._futures[key]
            if wwid is not None:
                return PendingReport(len(not_done))
            joined, failed = tuple(self._joined), tuple(self._failed)
            self._joined.clear()
            self._failed.clear()
        return PendingReport(len(not_done), joined, failed)

    def _keep(self, future: Future[PathResult]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the process is going away (the task catches every Exception)
        result = future.result()
        (self._joined if result.state is PathState.ACTIVE else self._failed).append(result)
