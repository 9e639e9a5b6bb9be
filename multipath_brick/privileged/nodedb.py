"""Write open-iscsi's node and discovery records in the daemon: settings and CHAP secrets.

Why this exists: iscsiadm takes a setting's value only on its command line
(``-o update -n node.session.auth.password -v SECRET``), and a command line is
readable by every local user in ``/proc/<pid>/cmdline`` while the program runs.
So the secrets are written into the record file here, the way iscsiadm
writes records and under iscsiadm's own database lock. A node record's other
settings are written in the same rewrite: one ``iscsiadm -o update`` process
less on every path of every attach (about 0.12 CPU-seconds in the TCG lab),
and no unlocked listing of the database that trips when a record comes or goes. Nothing here runs a
program; every path is built from validated parts, never taken from a caller.

Facts relied on (open-iscsi 2.1.8 as Debian 12 ships it, package 2.1.8-1:
``usr/idbm.c``, ``usr/idbm.h``, ``usr/initiator.h``, ``meson_options.txt``;
seen in the lab, ``tests/fixtures/iscsiadm_node_record.txt``):

* The database root is ``/etc/iscsi`` (``ISCSI_DB_ROOT``, meson ``dbroot``).
  A node record made by ``-o new`` without a tpgt is a regular file
  ``nodes/<iqn>/<address>,<port>`` ("old style portal as config" in
  ``idbm_rec_write``: the tpgt is -1), holding one iface's record (its
  ``iface.iscsi_ifacename`` line); a record made by discovery is
  ``nodes/<iqn>/<address>,<port>,<tpgt>/<iface>``. A sendtargets discovery
  record is ``send_targets/<address>,<port>/st_config``. The address is
  written without IPv6 brackets. iscsiadm makes files 0600 and directories
  0700, owned by root.
* The lock (``idbm_lock``): directory ``/run/lock/iscsi`` (``LOCK_DIR``,
  meson ``lockdir``; made 0770 when missing), file ``lock`` (made with
  ``O_CREAT``), and the lock is held while ``lock.write`` exists:
  ``link("lock", "lock.write")`` takes it (EEXIST: someone holds it, try again
  in 10 ms), ``unlink("lock.write")`` releases it. iscsiadm holds it around
  every record read-modify-write (``-o new``, ``-o update``, ``-o delete``).
  After 3000 tries (30 s) iscsiadm goes on *without* the lock; this module
  never does: it gives up at the verb's timeout and leaves the lock alone.
* How a record file is read, rewritten and replaced: :mod:`.record_file`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping

from multipath_brick.privileged.record_file import (
    DISCOVERY_SECRET,
    DISCOVERY_SECRET_IN,
    ERR_IDBM,
    ERR_NO_OBJS_FOUND,
    NODE_SECRET,
    NODE_SECRET_IN,
    NodeDbError,
    check_owner,
    read_record,
    record_iface,
    rewrite,
    sweep,
)
from multipath_brick.validate import NODE_SETTINGS

__all__ = [
    "DISCOVERY_SECRET",
    "DISCOVERY_SECRET_IN",
    "ERR_IDBM",
    "ERR_NO_OBJS_FOUND",
    "NODE_SECRET",
    "NODE_SECRET_IN",
    "TIMED_OUT",
    "NodeDb",
    "NodeDbError",
    "split_portal",
]

#: How a read shows a secret's value (iscsiadm's IDBM_MASKED).
MASKED = "********"

#: A lock that stayed held past the timeout: the same status as a killed command.
TIMED_OUT = -9

# idbm_lock's pause between two link() attempts.
_LOCK_POLL = 0.01

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_portal(portal: str) -> tuple[str, int]:
    """``10.0.0.1:3260`` -> ``("10.0.0.1", 3260)``; ``[fd00::1]:3260`` -> ``("fd00::1", 3260)``.

    The address as iscsiadm writes it into record paths: IPv6 without brackets.
    """
    host, _, port = portal.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _component(field: str, name: str) -> str:
    # Defence in depth: the verbs' checks run first, but a path part must never
    # climb out of its directory whatever they allow.
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise NodeDbError(ERR_IDBM, f"{field} cannot name a database entry: {name!r}")
    return name


@dataclasses.dataclass(frozen=True)
class NodeDb:
    """open-iscsi's record database, as iscsiadm lays it out and locks it.

    :param root: the database root (``ISCSI_DB_ROOT``).
    :param lock_dir: iscsiadm's lock directory (``LOCK_DIR``).
    :param clock: monotonic seconds, for the lock deadline.
    :param sleep: the pause between two attempts at the lock.
    """

    root: str = "/etc/iscsi"
    lock_dir: str = "/run/lock/iscsi"
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    # --- the writes and the read -------------------------------------------------------

    def write_node(
        self, portal: str, iqn: str, iface: str, values: Mapping[str, str | None], timeout: float
    ) -> int:
        """Set a node record's settings and secrets: keys given a value get it, keys
        given None lose theirs. Keys are the node settings the library writes
        (:data:`~multipath_brick.validate.NODE_SETTINGS`) and the two secrets.

        Every record of (portal, iqn, iface) is written, as ``iscsiadm -o update``
        would: the old-style file of a record made by ``-o new``, and the iface
        file under each tpgt directory of a discovered one.

        :returns: how many records were written (at least 1).
        :raises NodeDbError: 21 when there is no such record; 6 when a record or a
            directory is not what iscsiadm makes (a symlink, another owner, not a
            record); :data:`TIMED_OUT` when the lock stayed held.
        """
        _keys(values, tuple(NODE_SETTINGS))  # the secrets are among them
        with self._records_of(portal, iqn, iface, timeout) as (target, records):
            sweep(target)
            for dir_fd, name in records:
                rewrite(dir_fd, name, target, values)
            return len(records)

    def read_node(self, portal: str, iqn: str, iface: str, timeout: float) -> str:
        """The node records of (portal, iqn, iface) as their files hold them, each
        secret's value replaced by ``********`` (as ``iscsiadm -o show`` prints it).

        Read under the lock: iscsiadm rewrites a record in place, so an unlocked
        read could see half of one.

        :raises NodeDbError: as :meth:`write_node`.
        """
        with self._records_of(portal, iqn, iface, timeout) as (_, records):
            return "".join(_shown(read_record(dir_fd, name)[0]) for dir_fd, name in records)

    def set_discovery_secrets(
        self, portal: str, values: Mapping[str, str | None], timeout: float
    ) -> None:
        """Set a sendtargets discovery record's secrets (None removes one).

        :raises NodeDbError: as :meth:`write_node`.
        """
        _keys(values, (DISCOVERY_SECRET, DISCOVERY_SECRET_IN))
        address, port = split_portal(portal)
        name = _component("portal", f"{address},{port}")
        with self._open_dir(self.root, "send_targets") as st, self._locked(timeout):
            try:
                kind = os.stat(name, dir_fd=st, follow_symlinks=False).st_mode
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
            sweep(st)
            if stat.S_ISREG(kind):  # pre-780 layout: the portal is the record
                rewrite(st, name, st, values)
                return
            try:
                portal_dir = _open_dir_at(st, name)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
            try:
                rewrite(portal_dir, "st_config", st, values)
            finally:
                os.close(portal_dir)

    # --- the lock and the directories ---------------------------------------------------

    @contextlib.contextmanager
    def _open_dir(self, root: str, name: str) -> Iterator[int]:
        root_fd = _open_checked(root)
        try:
            try:
                fd = _open_dir_at(root_fd, name)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _records_of(
        self, portal: str, iqn: str, iface: str, timeout: float
    ) -> Iterator[tuple[int, list[tuple[int, str]]]]:
        """Under the lock: the target's directory and the records of (portal, iqn, iface)
        in it (see :func:`_node_records`); 21 when there is none."""
        address, port = split_portal(portal)
        _component("iqn", iqn)
        _component("iface", iface)
        # The database directory first: without one there is no record, and the
        # lock directory is not made for nothing.
        with contextlib.ExitStack() as fds:
            nodes = fds.enter_context(self._open_dir(self.root, "nodes"))
            fds.enter_context(self._locked(timeout))
            try:
                target = _open_dir_at(nodes, iqn)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
            fds.callback(os.close, target)
            records = _node_records(fds, target, f"{address},{port}", iface)
            if not records:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found")
            yield target, records

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        """Hold iscsiadm's database lock (``idbm_lock``), waiting at most ``timeout``."""
        deadline = self.clock() + timeout
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.lock_dir, 0o770)
        lock_dir = _open_checked(self.lock_dir)
        try:
            fd = os.open(
                "lock",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=lock_dir,
            )
            os.close(fd)
            while True:
                try:
                    os.link(
                        "lock",
                        "lock.write",
                        src_dir_fd=lock_dir,
                        dst_dir_fd=lock_dir,
                        follow_symlinks=False,
                    )
                    break
                except FileExistsError:
                    if self.clock() >= deadline:
                        raise NodeDbError(
                            TIMED_OUT,
                            f"{self.lock_dir}/lock.write held by another program for "
                            f"more than {timeout:g} s; not taken over",
                        ) from None
                    self.sleep(_LOCK_POLL)
            try:
                yield
            finally:
                os.unlink("lock.write", dir_fd=lock_dir)
        finally:
            os.close(lock_dir)


