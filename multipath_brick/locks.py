"""Named locks across threads and processes: one per node record, one per WWID.

There is no host-wide lock: two volumes on different targets never wait for
each other. What needs ordering is narrow:

* a node record (portal, iqn, iface): creating it, logging in and scanning a
  LUN on its session must not interleave with a detach deciding that the session
  is unused and logging it out;
* a WWID: adding paths to a map must not interleave with flushing it.

A connect never holds both kinds at once, so they cannot deadlock. A path's lock
may be released by another thread than the one that took it (a late path
finishes in the background), which is why these are not ``lockutils.lock``
context managers.
"""

from __future__ import annotations

import hashlib
import os
import threading
from types import TracebackType

import fasteners


class NamedLock:
    """An exclusive lock: a thread lock in this process plus a file lock across processes."""

    # Never forgotten: a dropped entry while held would let two threads in. Names are
    # bounded by the host's node records and volumes.
    _local: dict[str, _Shared] = {}
    _local_guard = threading.Lock()

    def __init__(self, lock_path: str, name: str) -> None:
        self.name = name
        with NamedLock._local_guard:
            shared = NamedLock._local.get(name)
            if shared is None:
                shared = _Shared(os.path.join(lock_path, f"multipath-brick-{name}"))
                NamedLock._local[name] = shared
        self._shared = shared

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock; False when ``timeout`` (seconds) passed first."""
        if not self._shared.thread_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        try:
            got = self._shared.file_lock.acquire(timeout=timeout)
        except BaseException:
            self._shared.thread_lock.release()
            raise
        if not got:
            self._shared.thread_lock.release()
        return bool(got)

    def release(self) -> None:
        self._shared.file_lock.release()
        self._shared.thread_lock.release()

    def __enter__(self) -> NamedLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Shared:
    # One per name in this process: fcntl locks are per process, so threads of one
    # process must first agree among themselves.
    def __init__(self, path: str) -> None:
        self.thread_lock = threading.Lock()
        self.file_lock = fasteners.InterProcessLock(path)


class Locks:
    """The library's locks, in one directory (``lock_path``)."""

    def __init__(self, lock_path: str) -> None:
        os.makedirs(lock_path, exist_ok=True)
        self.lock_path = lock_path

    def node(self, portal: str, iqn: str, iface: str) -> NamedLock:
        """The lock of one node record."""
        digest = hashlib.sha256(f"{portal}\0{iqn}\0{iface}".encode()).hexdigest()[:24]
        return NamedLock(self.lock_path, f"node-{digest}")

    def wwid(self, wwid: str) -> NamedLock:
        """The lock of one volume's map."""
        digest = hashlib.sha256(wwid.encode()).hexdigest()[:24]
        return NamedLock(self.lock_path, f"wwid-{digest}")
