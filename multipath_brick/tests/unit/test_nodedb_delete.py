"""The daemon's node record delete, replayed against what iscsiadm's left in the lab.

``tests/fixtures/node_delete_sequence.txt`` lists the whole of ``/etc/iscsi``
before and after each ``iscsiadm -m node -o delete``. Each listing is built
here as files (records as iscsiadm wrote them, its links, its modes), the
daemon's delete (:meth:`~multipath_brick.privileged.nodedb.NodeDb.delete_node`)
runs where iscsiadm's ran, and the tree it leaves is compared with the next
listing. Sessions come and go in a sysfs tree as the sequence's logins and
logouts say.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from multipath_brick.privileged import nodedb
from multipath_brick.privileged.nodedb import NodeDb, NodeDbError
from multipath_brick.tests.unit.test_fake_host_fixtures import Capture, captures
from multipath_brick.tests.unit.test_nodedb import IQN, hold_lock, real_record

SEQUENCE = "node_delete_sequence.txt"
RECORD = real_record(f"/etc/iscsi/nodes/{IQN}/192.168.100.2,3260")


def record_text(tpgt: str, iface: str) -> str:
    """The lab's record, filed for that tpgt and iface."""
    lines = []
    for line in RECORD.splitlines(True):
        key = line.partition("=")[0].strip()
        if key == "node.tpgt":
            line = f"node.tpgt = {tpgt}\n"
        elif key == "iface.iscsi_ifacename":
            line = f"iface.iscsi_ifacename = {iface}\n"
        lines.append(line)
    return "".join(lines)


def build(root: Path, listing: str) -> None:
    """Make ``root`` hold what a ``find -printf '%y %m %P %l'`` listing shows."""
    for line in sorted(listing.splitlines(), key=lambda entry: entry.split(" ")[2]):
        kind, mode, rel, *link = line.rstrip(" ").split(" ")
        path = root / rel
        if kind == "d":
            path.mkdir()
        elif kind == "l":
            path.symlink_to(link[0])
            continue
        else:
            parts = rel.split("/")
            if len(parts) == 3:  # nodes/<iqn>/<address>,<port>: flat, iface in the file
                path.write_text(record_text("-1", "default"))
            else:  # nodes/<iqn>/<address>,<port>,<tpgt>/<iface>
                path.write_text(record_text(parts[2].rsplit(",", 1)[1], parts[3]))
        path.chmod(int(mode, 8))


def listing(root: Path) -> set[str]:
    """``root`` as that listing shows it."""
    found = set()
    for path in root.rglob("*"):
        st = path.lstat()
        rel = path.relative_to(root)
        if stat.S_ISLNK(st.st_mode):
            found.add(f"l 777 {rel} {os.readlink(path)}")
        else:
            kind = "d" if stat.S_ISDIR(st.st_mode) else "f"
            found.add(f"{kind} {stat.S_IMODE(st.st_mode):o} {rel} ")
    return found


def tagged_tree(tmp_path: Path) -> tuple[Path, str]:
    """The database as case B's first listing shows it (three tpgt records and
    their static links), and that listing."""
    root = tmp_path / "etc-iscsi"
    root.mkdir()
    shown = next(b for b in captures(SEQUENCE) if "static/" in b.stdout).stdout
    build(root, shown)
    return root, shown


def refused(db: NodeDb, iface: str, code: int, words: str) -> None:
    """The delete of portal 0's record through ``iface`` is refused so."""
    with pytest.raises(NodeDbError) as info:
        db.delete_node("192.168.100.2:3260", IQN, iface, 5)
    assert info.value.code == code
    assert words in str(info.value)


