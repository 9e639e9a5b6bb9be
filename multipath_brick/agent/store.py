"""The agent's volume store: one SQLite file, one row per managed volume.

Why SQLite: two agent processes (and many threads in each) share it, and a
killed process must leave either the old row or the new one, never half of
either. WAL lets readers (``info``) run beside a writer; every change is one
``BEGIN IMMEDIATE`` transaction.

Why rows carry a ``state``: the intent (``attaching``, ``detaching``) is
committed before the host is touched and the result (``attached``, or the row
deleted) after, so the next call on a volume whose agent was killed knows that
the host may hold half of an attach or a detach and goes to look.

Secrets: CHAP passwords never reach the file. Before a connection is stored,
every ``*password*`` value is replaced by a keyed SHA-256 digest
(:meth:`VolumeStore.redact`), with a random key kept in the store. The digest is
enough to tell whether a later attach brings the same connection; detach needs
no password (logout does not authenticate). The file is still created 0600 in
a 0700 directory: it names targets and the host's volumes.

Schema versions (``PRAGMA user_version``): 1 had no ``state`` (every row was an
attachment); 2 adds ``state``, ``updated`` and the ``meta`` table. Older files
are migrated on open in one transaction; a newer, damaged or locked file is an
error naming the file, never a silent reset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from multipath_brick.exception import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
)

#: Where the agent keeps its store unless told otherwise.
DEFAULT_STORE = "/var/lib/multipath-brick/volumes.db"
SCHEMA_VERSION = 2
#: Seconds a change waits for another process's transaction before giving up.
BUSY_TIMEOUT = 10.0

_V1 = """
CREATE TABLE volumes (
    vol_id TEXT PRIMARY KEY,
    connection_info TEXT NOT NULL,
    path TEXT,
    attachment TEXT,
    multipath_id TEXT
)
"""
_V1_TO_V2 = (
    "ALTER TABLE volumes ADD COLUMN state TEXT NOT NULL DEFAULT 'attached'",
    "ALTER TABLE volumes ADD COLUMN updated REAL NOT NULL DEFAULT 0",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_SELECT = "SELECT vol_id, state, connection_info, path, attachment, multipath_id, updated"
_GET = _SELECT + " FROM volumes WHERE vol_id = ?"
_ALL = _SELECT + " FROM volumes ORDER BY vol_id"
# The ids travel as one JSON parameter: no statement built from input, no
# variable-count limit.
_SOME = (
    "SELECT vol_id, state, connection_info, path, attachment, multipath_id, updated"
    " FROM volumes WHERE vol_id IN (SELECT value FROM json_each(?)) ORDER BY vol_id"
)
_PUT = (
    "INSERT OR REPLACE INTO volumes"
    " (vol_id, state, connection_info, path, attachment, multipath_id, updated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class State(str, enum.Enum):
    """Where a volume stands, as last committed."""

    #: the intent to attach is recorded; the host may hold part of it.
    ATTACHING = "attaching"
    #: attached; ``path`` and ``attachment`` are the answer that was given.
    ATTACHED = "attached"
    #: the intent to detach is recorded; the host may hold part of the volume.
    DETACHING = "detaching"


@dataclasses.dataclass(frozen=True)
class VolumeRow:
    """One stored volume.

    :ivar vol_id: the caller's volume id.
    :ivar state: see :class:`State`.
    :ivar connection_info: the connection, passwords replaced by digests.
    :ivar path: ``/dev/mapper/<wwid>`` once attached.
    :ivar attachment: the connector's ``device_info`` once attached.
    :ivar multipath_id: the map's WWID once attached.
    :ivar updated: when the row last changed (seconds since the epoch).
    """

    vol_id: str
    state: State
    connection_info: dict[str, Any]
    path: str | None = None
    attachment: dict[str, Any] | None = None
    multipath_id: str | None = None
    updated: float = 0.0


class VolumeStore:
    """The SQLite file; safe to share between threads and processes.

    :param path: the database file; its directory is created 0700.
    :param busy_timeout: seconds to wait for another process's transaction.
    :raises StoreCorruptError: the file is not a (healthy) database.
    :raises StoreLockedError: another process held it past ``busy_timeout``.
    :raises StoreVersionError: a newer release wrote it.
    """

    def __init__(self, path: str = DEFAULT_STORE, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = self._open(busy_timeout)
        with self._guard():
            self._migrate()
            self._key = self._secret_key()

    # --- opening -------------------------------------------------------------------------

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            # Create the file ourselves so it is 0600 from its first byte; SQLite
            # gives its -wal and -shm files the database file's mode.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        except OSError as error:
            raise StoreError(self.path, f"cannot open: {error.strerror}") from None
        db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            with self._mapped():
                db.execute("PRAGMA journal_mode=WAL").fetchone()
                db.execute("PRAGMA synchronous=FULL")
                if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                    raise sqlite3.DatabaseError("quick_check found damage")
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    self.path,
                    f"schema version {version} is newer than this release knows "
                    f"({SCHEMA_VERSION}); use the newer multipath-brick that wrote it",
                )
            if version == 0:
                tables = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
                if tables:
                    names = ", ".join(sorted(t[0] for t in tables))
                    raise StoreCorruptError(
                        self.path, f"holds tables ({names}) but no schema version: not our store"
                    )
                db.execute(_V1)
                version = 1
            if version == 1:
                for statement in _V1_TO_V2:
                    db.execute(statement)
                db.execute("UPDATE volumes SET updated = ?", (time.time(),))
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _secret_key(self) -> bytes:
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'digest_key'").fetchone()
            if row is None:
                row = (secrets.token_hex(32),)
                db.execute("INSERT INTO meta VALUES ('digest_key', ?)", row)
        return bytes.fromhex(row[0])

    def close(self) -> None:
        """Close the file (a later call reopens nothing: make a new store)."""
        with self._lock:
            self._db.close()

    # --- the one place sqlite errors become ours -----------------------------------------

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as error:
            text = str(error)
            if "locked" in text or "busy" in text:
                raise StoreLockedError(
                    self.path, f"{text}: another process holds it; retry later"
                ) from None
            raise StoreError(self.path, text) from None
        except sqlite3.DatabaseError as error:
            raise StoreCorruptError(
                self.path,
                f"{error}: move it aside and re-register the host's volumes "
                "(it is never reset automatically)",
            ) from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        with self._lock, self._mapped():
            yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock at once, so two processes doing
        # read-then-write never both read the old row.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- secrets -------------------------------------------------------------------------

    def redact(self, value: Any) -> Any:
        """``value`` with every ``*password*`` string replaced by a keyed digest."""
        if isinstance(value, dict):
            return {
                k: self._digest(v)
                if "password" in str(k).lower() and isinstance(v, str)
                else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def _digest(self, secret: str) -> str:
        return "hmac-sha256:" + hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    # --- rows ----------------------------------------------------------------------------

    def get(self, vol_id: str) -> VolumeRow | None:
        """The row of one volume, or None."""
        with self._guard():
            row = self._db.execute(_GET, (vol_id,)).fetchone()
        return None if row is None else _row(row)

    def rows(self, vol_ids: Iterable[str] | None = None) -> list[VolumeRow]:
        """Rows of the given ids that exist (all rows when None), in id order."""
        with self._guard():
            if vol_ids is None:
                found = self._db.execute(_ALL)
            else:
                found = self._db.execute(_SOME, (json.dumps(sorted(set(vol_ids))),))
            return [_row(r) for r in found.fetchall()]

    def intend(self, vol_id: str, state: State, connection_info: dict[str, Any]) -> None:
        """Record an intent (before the host is touched); keeps a stored attachment.

        :param connection_info: already redacted.
        """
        with self._guard(), self._transaction() as db:
            db.execute(
                "INSERT INTO volumes (vol_id, state, connection_info, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (vol_id) DO UPDATE SET state = excluded.state,"
                " connection_info = excluded.connection_info, updated = excluded.updated",
                (vol_id, state.value, json.dumps(connection_info, sort_keys=True), time.time()),
            )

    def attached(
        self, vol_id: str, path: str, attachment: dict[str, Any], multipath_id: str | None
    ) -> None:
        """Record the result of an attach."""
        with self._guard(), self._transaction() as db:
            db.execute(
                "UPDATE volumes SET state = ?, path = ?, attachment = ?, multipath_id = ?,"
                " updated = ? WHERE vol_id = ?",
                (
                    State.ATTACHED.value,
                    path,
                    json.dumps(attachment, sort_keys=True),
                    multipath_id,
                    time.time(),
                    vol_id,
                ),
            )

    def put(self, row: VolumeRow) -> None:
        """Write a whole row back (undoing an intent that failed cleanly)."""
        with self._guard(), self._transaction() as db:
            db.execute(
                _PUT,
                (
                    row.vol_id,
                    row.state.value,
                    json.dumps(row.connection_info, sort_keys=True),
                    row.path,
                    None if row.attachment is None else json.dumps(row.attachment, sort_keys=True),
                    row.multipath_id,
                    time.time(),
                ),
            )

    def delete(self, vol_id: str) -> None:
        """Forget a volume (after its detach, or an attach that failed cleanly)."""
        with self._guard(), self._transaction() as db:
            db.execute("DELETE FROM volumes WHERE vol_id = ?", (vol_id,))


def _row(row: tuple[Any, ...]) -> VolumeRow:
    vol_id, state, connection, path, attachment, multipath_id, updated = row
    return VolumeRow(
        vol_id=vol_id,
        state=State(state),
        connection_info=json.loads(connection),
        path=path,
        attachment=None if attachment is None else json.loads(attachment),
        multipath_id=multipath_id,
        updated=updated,
    )
