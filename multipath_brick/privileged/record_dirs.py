"""Where open-iscsi keeps a node record, and how the daemon opens its directories.

Used by :mod:`.nodedb`, which holds iscsiadm's lock around what it does with
them. Layout (open-iscsi 2.1.8, ``usr/idbm.c``; lab:
``tests/fixtures/node_tpgt_sequence.txt``, ``node_delete_sequence.txt``):
``nodes/<iqn>/<address>,<port>`` is a flat record (made without a tpgt, one
iface), ``nodes/<iqn>/<address>,<port>,<tpgt>/<iface>`` a record per iface.
Every directory is opened without following a symlink and must be root's
and not world-writable: a path is never taken from a caller, and a link
planted in the database cannot lead the daemon elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat

from multipath_brick.privileged.record_file import (
    ERR_IDBM,
    NodeDbError,
    check_owner,
    record_iface,
)

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_portal(portal: str) -> tuple[str, int]:
    """``10.0.0.1:3260`` -> ``("10.0.0.1", 3260)``; ``[fd00::1]:3260`` -> ``("fd00::1", 3260)``.

    The address as iscsiadm writes it into record paths: IPv6 without brackets.
    """
    host, _, port = portal.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def component(field: str, name: str) -> str:
    """``name``, if it can only name an entry of one directory."""
    # Defence in depth: the verbs' checks run first, but a path part must never
    # climb out of its directory whatever they allow.
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise NodeDbError(ERR_IDBM, f"{field} cannot name a database entry: {name!r}")
    return name


@dataclasses.dataclass(frozen=True)
class Record:
    """A record file: the directory holding it, its name there, and its entry in
    the target's directory (the same name for a flat record, its tpgt
    directory's for the others)."""

    dir_fd: int
    name: str
    entry: str


@dataclasses.dataclass(frozen=True)
class Found:
    """The records of a (portal, iqn, iface), with their target's directory and
    ``nodes/``, all open while the lock is held."""

    nodes: int
    target: int
    records: list[Record]


def rmdir_if_empty(dir_fd: int, name: str) -> None:
    """Remove a directory if it is empty; like iscsiadm, a directory that
    cannot go (not empty, already gone) is not an error."""
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


def node_records(
    fds: contextlib.ExitStack, target: int, portal_name: str, iface: str
) -> list[Record]:
    """Each record of the portal and iface in a target directory; directories
    opened on the way are closed with ``fds``."""
    found = []
    for entry in sorted(os.listdir(target)):
        tpgt = entry[len(portal_name) + 1 :]
        if entry == portal_name:
            kind = os.stat(entry, dir_fd=target, follow_symlinks=False).st_mode
            if not stat.S_ISREG(kind):
                raise NodeDbError(ERR_IDBM, f"{entry} is not a record file")
            if record_iface(target, entry) == iface:
                found.append(Record(target, entry, entry))
        elif entry.startswith(portal_name + ",") and tpgt.lstrip("-").isdigit():
            tpgt_dir = open_dir_at(target, entry)
            fds.callback(os.close, tpgt_dir)
            try:
                kind = os.stat(iface, dir_fd=tpgt_dir, follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(kind):
                raise NodeDbError(ERR_IDBM, f"{entry}/{iface} is not a record file")
            found.append(Record(tpgt_dir, iface, entry))
    return found


def open_checked(path: str) -> int:
    """Open a directory that must be ours: no symlink, our owner, not world-writable."""
    try:
        fd = os.open(path, DIR_FLAGS)
    except OSError as exc:
        raise NodeDbError(ERR_IDBM, f"cannot open {path}: {exc.strerror}") from None
    check_owner(fd, path)
    return fd


def open_dir_at(dir_fd: int, name: str) -> int:
    """Open ``name`` in ``dir_fd`` as a directory, never through a symlink."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink; ENOTDIR: a file
        raise NodeDbError(
            ERR_IDBM, f"{name} is not a database directory: {exc.strerror}"
        ) from None
    check_owner(fd, name)
    return fd