def _shown(lines: list[str]) -> str:
    """A record's lines with every secret's value masked."""
    out = []
    for line in lines:
        key, sep, _ = line.partition("=")
        if sep and key.strip() in (NODE_SECRET, NODE_SECRET_IN):
            line = f"{key.strip()} = {MASKED}"
        out.append(line + "\n")
    return "".join(out)


def _keys(values: Mapping[str, str | None], allowed: tuple[str, ...]) -> None:
    unknown = set(values) - set(allowed)
    if unknown or not values:
        raise NodeDbError(ERR_IDBM, f"not keys this record may be written: {sorted(unknown)}")


def _node_records(
    fds: contextlib.ExitStack, target: int, portal_name: str, iface: str
) -> list[tuple[int, str]]:
    """(directory fd, entry name) of each record of the portal and iface in a target
    directory; directories opened on the way are closed with ``fds``."""
    found = []
    for entry in sorted(os.listdir(target)):
        tpgt = entry[len(portal_name) + 1 :]
        if entry == portal_name:
            kind = os.stat(entry, dir_fd=target, follow_symlinks=False).st_mode
            if not stat.S_ISREG(kind):
                raise NodeDbError(ERR_IDBM, f"{entry} is not a record file")
            if record_iface(target, entry) == iface:
                found.append((target, entry))
        elif entry.startswith(portal_name + ",") and tpgt.lstrip("-").isdigit():
            tpgt_dir = _open_dir_at(target, entry)
            fds.callback(os.close, tpgt_dir)
            try:
                kind = os.stat(iface, dir_fd=tpgt_dir, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(kind):
                raise NodeDbError(ERR_IDBM, f"{entry}/{iface} is not a record file")
            found.append((tpgt_dir, iface))
    return found


def _open_checked(path: str) -> int:
    """Open a directory that must be ours: no symlink, our owner, not world-writable."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise NodeDbError(ERR_IDBM, f"cannot open {path}: {exc.strerror}") from None
    check_owner(fd, path)
    return fd


def _open_dir_at(dir_fd: int, name: str) -> int:
    """Open ``name`` in ``dir_fd`` as a directory, never through a symlink."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink; ENOTDIR: a file
        raise NodeDbError(
            ERR_IDBM, f"{name} is not a database directory: {exc.strerror}"
        ) from None
    check_owner(fd, name)
    return fd