def login(sysfs: Path, sid: int, portal: str, iface: str) -> None:
    address, port = portal.rsplit(":", 1)
    session = sysfs / f"sys/class/iscsi_session/session{sid}"
    conn = sysfs / f"sys/class/iscsi_connection/connection{sid}:0"
    for path, text in (
        (session / "targetname", IQN),
        (session / "ifacename", iface),
        (conn / "persistent_address", address),
        (conn / "persistent_port", port),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n")


def logout(sysfs: Path, sid: int) -> None:
    for path in (
        sysfs / f"sys/class/iscsi_session/session{sid}",
        sysfs / f"sys/class/iscsi_connection/connection{sid}:0",
    ):
        for entry in path.iterdir():
            entry.unlink()
        path.rmdir()


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def replay(tmp_path: Path, blocks: list[Capture]) -> list[tuple[str, set[str], set[str]]]:
    """Run the sequence's deletes with the daemon's delete; each listing that
    follows one of them, as (its command, what iscsiadm left, what we left)."""
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()
    compared = []
    root: Path | None = None
    deleted: str | None = None
    sessions: dict[tuple[str, str], int] = {}
    for n, block in enumerate(blocks):
        argv = shlex.split(block.command)
        if argv[0] == "find":
            if deleted is not None and root is not None:
                compared.append((deleted, set(block.stdout.splitlines()), listing(root)))
            root, deleted = tmp_path / f"etc-iscsi-{n}", None
            root.mkdir()
            build(root, block.stdout)
            continue
        portal, iface = option(argv, "-p").split(",")[0], option(argv, "-I")
        if "--login" in argv and block.exit_code == 0:
            sessions[(portal, iface)] = len(sessions) + 1
            login(sysfs, sessions[(portal, iface)], portal, iface)
        elif "--logout" in argv and block.exit_code == 0:
            logout(sysfs, sessions.pop((portal, iface)))
        elif argv[-2:] == ["-o", "new"]:
            root = deleted = None  # iscsiadm made records: the next listing shows them
        elif argv[-2:] == ["-o", "delete"]:
            assert root is not None, "a delete right after a -o new: list the tree between"
            db = NodeDb(root=str(root), lock_dir=str(tmp_path / "lock"), sysfs_root=str(sysfs))
            try:
                code = 0 if db.delete_node(portal, IQN, iface, 5) else -1
            except NodeDbError as error:
                code = error.code
            assert code == block.exit_code, block.command
            deleted = block.command
    return compared


def test_the_daemon_leaves_the_database_as_iscsiadm_does(tmp_path: Path) -> None:
    compared = replay(tmp_path, captures(SEQUENCE))
    # A: the flat record; B: each tpgt record of portal 0, then portal 1's; C.
    assert len(compared) == 5
    for command, theirs, ours in compared[:4]:
        assert ours == theirs, command
    # C: a flat record (default) and a tpgt record (mpb-mpbi0) of one portal.
    # iscsiadm removed mpb-mpbi0's link but the default flat file, and left
    # mpb-mpbi0's own record; the daemon deletes mpb-mpbi0's record only.
    command, theirs, ours = compared[4]
    target = f"nodes/{IQN}"
    flat = f"f 600 {target}/192.168.100.2,3260 "
    tagged = {
        f"d 700 {target}/192.168.100.2,3260,1 ",
        f"f 600 {target}/192.168.100.2,3260,1/mpb-mpbi0 ",
    }
    assert flat not in theirs and tagged <= theirs
    assert ours == (theirs - tagged) | {flat}, command


def test_a_delete_refused_for_a_session_removes_nothing(tmp_path: Path) -> None:
    root, before = tagged_tree(tmp_path)
    sysfs = tmp_path / "sysfs"
    login(sysfs, 7, "192.168.100.2:3260", "mpb-mpbi1")
    db = NodeDb(root=str(root), lock_dir=str(tmp_path / "lock"), sysfs_root=str(sysfs))
    refused(db, "mpb-mpbi1", nodedb.ERR_SESS_EXISTS, "session7")
    assert listing(root) == set(before.splitlines())
    # A session to another portal, or through another iface, is not this record's.
    db.delete_node("192.168.100.2:3260", IQN, "mpb-mpbi0", 5)
    db.delete_node("192.168.101.2:3260", IQN, "default", 5)


def test_a_record_of_another_kind_is_refused_before_anything_goes(tmp_path: Path) -> None:
    root, before = tagged_tree(tmp_path)
    record = root / f"nodes/{IQN}/192.168.100.2,3260,1/mpb-mpbi0"
    record.write_text(record.read_text().replace("= static", "= fw"))
    db = NodeDb(root=str(root), lock_dir=str(tmp_path / "lock"), sysfs_root=str(tmp_path))
    refused(db, "mpb-mpbi0", nodedb.ERR_IDBM, "fw record")
    assert listing(root) == set(before.splitlines())


def test_something_else_where_the_link_was_is_left_alone(tmp_path: Path) -> None:
    root, _ = tagged_tree(tmp_path)
    link = root / f"static/{IQN},192.168.100.2,3260,1,mpb-mpbi0"
    link.unlink()
    link.write_text("not iscsiadm's\n")
    db = NodeDb(root=str(root), lock_dir=str(tmp_path / "lock"), sysfs_root=str(tmp_path))
    db.delete_node("192.168.100.2:3260", IQN, "mpb-mpbi0", 5)
    assert link.read_text() == "not iscsiadm's\n"
    assert not (root / f"nodes/{IQN}/192.168.100.2,3260,1/mpb-mpbi0").exists()


def test_a_held_lock_is_waited_for_and_a_missing_record_is_21(tmp_path: Path) -> None:
    root, _ = tagged_tree(tmp_path)
    held = hold_lock(tmp_path / "lock")
    seen: list[bool] = []

    def other_program(_: float) -> None:
        seen.append((root / f"nodes/{IQN}/192.168.101.2,3260,1/default").exists())
        held.unlink()

    db = NodeDb(
        root=str(root),
        lock_dir=str(tmp_path / "lock"),
        sysfs_root=str(tmp_path),
        sleep=other_program,
    )
    assert db.delete_node("192.168.101.2:3260", IQN, "default", 5) == 1
    assert seen == [True]
    with pytest.raises(NodeDbError) as info:
        db.delete_node("192.168.101.2:3260", IQN, "default", 5)
    assert (info.value.code, str(info.value)) == (nodedb.ERR_NO_OBJS_FOUND, "No records found")


def test_a_discovered_record_loses_its_link_from_the_discovery_record(tmp_path: Path) -> None:
    # A record made by sendtargets discovery is linked from the discovery
    # record's directory (setup_disc_to_node_link), not from static/.
    root, _ = tagged_tree(tmp_path)
    record = root / f"nodes/{IQN}/192.168.100.2,3260,1/mpb-mpbi0"
    record.write_text(
        record.read_text().replace(
            "node.discovery_type = static",
            "node.discovery_address = 192.168.100.2\n"
            "node.discovery_port = 3260\n"
            "node.discovery_type = send_targets",
        )
    )
    source = root / "send_targets/192.168.100.2,3260"
    source.mkdir(mode=0o700)
    link = source / f"{IQN},192.168.100.2,3260,1,mpb-mpbi0"
    link.symlink_to(f"/etc/iscsi/nodes/{IQN}/192.168.100.2,3260,1")
    static = root / f"static/{IQN},192.168.100.2,3260,1,mpb-mpbi0"
    db = NodeDb(root=str(root), lock_dir=str(tmp_path / "lock"), sysfs_root=str(tmp_path))
    assert db.delete_node("192.168.100.2:3260", IQN, "mpb-mpbi0", 5) == 1
    assert not link.is_symlink() and not record.exists()
    assert static.is_symlink()  # not this record's link: left as it is
