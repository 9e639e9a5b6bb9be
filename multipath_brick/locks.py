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
context managers: a thread lock first, then a POSIX record lock (``lockf``)
on the lock file; neither is tied to the thread that took it. POSIX locks
belong to the process, so its threads must first agree among themselves. Not
``flock``: a forked child shares an ``flock`` (a privsep daemon forked on the
first privileged call, as os-brick's may be, which may come while a lock is
held, would hold it for good); a POSIX lock is never inherited.

Every wait is bounded (:data:`DEFAULT_TIMEOUT`) and ends in
:class:`~multipath_brick.exception.LockTimeout` naming what the lock guards:
a lock file is in a directory only root (or the service's user) can write, but
a stuck holder must still not stop every later attach for good.

The lock files live in a checked directory (:mod:`multipath_brick.lockdir`),
held open; each file is opened relative to it with ``O_NOFOLLOW``, so a
symlink planted in its place is refused, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from multipath_brick.exception import LockPathError, LockTimeout
from multipath_brick.lockdir import choose_lock_path, open_lock_dir
from multipath_brick.waiting import pauses

LOG = logging.getLogger(__name__)

# Longer than any hold with the default settings: the longest is a detach's
# WWID lock when every command runs into its timeout (a flush may take ten
# 30 s command timeouts, then each of four disks three more), about 11
# minutes; a node lock is held through a login (35 s at worst) and three
# scans. Waits add up when many attaches queue for one record, but each of
# those holders is quick once the session exists.
DEFAULT_TIMEOUT = 900.0
_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
# Another process's hold of a lock file ends when its step does (a record write,
# a login, a flush): looked at again soon, then less and less often. On the real
# clock, not the host's: the lock files are real even on a fake host.
_FIRST_LOOK = 0.01
_LOOK_MAX = 0.2


class _Directory:
    """A checked lock directory, held open for the life of the process."""

    def __init__(self, path: str, fd: int) -> None:
        info = os.fstat(fd)
        self.path = path
        self.fd = fd
        self.key = (info.st_dev, info.st_ino)


class _Shared:
    """The in-process side of one lock file: its thread lock, and the file while held."""

    def __init__(self) -> None:
        self.thread_lock = threading.Lock()
        self.fd: int | None = None


# Never forgotten: a dropped entry while held would let two threads in. Keyed by
# the directory's inode, not its path: two connectors with one directory (by
# whatever path) must share the thread lock, two directories must not.
# Bounded by the host's node records and volumes.
_DIRECTORIES: dict[tuple[int, int], _Directory] = {}
_SHARED: dict[tuple[int, int, str], _Shared] = {}
_GUARD = threading.Lock()


def _directory(path: str, uid: int | None) -> _Directory:
    fd = open_lock_dir(path, uid=uid)
    found = _Directory(path, fd)
    with _GUARD:
        known = _DIRECTORIES.setdefault(found.key, found)
    if known is not found:
        os.close(fd)
    return known


class NamedLock:
    """An exclusive lock: a thread lock in this process plus a file lock across processes.

    :param directory: the checked directory of the lock file.
    :param name: the lock file's name in it.
    :param purpose: what the lock guards, for errors and logs (no secret).
    :param timeout: seconds :meth:`acquire` waits by default.
    """

    def __init__(self, directory: _Directory, name: str, purpose: str, timeout: float) -> None:
        self.name = name
        self.purpose = purpose
        self.timeout = timeout
        self.path = os.path.join(directory.path, name)
        self._directory = directory
        with _GUARD:
            self._shared = _SHARED.setdefault((*directory.key, name), _Shared())

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting at most ``timeout`` seconds (default: the lock's).

        :raises LockTimeout: another thread or process held it all that time.
        :raises LockPathError: the lock file is a symlink or not a regular file.
        """
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        if not self._shared.thread_lock.acquire(timeout=max(limit, 0.0)):
            raise LockTimeout(self.purpose, time.monotonic() - start, self.path)
        try:
            self._shared.fd = self._lock_file(start, start + limit)
        except BaseException:
            self._shared.thread_lock.release()
            raise
        waited = time.monotonic() - start
        if waited >= 1.0:
            LOG.debug("waited %.1fs for the lock of %s", waited, self.purpose)

    def _lock_file(self, start: float, deadline: float) -> int:
        fd = self._open()
        try:
            looks = pauses(_FIRST_LOOK, _LOOK_MAX, growth=2.0)
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                now = time.monotonic()
                if now >= deadline:
                    raise LockTimeout(self.purpose, now - start, self.path)
                time.sleep(min(next(looks), deadline - now))
        except BaseException:
            os.close(fd)
            raise

    def _open(self) -> int:
        try:
            fd = os.open(self.name, _FILE_FLAGS, 0o600, dir_fd=self._directory.fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise LockPathError(
                    self.path, "is a symlink; lock files are never followed"
                ) from None
            raise LockPathError(self.path, f"cannot open it: {error.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LockPathError(self.path, "is not a regular file")
        return fd

    def release(self) -> None:
        """Let go of the lock; any thread may, not only the one that took it."""
        fd, self._shared.fd = self._shared.fd, None
        try:
            if fd is not None:
                # Our only descriptor of the file (the thread lock sees to
                # it): closing it drops the process's POSIX lock.
                os.close(fd)
        finally:
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


class Locks:
    """The library's locks, in one checked directory.

    :param lock_path: the directory; None to choose it as
        :func:`~multipath_brick.lockdir.choose_lock_path` does.
    :param timeout: seconds every acquire waits at most.
    :param conf: the oslo.config object to read ``lock_path`` from (default ``cfg.CONF``).
    :param uid: who may own the directory besides root (default: the effective uid).

    The directory is chosen and checked on first use (:meth:`prepare`), not
    here: a service's configuration may be loaded after its connectors are made.
    """

    def __init__(
        self,
        lock_path: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        conf: Any = None,
        uid: int | None = None,
    ) -> None:
        self.timeout = timeout
        self._requested = lock_path
        self._conf = conf
        self._uid = uid
        self._directory: _Directory | None = None
        self._guard = threading.Lock()

    @property
    def lock_path(self) -> str | None:
        """The directory in use, once :meth:`prepare` chose it."""
        return self._directory.path if self._directory else None

    def prepare(self) -> str:
        """Choose and check the directory (once); its path.

        :raises LockPathError: none is configured, or it is not safe.
        """
        return self._checked().path

    def _checked(self) -> _Directory:
        with self._guard:
            if self._directory is None:
                path = choose_lock_path(self._requested, conf=self._conf)
                self._directory = _directory(path, self._uid)
            return self._directory

    def node(self, portal: str, iqn: str, iface: str) -> NamedLock:
        """The lock of one node record."""
        digest = hashlib.sha256(f"{portal}\0{iqn}\0{iface}".encode()).hexdigest()[:24]
        return self._lock(f"node-{digest}", f"node record {iqn} {portal} iface {iface}")

    def wwid(self, wwid: str) -> NamedLock:
        """The lock of one volume's map."""
        digest = hashlib.sha256(wwid.encode()).hexdigest()[:24]
        return self._lock(f"wwid-{digest}", f"map of WWID {wwid}")

    def volume(self, vol_id: str) -> NamedLock:
        """The lock of one volume id (the host agent's attach and detach of it)."""
        digest = hashlib.sha256(vol_id.encode()).hexdigest()[:24]
        return self._lock(f"volume-{digest}", f"volume {vol_id}")

    def _lock(self, name: str, purpose: str) -> NamedLock:
        return NamedLock(self._checked(), f"multipath-brick-{name}", purpose, self.timeout)


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
