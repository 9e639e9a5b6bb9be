"""open-iscsi's node and discovery records, written, read and deleted in the daemon.

Why this exists: iscsiadm takes a setting's value only on its command line
(``-o update -n node.session.auth.password -v SECRET``), and a command line is
readable by every local user in ``/proc/<pid>/cmdline`` while the program runs.
So the secrets are written into the record file here, the way iscsiadm
writes records and under iscsiadm's own database lock. A node record's other
settings are written in the same rewrite: one ``iscsiadm -o update`` process
less on every path of every attach (about 0.12 CPU-seconds in the TCG lab),
and no unlocked listing of the database that trips when a record comes or goes.
Reads and deletes are done here for the same reasons: no iscsiadm process, no
listing (a detach's deletes went one at a time per target). Nothing here runs
a program; every path is built from validated parts, never taken from a caller.

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

from multipath_brick.privileged.record_dirs import (
    Found,
    Record,
    component,
    node_records,
    open_checked,
    open_dir_at,
    rmdir_if_empty,
    split_portal,
)
from multipath_brick.privileged.record_file import (
    DISCOVERY_SECRET,
    DISCOVERY_SECRET_IN,
    ERR_IDBM,
    ERR_NO_OBJS_FOUND,
    ERR_SESS_EXISTS,
    NODE_SECRET,
    NODE_SECRET_IN,
    NodeDbError,
    read_record,
    record_values,
    rewrite,
    sweep,
)
from multipath_brick.validate import NODE_SETTINGS
from multipath_brick.verbs.record_users import session_using

__all__ = [
    "DISCOVERY_SECRET",
    "DISCOVERY_SECRET_IN",
    "ERR_IDBM",
    "ERR_NO_OBJS_FOUND",
    "ERR_SESS_EXISTS",
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


@dataclasses.dataclass(frozen=True)
class NodeDb:
    """open-iscsi's record database, as iscsiadm lays it out and locks it.

    :param root: the database root (``ISCSI_DB_ROOT``).
    :param lock_dir: iscsiadm's lock directory (``LOCK_DIR``).
    :param sysfs_root: where sysfs is found (``/``; a FakeHost's tree in tests),
        for the sessions a delete must not pull a record from under.
    :param clock: monotonic seconds, for the lock deadline.
    :param sleep: the pause between two attempts at the lock.
    """

    root: str = "/etc/iscsi"
    lock_dir: str = "/run/lock/iscsi"
    sysfs_root: str = "/"
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
        with self._records_of(portal, iqn, iface, timeout) as found:
            sweep(found.target)
            for record in found.records:
                rewrite(record.dir_fd, record.name, found.target, values)
            return len(found.records)

    def read_node(self, portal: str, iqn: str, iface: str, timeout: float) -> str:
        """The node records of (portal, iqn, iface) as their files hold them, each
        secret's value replaced by ``********`` (as ``iscsiadm -o show`` prints it).

        Read under the lock: iscsiadm rewrites a record in place, so an unlocked
        read could see half of one.

        :raises NodeDbError: as :meth:`write_node`.
        """
        with self._records_of(portal, iqn, iface, timeout) as found:
            return "".join(_shown(read_record(r.dir_fd, r.name)[0]) for r in found.records)

    def delete_node(self, portal: str, iqn: str, iface: str, timeout: float) -> int:
        """Delete the node records of (portal, iqn, iface) and what iscsiadm
        made with them, as ``iscsiadm -o delete`` leaves the database
        (``idbm_delete_node``; lab: ``tests/fixtures/node_delete_sequence.txt``):
        the record file; for a record under a tpgt directory, its link from
        where it was found (``static/`` for ``-o new``), then the directory
        once empty; the target's directory once empty.

        Unlike iscsiadm, only the records of this iface go: iscsiadm unlinks
        the portal's flat file first, whatever iface it belongs to (case C).

        Refused, with nothing removed, while a session made from the record
        is up (:func:`~multipath_brick.verbs.record_users.session_using`).

        :returns: how many records were deleted (at least 1).
        :raises NodeDbError: 15 while a session uses the record; otherwise as
            :meth:`write_node`.
        """
        # Asked before the lock, as iscsiadm asks (delete_node, then
        # idbm_delete_node): the lock is held for file work only.
        user = session_using(self.sysfs_root, portal, iqn, iface)
        if user is not None:
            raise NodeDbError(
                ERR_SESS_EXISTS, f"{user} uses the record; log it out before deleting it"
            )
        with self._records_of(portal, iqn, iface, timeout) as found:
            # Every record is read (and refused if it is not one) before any is removed.
            links = [self._link(iqn, record) for record in found.records]
            for record, link in zip(found.records, links, strict=True):
                os.unlink(record.name, dir_fd=record.dir_fd)
                if link is not None:
                    self._unlink_link(*link)
                if record.entry != record.name:  # a tpgt directory
                    rmdir_if_empty(found.target, record.entry)
            rmdir_if_empty(found.nodes, iqn)
            return len(found.records)

    def set_discovery_secrets(
        self, portal: str, values: Mapping[str, str | None], timeout: float
    ) -> None:
        """Set a sendtargets discovery record's secrets (None removes one).

        :raises NodeDbError: as :meth:`write_node`.
        """
        _keys(values, (DISCOVERY_SECRET, DISCOVERY_SECRET_IN))
        address, port = split_portal(portal)
        name = component("portal", f"{address},{port}")
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
                portal_dir = open_dir_at(st, name)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
            try:
                rewrite(portal_dir, "st_config", st, values)
            finally:
                os.close(portal_dir)

    # --- the lock and the directories ---------------------------------------------------

    @contextlib.contextmanager
    def _open_dir(self, root: str, name: str) -> Iterator[int]:
        root_fd = open_checked(root)
        try:
            try:
                fd = open_dir_at(root_fd, name)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _records_of(self, portal: str, iqn: str, iface: str, timeout: float) -> Iterator[Found]:
        """Under the lock: the records of (portal, iqn, iface) and the
        directories holding them (see :func:`.record_dirs.node_records`); 21 when there is none."""
        address, port = split_portal(portal)
        component("iqn", iqn)
        component("iface", iface)
        # The database directory first: without one there is no record, and the
        # lock directory is not made for nothing.
        with contextlib.ExitStack() as fds:
            nodes = fds.enter_context(self._open_dir(self.root, "nodes"))
            fds.enter_context(self._locked(timeout))
            try:
                target = open_dir_at(nodes, iqn)
            except FileNotFoundError:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
            fds.callback(os.close, target)
            records = node_records(fds, target, f"{address},{port}", iface)
            if not records:
                raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found")
            yield Found(nodes, target, records)

    def _link(self, iqn: str, record: Record) -> tuple[str, str] | None:
        """(directory under the root, entry) of the link iscsiadm made to a
        tpgt record from where it was found (``setup_disc_to_node_link``); None
        for a flat record, which has none.

        :raises NodeDbError: a record found another way (firmware, iSNS): not
            deleted here.
        """
        if record.entry == record.name:
            return None
        values = record_values(read_record(record.dir_fd, record.name)[0])
        name = component("link", f"{iqn},{record.entry},{record.name}")
        kind = values.get("node.discovery_type", "static")
        if kind == "static":
            return "static", name
        if kind == "send_targets":
            source = f"{values.get('node.discovery_address')},{values.get('node.discovery_port')}"
            return f"send_targets/{component('discovery portal', source)}", name
        raise NodeDbError(ERR_IDBM, f"{record.entry}/{record.name} is a {kind} record")

    def _unlink_link(self, where: str, name: str) -> None:
        """Remove a link iscsiadm made; anything else by that name is left alone."""
        with contextlib.ExitStack() as fds:
            fd = open_checked(self.root)
            fds.callback(os.close, fd)
            for part in where.split("/"):
                try:
                    fd = open_dir_at(fd, part)
                except FileNotFoundError:
                    return
                fds.callback(os.close, fd)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=fd)

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        """Hold iscsiadm's database lock (``idbm_lock``), waiting at most ``timeout``."""
        deadline = self.clock() + timeout
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.lock_dir, 0o770)
        lock_dir = open_checked(self.lock_dir)
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
