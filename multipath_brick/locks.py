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

import contextlib
import hashlib
import itertools
import os
import threading
from collections.abc import Iterator
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


class TicketLock:
    """A thread lock handed over in ticket order, lowest first, to ``holders`` keys at once.

    Waiters holding the same ticket go one after the other, before any later
    ticket. Used for iscsiadm's node database: with one ticket per attach, an
    attach makes all its records before a later attach makes any, and can log
    in while the later ones still wait, instead of every attach getting its
    last record near the end of the queue.

    A ``key`` is never held twice at once. With ``holders`` > 1, the earliest
    waiter whose key is free goes when a place is free: the records of another
    target (another key) may be written beside this target's.
    """

    def __init__(self, holders: int = 1) -> None:
        self._cond = threading.Condition()
        self._holders = max(1, holders)
        self._held: list[str] = []  # the keys of the holders
        self._waiting: list[tuple[int, int, str]] = []  # (ticket, arrival, key)
        self._tickets = itertools.count()
        self._arrivals = itertools.count()

    def ticket(self) -> int:
        """A ticket later than every ticket handed out before."""
        with self._cond:
            return next(self._tickets)

    def _next(self) -> tuple[int, int, str] | None:
        """The waiter to go next: the earliest whose key nobody holds, if a place is free."""
        if len(self._held) >= self._holders:
            return None
        return next((w for w in sorted(self._waiting) if w[2] not in self._held), None)

    @contextlib.contextmanager
    def turn(self, ticket: int | None = None, key: str = "") -> Iterator[None]:
        """Hold the lock, once every earlier ticket has had its turn (a new ticket if None).

        :param key: what may not be held twice at once (a target's IQN).
        """
        with self._cond:
            mine = (next(self._tickets) if ticket is None else ticket, next(self._arrivals), key)
            self._waiting.append(mine)
            while self._next() != mine:
                self._cond.wait()
            self._waiting.remove(mine)
            self._held.append(key)
        try:
            yield
        finally:
            with self._cond:
                self._held.remove(key)
                self._cond.notify_all()
