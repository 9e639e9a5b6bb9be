"""The daemon's record writer against a database laid out as iscsiadm lays it out.

The records are the files iscsiadm 2.1.8 wrote in the lab
(``tests/fixtures/iscsiadm_node_record.txt``), without their secret lines, as
``-o new`` and a non-secret ``-o update`` leave them. The lock is iscsiadm's:
a ``lock.write`` hard link that another program may hold.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from multipath_brick.privileged import nodedb
from multipath_brick.privileged.nodedb import NodeDb, NodeDbError
from multipath_brick.tests.unit.test_fake_host_fixtures import capture

IQN = "iqn.2024-01.org.multipath-brick.lab:target0"
PORTAL = "192.168.100.2:3260"
SECRET, SECRET_IN = "Rec0rd-S3cret-1", "Rec0rd-S3cret-2"
NODE_KEYS = (nodedb.NODE_SECRET, nodedb.NODE_SECRET_IN)


def real_record(path: str) -> str:
    """A record as iscsiadm wrote it in the lab, secret lines taken out."""
    text = capture("iscsiadm_node_record.txt", f"cat {path}").stdout
    assert text.startswith("# BEGIN RECORD 2.1.8\n") and text.endswith("# END RECORD\n")
    return "".join(line for line in text.splitlines(True) if ".password" not in line)


NODE_RECORD = f"/etc/iscsi/nodes/{IQN}/192.168.100.2,3260"
ST_RECORD = "/etc/iscsi/send_targets/192.168.100.2,3260/st_config"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """``/etc/iscsi`` with one old-style node record and one discovery record, 0700/0600."""
    db = tmp_path / "etc-iscsi"
    for rel, text in (
        (NODE_RECORD, real_record(NODE_RECORD)),
        (ST_RECORD, real_record(ST_RECORD)),
    ):
        path = db / rel.removeprefix("/etc/iscsi/")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
    return db


def make_db(tmp_path: Path, root: Path, **kwargs: object) -> NodeDb:
    return NodeDb(root=str(root), lock_dir=str(tmp_path / "run-lock-iscsi"), **kwargs)  # type: ignore[arg-type]


def node_path(root: Path) -> Path:
    return root / "nodes" / IQN / "192.168.100.2,3260"


def test_secrets_land_after_their_usernames_and_nothing_else_changes(
    tmp_path: Path, root: Path
) -> None:
    before = node_path(root).read_text()
    db = make_db(tmp_path, root)
    values = {nodedb.NODE_SECRET: SECRET, nodedb.NODE_SECRET_IN: SECRET_IN}
    assert db.write_node(PORTAL, IQN, "default", values, 5.0) == 1
    after = node_path(root).read_text().splitlines()
    # The same record iscsiadm itself writes with -o update (the capture's own
    # file), secret lines at iscsiadm's places.
    real = capture("iscsiadm_node_record.txt", f"cat {NODE_RECORD}").stdout.splitlines()
    expected = [
        f"{key} = {values[key]}" if (key := line.partition(" = ")[0]) in values else line
        for line in real
    ]
    assert after == expected
    assert [line for line in after if ".password" not in line] == before.splitlines()
    mode = node_path(root).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert os.listdir(node_path(root).parent) == ["192.168.100.2,3260"]  # no temporary left
    assert not os.path.exists(tmp_path / "run-lock-iscsi" / "lock.write")  # released


def test_settings_and_secrets_in_one_write_are_what_iscsiadm_update_writes(
    tmp_path: Path, root: Path
) -> None:
    # The record as -o new leaves it (iscsid.conf's defaults: automatic, auto, 15),
    # then the attach's one write: each setting's line keeps its place, as
    # iscsiadm -o update keeps it, and the secret lands after its username.
    path = node_path(root)
    lines = path.read_text().splitlines()
    values = {
        "node.startup": "manual",
        "node.session.scan": "manual",
        "node.conn[0].timeo.login_timeout": "4",
        nodedb.NODE_SECRET: SECRET,
    }
    assert make_db(tmp_path, root).write_node(PORTAL, IQN, "default", values, 5) == 1
    after = path.read_text().splitlines()
    expected = [
        f"{key} = {values[key]}" if (key := ln.partition(" = ")[0]) in values else ln
        for ln in lines
    ]
    username = expected.index("node.session.auth.username = mpbuser")
    expected.insert(username + 1, f"{nodedb.NODE_SECRET} = {SECRET}")
    assert after == expected


def test_a_read_gives_the_files_lines_with_the_secrets_masked(tmp_path: Path, root: Path) -> None:
    db = make_db(tmp_path, root)
    db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    shown = db.read_node(PORTAL, IQN, "default", 5)
    written = node_path(root).read_text()
    assert SECRET not in shown and f"{nodedb.NODE_SECRET} = {nodedb.MASKED}" in shown
    masked = written.replace(SECRET, nodedb.MASKED)
    assert shown == masked
    assert not os.path.exists(tmp_path / "run-lock-iscsi" / "lock.write")  # released
    with pytest.raises(NodeDbError) as raised:
        db.read_node(PORTAL, IQN, "eth1-iface", 5)
    assert raised.value.code == nodedb.ERR_NO_OBJS_FOUND


@pytest.mark.parametrize("key", ["node.name", "iface.net_ifacename", "node.conn[0].address"])
def test_a_key_the_library_does_not_write_is_refused(tmp_path: Path, root: Path, key: str) -> None:
    before = node_path(root).read_text()
    with pytest.raises(NodeDbError, match="not keys this record may be written") as raised:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {key: "x"}, 5)
    assert raised.value.code == nodedb.ERR_IDBM
    assert node_path(root).read_text() == before


def test_set_again_replaces_in_place_and_none_removes(tmp_path: Path, root: Path) -> None:
    db = make_db(tmp_path, root)
    db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: "one-1", NODE_KEYS[1]: "two-2"}, 5)
    db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET, NODE_KEYS[1]: None}, 5)
    lines = node_path(root).read_text().splitlines()
    assert [ln for ln in lines if ".password" in ln] == [f"node.session.auth.password = {SECRET}"]
    assert "one-1" not in "".join(lines) and "two-2" not in "".join(lines)


def test_a_record_without_usernames_gets_its_secrets_before_the_end(
    tmp_path: Path, root: Path
) -> None:
    path = node_path(root)
    path.write_text(
        "".join(ln for ln in path.read_text().splitlines(True) if "username" not in ln)
    )
    make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert path.read_text().endswith(f"node.session.auth.password = {SECRET}\n# END RECORD\n")


def test_discovered_records_live_under_a_tpgt_directory(tmp_path: Path, root: Path) -> None:
    # iscsiadm's other layout: nodes/<iqn>/<address>,<port>,<tpgt>/<iface>.
    old = node_path(root)
    tpgt_dir = old.parent / "192.168.100.2,3260,1"
    tpgt_dir.mkdir(mode=0o700)
    old.rename(tpgt_dir / "default")
    db = make_db(tmp_path, root)
    assert db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5) == 1
    assert f"node.session.auth.password = {SECRET}" in (tpgt_dir / "default").read_text()
    # iscsiadm reads every file of a tpgt directory as a record: nothing else there.
    assert os.listdir(tpgt_dir) == ["default"]
    with pytest.raises(NodeDbError) as info:
        db.write_node(PORTAL, IQN, "eth1-iface", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_NO_OBJS_FOUND


@pytest.mark.parametrize(
    ("portal", "iqn", "iface"),
    [
        ("192.168.100.9:3260", IQN, "default"),  # no such portal
        (PORTAL, "iqn.2024-01.org.example:other", "default"),  # no such target
        (PORTAL, IQN, "bond0"),  # the old-style file is another iface's record
    ],
)
def test_no_record_is_21_and_nothing_is_made(
    tmp_path: Path, root: Path, portal: str, iqn: str, iface: str
) -> None:
    before = sorted(p.name for p in root.rglob("*"))
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(portal, iqn, iface, {nodedb.NODE_SECRET: SECRET}, 5)
    assert (info.value.code, str(info.value)) == (21, "No records found")
    assert sorted(p.name for p in root.rglob("*")) == before


def test_discovery_record_secrets(tmp_path: Path, root: Path) -> None:
    db = make_db(tmp_path, root)
    db.set_discovery_secrets(
        PORTAL, {nodedb.DISCOVERY_SECRET: SECRET, nodedb.DISCOVERY_SECRET_IN: None}, 5
    )
    lines = (root / ST_RECORD.removeprefix("/etc/iscsi/")).read_text().splitlines()
    at = lines.index("discovery.sendtargets.auth.username = mpbdisc")
    assert lines[at + 1] == f"discovery.sendtargets.auth.password = {SECRET}"
    # The temporary file lived in send_targets/, which iscsiadm lists by "addr,port" names.
    assert sorted(os.listdir(root / "send_targets")) == ["192.168.100.2,3260"]
    with pytest.raises(NodeDbError) as info:
        db.set_discovery_secrets("192.168.100.9:3260", {nodedb.DISCOVERY_SECRET: SECRET}, 5)
    assert info.value.code == 21


# --- what the writer refuses to follow ----------------------------------------------------


def test_symlinked_target_directory_is_refused(tmp_path: Path, root: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (root / "nodes" / IQN).rename(elsewhere)
    (root / "nodes" / IQN).symlink_to(elsewhere)
    before = (elsewhere / "192.168.100.2,3260").read_text()
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM and SECRET not in str(info.value)
    assert (elsewhere / "192.168.100.2,3260").read_text() == before


def test_symlinked_record_is_refused_and_its_target_untouched(tmp_path: Path, root: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("# BEGIN RECORD 2.1.8\n# END RECORD\n")
    node_path(root).unlink()
    node_path(root).symlink_to(victim)
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM
    assert victim.read_text() == "# BEGIN RECORD 2.1.8\n# END RECORD\n"
    assert node_path(root).is_symlink()


def test_symlinked_lock_directory_is_refused(tmp_path: Path, root: Path) -> None:
    (tmp_path / "planted").mkdir()
    (tmp_path / "run-lock-iscsi").symlink_to(tmp_path / "planted")
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM
    assert os.listdir(tmp_path / "planted") == []


def test_world_writable_database_directory_is_refused(tmp_path: Path, root: Path) -> None:
    (root / "nodes" / IQN).chmod(0o777)
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM


def test_not_a_record_is_refused(tmp_path: Path, root: Path) -> None:
    node_path(root).write_text("node.session.auth.username = x\n")
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM
    assert node_path(root).read_text() == "node.session.auth.username = x\n"


@pytest.mark.parametrize("iqn", ["..", ".", "a/../../b", ""])
def test_path_parts_never_climb(tmp_path: Path, root: Path, iqn: str) -> None:
    with pytest.raises(NodeDbError) as info:
        make_db(tmp_path, root).write_node(PORTAL, iqn, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert info.value.code == nodedb.ERR_IDBM


def test_a_temporary_file_a_killed_writer_left_is_swept(tmp_path: Path, root: Path) -> None:
    stale = node_path(root).parent / ".mpb-record-0123456789abcdef"
    stale.write_text("half a record")
    make_db(tmp_path, root).write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert os.listdir(node_path(root).parent) == ["192.168.100.2,3260"]


# --- iscsiadm's lock ------------------------------------------------------------------------


def hold_lock(lock_dir: Path) -> Path:
    """Take the lock as idbm_lock does: link(lock, lock.write)."""
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    (lock_dir / "lock").touch(mode=0o600)
    os.link(lock_dir / "lock", lock_dir / "lock.write")
    return lock_dir / "lock.write"


def test_a_held_lock_delays_the_write_until_released(tmp_path: Path, root: Path) -> None:
    held = hold_lock(tmp_path / "run-lock-iscsi")
    before = node_path(root).read_text()
    seen: list[str] = []

    def other_program_finishes(_: float) -> None:
        # Each pause of the writer is a moment the other program still holds the
        # lock: the record must be untouched. On the third, it lets go.
        seen.append(node_path(root).read_text())
        if len(seen) == 3:
            held.unlink()

    db = make_db(tmp_path, root, sleep=other_program_finishes)
    db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 5)
    assert seen == [before] * 3
    assert SECRET in node_path(root).read_text()
    assert not held.exists()


def test_a_lock_held_past_the_timeout_is_not_taken_over(tmp_path: Path, root: Path) -> None:
    held = hold_lock(tmp_path / "run-lock-iscsi")
    now = [0.0]

    def tick(seconds: float) -> None:
        now[0] += seconds

    db = make_db(tmp_path, root, clock=lambda: now[0], sleep=tick)
    before = node_path(root).read_text()
    with pytest.raises(NodeDbError) as info:
        db.write_node(PORTAL, IQN, "default", {nodedb.NODE_SECRET: SECRET}, 2.0)
    assert info.value.code == nodedb.TIMED_OUT and "lock.write" in str(info.value)
    assert held.exists() and node_path(root).read_text() == before
    assert 2.0 <= now[0] < 2.1  # waited its timeout, in idbm's 10 ms steps


def test_writers_and_an_iscsiadm_like_program_never_corrupt_each_other(
    tmp_path: Path, root: Path
) -> None:
    # Eight targets' records: the writer sets each one's secrets from its own
    # thread while another "iscsiadm" rewrites every record in place (fopen "w",
    # as idbm_rec_write does) under the same lock. Every record must end whole,
    # with its own secret and the other program's last update.
    template = node_path(root).read_text()
    iqns = [f"iqn.2024-01.org.example:t{i}" for i in range(8)]
    for iqn in iqns:
        path = root / "nodes" / iqn / "192.168.100.2,3260"
        path.parent.mkdir(mode=0o700)
        path.write_text(template.replace(IQN, iqn))
        path.chmod(0o600)
    db = make_db(tmp_path, root)
    lock_dir = tmp_path / "run-lock-iscsi"
    errors: list[BaseException] = []

    def iscsiadm_update(rounds: int) -> None:
        for n in range(rounds):
            for iqn in iqns:
                while True:
                    try:
                        os.link(lock_dir / "lock", lock_dir / "lock.write")
                        break
                    except FileExistsError:
                        continue
                    except FileNotFoundError:  # the writer has not made the lock yet
                        lock_dir.mkdir(mode=0o700, exist_ok=True)
                        (lock_dir / "lock").touch(mode=0o600)
                try:
                    path = root / "nodes" / iqn / "192.168.100.2,3260"
                    lines = path.read_text().splitlines(True)
                    with open(path, "w") as f:  # in place, as iscsiadm does
                        for line in lines:
                            if line.startswith("node.session.nr_sessions"):
                                line = f"node.session.nr_sessions = {n + 1}\n"
                            f.write(line)
                finally:
                    os.unlink(lock_dir / "lock.write")

    def writer(iqn: str) -> None:
        try:
            for k in range(20):
                db.write_node(PORTAL, iqn, "default", {nodedb.NODE_SECRET: f"{iqn}-{k}"}, 30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(iqn,)) for iqn in iqns]
    threads.append(threading.Thread(target=iscsiadm_update, args=(10,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for iqn in iqns:
        text = (root / "nodes" / iqn / "192.168.100.2,3260").read_text()
        lines = text.splitlines()
        assert lines[0] == "# BEGIN RECORD 2.1.8" and lines[-1] == "# END RECORD"
        assert f"node.session.auth.password = {iqn}-19" in lines
        assert "node.session.nr_sessions = 10" in lines
        assert len(lines) == len(template.splitlines()) + 1
        assert os.listdir(root / "nodes" / iqn) == ["192.168.100.2,3260"]
