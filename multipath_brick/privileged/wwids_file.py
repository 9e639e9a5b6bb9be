"""multipath-tools' WWID file, edited by the daemon itself, as ``multipath -a``/``-w`` do.

With ``find_multipaths strict`` multipathd makes a map only for a WWID listed
in ``/etc/multipath/wwids``. ``multipath -a WWID`` and ``multipath -w WWID``
edit that file, but the program first reads its configuration and looks at
every block device of the host: 0.65 to 1.25 s per run in the TCG lab with 32
disks, up to 3.3 s with 128, growing with what the host carries. The edit
itself is a few bytes. What the file is and how multipath-tools 0.9 edits it
(``libmultipath/wwids.c``, ``file.c``; the lab's
``tests/fixtures/wwids_edit_sequence.txt`` shows the bytes):

* Lines; a WWID is listed by a line ``/<wwid>/``. Any other line, ``#`` lines
  included, lists nothing. A new file starts with a ``#`` header.
* The lock: a POSIX write lock (``fcntl F_SETLKW``) on the whole file, held from
  the open to the close; the kernel drops it when its holder dies.
* Adding appends ``/<wwid>/`` at the end unless the WWID is listed already.
* Removing overwrites the first ``/`` of the line with ``#``: the line stays,
  commented out, and the file never shrinks (``multipath -W`` rewrites it).
* multipathd reads the file each time it decides about a new path, so an edit
  counts from the next ``multipathd add path`` or uevent on: no reload.

The daemon takes the same lock, so the two tools and this module never
interleave. POSIX locks belong to a process, not a thread: the daemon's own
threads first take a thread lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator

# The daemon's error for a file it edits: the tool's exit status and a reason.
from multipath_brick.privileged.record_file import NodeDbError

#: multipath's exit status for a WWID it could not add or remove.
ERR_WWIDS = 1

#: What multipath-tools writes into a new WWID file.
HEADER = (
    "# Multipath wwids, Version : 1.0\n"
    "# NOTE: This file is automatically maintained by multipath and multipathd.\n"
    "# You should not need to edit this file in normal circumstances.\n"
    "#\n"
    "# Valid WWIDs:\n"
)

#: Pause between two tries of the file lock.
_LOCK_POLL = 0.01
#: A WWID file larger than this is not read (a line is about 40 bytes).
_MAX_SIZE = 64 * 1024 * 1024


@dataclasses.dataclass
class WwidsFile:
    """The host's WWID file; the entrypoints never take a path from the caller.

    :param path: the file (multipath.conf's ``wwids_file``, whose default is
        this; the library does not read multipath.conf).
    """

    path: str = "/etc/multipath/wwids"
    _threads: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, wwid: str, timeout: float) -> str:
        """List ``wwid`` (as ``multipath -a WWID``); its answer on success.

        :raises NodeDbError: the file could not be opened, locked or written.
        """
        with self._opened(timeout) as (fd, data):
            if not _offsets(data, wwid):
                end = len(data)
                line = f"/{wwid}/\n".encode()
                if data and not data.endswith(b"\n"):
                    line = b"\n" + line  # a line of its own, whatever came before
                if os.pwrite(fd, line, end) != len(line):
                    os.ftruncate(fd, end)
                    raise NodeDbError(ERR_WWIDS, f"short write to {self.path}")
        return f"wwid '{wwid}' added\n"

    def remove(self, wwid: str, timeout: float) -> str:
        """Unlist ``wwid`` (as ``multipath -w WWID``); its answer on success.

        Every line that lists it is commented out (multipath-tools stops at the
        first; a file edited by hand may hold more).

        :raises NodeDbError: the file could not be opened, locked or written.
        """
        with self._opened(timeout) as (fd, data):
            found = _offsets(data, wwid)
            for offset in found:
                os.pwrite(fd, b"#", offset)
        if not found:
            return f"wwid '{wwid}' not in wwids file\n"
        return f"wwid '{wwid}' removed\n"

    @contextlib.contextmanager
    def _opened(self, timeout: float) -> Iterator[tuple[int, bytes]]:
        """The file, open and locked, and what it holds; made with the header
        when missing (its directory too, 0700, as multipath-tools makes it)."""
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            raise NodeDbError(ERR_WWIDS, f"{self.path}: busy in this daemon for {timeout:g} s")
        fd = -1
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.dirname(self.path), 0o700)
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.path, flags, 0o600)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise NodeDbError(ERR_WWIDS, f"{self.path} is not a file of ours")
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise NodeDbError(ERR_WWIDS, f"{self.path} may be written by others")
            self._lock(fd, deadline)
            data = _read_all(fd, self.path)
            if not data:
                os.pwrite(fd, HEADER.encode(), 0)
                data = HEADER.encode()
            yield fd, data
        except OSError as exc:
            # multipath's status, not iscsiadm's; errno's words only.
            raise NodeDbError(ERR_WWIDS, f"{self.path}: {exc.strerror}") from None
        finally:
            if fd >= 0:
                os.close(fd)  # drops the POSIX lock
            self._threads.release()

    def _lock(self, fd: int, deadline: float) -> None:
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                raise NodeDbError(ERR_WWIDS, f"{self.path} locked by another program")
            time.sleep(_LOCK_POLL)


def _read_all(fd: int, path: str) -> bytes:
    size = os.fstat(fd).st_size
    if size > _MAX_SIZE:
        raise NodeDbError(ERR_WWIDS, f"{path} is larger than {_MAX_SIZE} bytes")
    return os.pread(fd, size, 0)


def _offsets(data: bytes, wwid: str) -> list[int]:
    """Where the lines that list ``wwid`` start: lines ``/<wwid>/``, as
    multipath-tools compares them (what follows the closing ``/`` is ignored)."""
    wanted = f"/{wwid}/".encode()
    found = []
    start = 0
    for line in data.split(b"\n"):
        if line.startswith(wanted):
            found.append(start)
        start += len(line) + 1
    return found
