"""An open-iscsi record file: read it, check it, set some of its lines, replace it.

Used by :mod:`.nodedb`, which finds the file and holds iscsiadm's lock
around all of this. Facts relied on (open-iscsi 2.1.8, ``usr/idbm.c``):

* A record is ``# BEGIN RECORD 2.1.8``, one ``name = value`` line per
  non-empty setting (``idbm_print``), ``# END RECORD``. The reader
  (``idbm_recinfo_config``) takes a line of up to 2047 bytes, the name up to
  the first blank or ``=``, the value as the rest with blanks stripped; a
  later line for the same name wins; the value is copied into a 256-byte
  buffer without a bound check, so a value longer than 255 bytes would
  overflow iscsiadm's stack: secrets are limited to 255 bytes (the verbs
  refuse longer ones). ``password_length`` is derived when the record is read.
  ``-o show`` prints a secret as ``********`` (``IDBM_MASKED``).
* iscsiadm rewrites a record in place (``fopen(path, "w")``), and lists the
  database without the lock: an entry of ``nodes/<iqn>/`` without a comma is
  skipped (``idbm_for_each_portal``), every entry of a tpgt directory is read
  as a record (``idbm_for_each_iface``), every entry of ``nodes/`` is taken
  for a target directory, and entries of ``send_targets/`` without a comma
  are skipped (``idbm_for_each_drec``). So the new record is written to a
  temporary file named without a comma in ``nodes/<iqn>/`` (or
  ``send_targets/``), synced, and renamed over the record: a reader sees the
  old record or the new one, never a part, and no listing sees the temporary
  file as a record. A temporary file left by a killed daemon is removed by
  the next write in that directory (only a lock holder writes one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping

#: iscsiadm exit codes (open-iscsi ``include/iscsi_err.h``) the writer answers with.
ERR_IDBM = 6
ERR_NO_OBJS_FOUND = 21
ERR_SESS_EXISTS = 15

# Record keys whose values are secrets (key names, not passwords: hence the noqa).
NODE_SECRET = "node.session.auth.password"  # noqa: S105
NODE_SECRET_IN = "node.session.auth.password_in"  # noqa: S105
DISCOVERY_SECRET = "discovery.sendtargets.auth.password"  # noqa: S105
DISCOVERY_SECRET_IN = "discovery.sendtargets.auth.password_in"  # noqa: S105

#: Each secret key and the key iscsiadm prints just before it (idbm_recinfo_node
#: and idbm_recinfo_discovery order): a new line goes after that one.
_ANCHORS = {
    NODE_SECRET: "node.session.auth.username",
    NODE_SECRET_IN: "node.session.auth.username_in",
    DISCOVERY_SECRET: "discovery.sendtargets.auth.username",
    DISCOVERY_SECRET_IN: "discovery.sendtargets.auth.username_in",
}
_BEGIN = "# BEGIN RECORD"
_END = "# END RECORD"
# No comma: iscsiadm's listings skip such names (see the module docstring).
_TEMP_PREFIX = ".mpb-record-"
# A record is about 2 KiB; anything much larger is not one.
_MAX_RECORD = 64 * 1024


class NodeDbError(Exception):
    """A record (or the WWID file, :mod:`.wwids_file`) could not be read or
    written; ``code`` is the exit status the tool would give (iscsiadm's, or
    multipath's 1).

    The reason names paths and keys, never a value.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def check_owner(fd: int, name: str) -> None:
    """Refuse an entry another user owns, or any user may write: not iscsiadm's."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & stat.S_IWOTH:
        raise NodeDbError(ERR_IDBM, f"{name} is owned by uid {st.st_uid} or world-writable")


def record_values(lines: list[str]) -> dict[str, str]:
    """A record's ``name = value`` lines as a dict (a later line wins, as idbm reads)."""
    values = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def record_iface(dir_fd: int, name: str) -> str:
    """The iface an old-style record file belongs to (``default`` when unnamed)."""
    return record_values(read_record(dir_fd, name)[0]).get("iface.iscsi_ifacename", "default")


def read_record(dir_fd: int, name: str) -> tuple[list[str], os.stat_result]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NodeDbError(ERR_NO_OBJS_FOUND, "No records found") from None
    except OSError as exc:
        raise NodeDbError(ERR_IDBM, f"cannot open record {name}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise NodeDbError(ERR_IDBM, f"record {name} is not a file of ours")
        data = os.read(fd, _MAX_RECORD + 1)
    finally:
        os.close(fd)
    lines = data.decode("utf-8", errors="surrogateescape").splitlines()
    if len(data) > _MAX_RECORD or not lines or not lines[0].startswith(_BEGIN):
        raise NodeDbError(ERR_IDBM, f"{name} is not an open-iscsi record")
    if _END not in (line.strip() for line in lines):
        raise NodeDbError(ERR_IDBM, f"{name} is not a complete open-iscsi record")
    return lines, st


def with_values(lines: list[str], values: Mapping[str, str | None]) -> list[str]:
    """The record's lines with each key set (or removed, for None).

    A key that had a line keeps its place; a new one goes after its anchor
    (a secret: the key iscsiadm prints before it), else before ``# END RECORD``.
    """

    def key_of(line: str) -> str:
        key, sep, _ = line.partition("=")
        return key.strip() if sep and not line.startswith("#") else ""

    out: list[str] = []
    placed: set[str] = set()
    for line in lines:
        key = key_of(line)
        if key in values:
            value = values[key]
            if value is not None and key not in placed:
                out.append(f"{key} = {value}")
            placed.add(key)
            continue
        out.append(line)
    for key, value in values.items():
        if key in placed or value is None:
            continue
        anchor = _ANCHORS.get(key)
        at = next((i + 1 for i, line in enumerate(out) if anchor and key_of(line) == anchor), None)
        if at is None:
            at = next(i for i, line in enumerate(out) if line.strip() == _END)
        out.insert(at, f"{key} = {value}")
    return out


def rewrite(dir_fd: int, name: str, temp_dir: int, values: Mapping[str, str | None]) -> None:
    """Replace record ``name`` by a copy with ``values`` set, atomically."""
    lines, _ = read_record(dir_fd, name)
    data = ("\n".join(with_values(lines, values)) + "\n").encode("utf-8", errors="surrogateescape")
    temp = _TEMP_PREFIX + secrets.token_hex(8)
    fd = os.open(
        temp,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=temp_dir,
    )
    try:
        try:
            # 0600 whatever the umask: the file holds secrets (iscsiadm's mode too).
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=temp_dir, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=temp_dir)
        raise
    # The rename is durable once the directories are.
    os.fsync(dir_fd)
    if temp_dir != dir_fd:
        os.fsync(temp_dir)


def sweep(dir_fd: int) -> None:
    """Remove temporary files a killed writer left: only a lock holder makes one."""
    for entry in os.listdir(dir_fd):
        if entry.startswith(_TEMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=dir_fd)
