"""The volume store: file mode, migration, and damaged, locked or newer files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from multipath_brick.agent import State, VolumeRow, VolumeStore
from multipath_brick.agent.store import SCHEMA_VERSION
from multipath_brick.exception import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
)


def test_new_store_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "volumes.db"
    store = VolumeStore(str(path))
    store.intend("v", State.ATTACHING, {"data": {}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for extra in ("-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{path}{extra}").st_mode) == 0o600
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_readable_store_is_made_private_again(tmp_path):
    path = tmp_path / "volumes.db"
    VolumeStore(str(path)).close()
    os.chmod(path, 0o644)
    VolumeStore(str(path)).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_rows_round_trip_and_intents_keep_the_attachment(tmp_path):
    store = VolumeStore(str(tmp_path / "v.db"))
    store.intend("v", State.ATTACHING, {"data": {"x": 1}})
    store.attached("v", "/dev/mapper/w", {"path": "/dev/dm-0"}, "w")
    store.intend("v", State.DETACHING, {"data": {"x": 1}})
    row = store.get("v")
    assert row is not None
    assert (row.state, row.path, row.attachment, row.multipath_id) == (
        State.DETACHING,
        "/dev/mapper/w",
        {"path": "/dev/dm-0"},
        "w",
    )
    store.put(VolumeRow("v", State.ATTACHED, {"data": {}}))
    again = store.get("v")
    assert again is not None and again.state is State.ATTACHED
    store.delete("v")
    assert store.get("v") is None and store.rows() == []


def test_rows_by_id_take_many_ids(tmp_path):
    store = VolumeStore(str(tmp_path / "v.db"))
    for n in range(50):
        store.intend(f"v{n:02}", State.ATTACHING, {})
    ids = [f"v{n:02}" for n in range(0, 50, 7)] + ["absent", "it's; DROP TABLE volumes"]
    assert [r.vol_id for r in store.rows(ids)] == [f"v{n:02}" for n in range(0, 50, 7)]
    assert len(store.rows()) == 50


def test_garbage_is_corrupt_and_left_as_found(tmp_path):
    path = tmp_path / "volumes.db"
    garbage = b"this is not a database, it is some other file\n" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreCorruptError) as raised:
        VolumeStore(str(path))
    assert str(path) in str(raised.value) and "never reset" in str(raised.value)
    assert path.read_bytes() == garbage


def test_a_damaged_page_is_corrupt(tmp_path):
    path = tmp_path / "volumes.db"
    store = VolumeStore(str(path))
    for n in range(200):
        store.intend(f"volume-{n}", State.ATTACHING, {"data": {"pad": "x" * 200}})
    store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # the whole second page, header included
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError):
        VolumeStore(str(path))


def test_a_store_of_someone_else_is_refused(tmp_path):
    path = tmp_path / "volumes.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE things (a)")
    db.commit()
    db.close()
    with pytest.raises(StoreCorruptError, match="not our store"):
        VolumeStore(str(path))


def test_a_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "volumes.db"
    VolumeStore(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreVersionError, match="99"):
        VolumeStore(str(path))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (99,)


def test_version_1_is_migrated_keeping_its_rows(tmp_path):
    path = tmp_path / "volumes.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE volumes (vol_id TEXT PRIMARY KEY, connection_info TEXT NOT NULL,"
        " path TEXT, attachment TEXT, multipath_id TEXT)"
    )
    db.execute(
        "INSERT INTO volumes VALUES (?, ?, ?, ?, ?)",
        ("v1", json.dumps({"data": {}}), "/dev/mapper/w", json.dumps({"path": "/dev/dm-3"}), "w"),
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = VolumeStore(str(path))
    row = store.get("v1")
    assert row is not None and row.state is State.ATTACHED and row.multipath_id == "w"
    assert row.attachment == {"path": "/dev/dm-3"} and row.updated > 0
    store.intend("v2", State.ATTACHING, {})
    assert [r.vol_id for r in store.rows()] == ["v1", "v2"]


def test_a_store_locked_by_another_process_is_a_clear_error(tmp_path):
    path = tmp_path / "volumes.db"
    store = VolumeStore(str(path), busy_timeout=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError, match="retry"):
            store.intend("v", State.ATTACHING, {})
        with pytest.raises(StoreLockedError):
            VolumeStore(str(path), busy_timeout=0.1)
    finally:
        other.execute("ROLLBACK")
    store.intend("v", State.ATTACHING, {})
    assert store.get("v") is not None


def test_an_unwritable_directory_is_a_store_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    os.chmod(tmp_path, 0o500)
    try:
        with pytest.raises(StoreError):
            VolumeStore(str(tmp_path / "volumes.db"))
    finally:
        os.chmod(tmp_path, 0o700)


def test_redaction_is_keyed_per_store_and_stable(tmp_path):
    one = VolumeStore(str(tmp_path / "a.db"))
    two = VolumeStore(str(tmp_path / "b.db"))
    value = {"data": {"auth_password": "s3cret", "discovery_auth_password": "d", "x": ["y"]}}
    assert one.redact(value) == one.redact(value)
    assert one.redact(value) != two.redact(value)
    assert "s3cret" not in json.dumps(one.redact(value))
    assert one.redact(value)["data"]["x"] == ["y"]
