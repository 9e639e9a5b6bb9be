"""The fake host against real output captured in the QEMU lab (tests/fixtures/).

The fake is set up like the lab (target, portals, CHAP, node settings) and asked
the same commands; its stdout, stderr and exit codes must match the capture.
Lab-specific values that the fake generates differently (WWIDs in tgt's format,
scsi host numbers, multipathd's pid, timestamps) are substituted or masked.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multipath_brick import verbs as v
from multipath_brick.host.base import TIMED_OUT, CommandResult
from multipath_brick.testing import FakeHost, FakeTarget
from multipath_brick.tests.unit.conftest import torn_down

FIXTURES = Path(__file__).parent.parent / "fixtures"
IQN = "iqn.2024-01.org.multipath-brick.lab:target0"
PORTALS = [f"192.168.{100 + k}.2:3260" for k in range(4)]
LAB_WWID = "360000000000000004d42000100010001"
MIB = 1 << 20
_HEADER = re.compile(r"# \$ (?P<cmd>.*?)  \(exit (?P<exit>-?[0-9]+)(, [0-9.]+ s)?\)")
_STAMP = re.compile(r"^[0-9]+\.[0-9]{6} \| ", re.MULTILINE)


@dataclasses.dataclass
class Capture:
    command: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""


def captures(name: str) -> list[Capture]:
    """The blocks of a fixture file, in order (``# NOTE: <name>`` lines dropped: what
    a capture script notes, never a line a command printed, such as the header
    of /etc/multipath/wwids, ``# NOTE: This file is ...``)."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not captured yet")
    blocks: list[Capture] = []
    stream = "stdout"
    for line in path.read_text().splitlines(keepends=True):
        header = _HEADER.fullmatch(line.rstrip("\n"))
        if header:
            blocks.append(Capture(header["cmd"], int(header["exit"])))
            stream = "stdout"
        elif line.startswith("# --- stderr ---"):
            stream = "stderr"
        elif not line.startswith(f"# NOTE: {name} ") and blocks:
            block = blocks[-1]
            setattr(block, stream, getattr(block, stream) + line)
    return blocks


def capture(name: str, command_part: str = "") -> Capture:
    return next(c for c in captures(name) if command_part in c.command)


def unstamp(text: str) -> str:
    return _STAMP.sub("", text)


@pytest.fixture
def lab() -> Iterator[tuple[FakeHost, FakeTarget]]:
    with FakeHost(time_scale=0) as host:
        target = host.add_target(
            IQN, PORTALS, luns={1: 64 * MIB, 2: 32 * MIB}, chap=("mpbuser", "mpb-secret-123")
        )
        yield host, target


def node(host: FakeHost, portal: str) -> None:
    """The lab's node setup: CHAP, manual scan, short timeouts."""
    assert host.run(v.NodeNew(portal, IQN, "default"), timeout=30).ok
    for name, value in (
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", "mpbuser"),
        ("node.session.scan", "manual"),
        ("node.session.timeo.replacement_timeout", "5"),
        ("node.conn[0].timeo.noop_out_interval", "2"),
        ("node.conn[0].timeo.noop_out_timeout", "2"),
    ):
        assert host.run(v.NodeUpdate.one(portal, IQN, "default", name, value), timeout=30).ok
    # The lab wrote the secret with iscsiadm -o update; the library writes it off the argv.
    assert host.run(v.NodeWrite(portal, IQN, "default", password="mpb-secret-123"), timeout=30).ok


def check(host: FakeHost, cmd: v.Command | v.RecordVerb, real: Capture) -> None:
    result = host.run(cmd, timeout=300)
    assert (result.exit_code, result.stdout, result.stderr) == (
        real.exit_code,
        real.stdout,
        real.stderr,
    )


def test_node_records(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, _ = lab
    check(host, v.NodeList(), capture("iscsiadm_node_none.txt"))
    check(host, v.NodeNew(PORTALS[0], IQN, "default"), capture("iscsiadm_node_new.txt"))
    update = v.NodeUpdate.one(PORTALS[0], IQN, "default", "node.session.auth.authmethod", "CHAP")
    check(host, update, capture("iscsiadm_node_update.txt"))
    for portal in PORTALS:
        node(host, portal)
    check(host, v.NodeShow(PORTALS[0], IQN, "default"), capture("iscsiadm_node_show.txt"))
    check(host, v.NodeList(), capture("iscsiadm_node.txt"))


def test_login_and_sessions(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, _ = lab
    check(host, v.SessionList(), capture("iscsiadm_session_none.txt"))
    for portal in PORTALS:
        node(host, portal)
    assert host.run(v.NodeLogin(PORTALS[0], IQN, "default"), timeout=30).ok
    check(host, v.NodeLogin(PORTALS[1], IQN, "default"), capture("iscsiadm_login_ok.txt"))
    check(host, v.NodeLogin(PORTALS[0], IQN, "default"), capture("iscsiadm_login_exists.txt"))
    for portal in PORTALS[2:]:
        assert host.run(v.NodeLogin(portal, IQN, "default"), timeout=30).ok
    check(host, v.SessionList(), capture("iscsiadm_session.txt"))


def test_manual_scan_sequence(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, _ = lab
    node(host, PORTALS[0])
    blocks = captures("scan_manual.txt")
    check(host, v.NodeLogin(PORTALS[0], IQN, "default"), blocks[1])
    device_dir = set(capture("scan_manual.txt", "ls /sys/class/iscsi_session").stdout.split())
    assert set(host.list_dir("/sys/class/iscsi_session/session1/device")) <= device_dir
    listings = [b.stdout.split() for b in blocks if b.command == "ls /sys/block"]
    for lun, listing in zip((1, 2, 9), listings[1:], strict=True):
        host.write(v.ScsiScan(2, 0, 0, lun), timeout=30)
        assert host.list_dir("/sys/block") == [d for d in listing if d.startswith("sd")]


def test_sysfs_links_and_attributes(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, target = lab
    for portal in PORTALS:
        node(host, portal)
        assert host.run(v.NodeLogin(portal, IQN, "default"), timeout=30).ok
    host.remember_wwid(target.wwid(1))
    for h in host_numbers(host).values():
        host.write(v.ScsiScan(h, 0, 0, 1), timeout=30)
    captures("sysfs_tree.txt")  # skips until captured

    def real(path: str) -> str:
        return capture("sysfs_tree.txt", f"cat {path}").stdout.strip()

    def ours(path: str) -> str:
        return host.read_text(path).strip()

    session = "/sys/class/iscsi_session/session1"
    for attr in ("targetname", "ifacename", "tpgt", "recovery_tmo", "state", "username"):
        assert ours(f"{session}/{attr}") == real(f"{session}/{attr}")
    conn = "/sys/class/iscsi_connection/connection1:0"
    for attr in ("persistent_address", "persistent_port", "address", "port", "state"):
        assert ours(f"{conn}/{attr}") == real(f"{conn}/{attr}")
    lab_host = 6  # the lab's first iSCSI scsi host; ours is 2

    def as_lab(path: str) -> str:
        return path.replace("host2", f"host{lab_host}").replace("target2:", f"target{lab_host}:")

    hctl = "2:0:0:1"
    assert as_lab(host.realpath(f"{session}/device")) == capture(
        "sysfs_tree.txt", f"readlink -f {session}/device"
    ).stdout.strip().replace("6:0:0:1", hctl)
    readlink = capture("sysfs_tree.txt", "readlink -f /sys/block/sda/device").stdout.strip()
    assert as_lab(host.realpath("/sys/block/sda/device")).replace(hctl, "6:0:0:1") == readlink
    holders = capture("sysfs_tree.txt", "ls -l /sys/block/sda/holders/").stdout
    assert f"dm-0 -> {os.readlink(host.root + '/sys/block/sda/holders/dm-0')}\n" in holders
    slaves = capture("sysfs_tree.txt", "ls -l /sys/block/dm-0/slaves/").stdout
    link = os.readlink(host.root + "/sys/block/dm-0/slaves/sda")
    assert f"sda -> {as_lab(link).replace(hctl, '6:0:0:1')}\n" in slaves
    devs = capture("sysfs_tree.txt", "ls -l /dev/mapper/").stdout.replace(LAB_WWID, target.wwid(1))
    for path in (
        f"/dev/mapper/{target.wwid(1)}",
        f"/dev/disk/by-id/dm-uuid-mpath-{target.wwid(1)}",
    ):
        assert f"{os.path.basename(path)} -> {os.readlink(host.root + path)}\n" in devs


def host_numbers(host: FakeHost) -> dict[int, int]:
    """sid -> scsi host number, read from sysfs as the library does."""
    found = {}
    for sid, *_ in host.sessions():
        device = host.realpath(f"/sys/class/iscsi_session/session{sid}/device")
        match = re.search(r"/host([0-9]+)/", device)
        assert match
        found[sid] = int(match.group(1))
    return found


def test_multipath_formats(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, target = lab
    wwid = target.wwid(1)

    def as_ours(c: Capture) -> Capture:
        return Capture(
            c.command.replace(LAB_WWID, wwid),
            c.exit_code,
            c.stdout.replace(LAB_WWID, wwid),
            unstamp(c.stderr.replace(LAB_WWID, wwid)),
        )

    daemon = host.run(v.MultipathdShowDaemon(), timeout=30)
    real_daemon = capture("multipathd_show_daemon.txt")
    assert re.sub("[0-9]+", "N", daemon.stdout) == re.sub("[0-9]+", "N", real_daemon.stdout)
    for portal in PORTALS:
        node(host, portal)
        assert host.run(v.NodeLogin(portal, IQN, "default"), timeout=30).ok
    for h in host_numbers(host).values():
        host.write(v.ScsiScan(h, 0, 0, 1), timeout=30)
    # The daemon records only a WWID an iSCSI disk carries: the disks come first.
    check(host, v.MultipathAddWwid(wwid, "sda"), as_ours(capture("multipath_a.txt")))
    assert host.run(v.MultipathdAddPath("sda"), timeout=30).ok
    assert host.maps() == {wwid: ["sda", "sdb", "sdc", "sdd"]}
    # The columns our show-paths verb asks for, as the lab showed them with
    # every path up, then with every portal dropped.
    for name, down in (
        ("multipathd_show_paths_format.txt", False),
        ("multipathd_show_paths_all_failed.txt", True),
    ):
        real = as_ours(capture(name))
        assert real.command.split("'")[1].startswith(v.MultipathdShowPaths.FORMAT + " ")
        for portal in PORTALS:
            host.set_unreachable(portal, down)
        ours = host.run(v.MultipathdShowPaths(), timeout=30).stdout.splitlines()
        rows = real.stdout.splitlines()[1:]  # without the header the raw form omits
        assert sorted(ours) == sorted(" ".join(row.split()[:5]) for row in rows)
    for portal in PORTALS:
        host.set_unreachable(portal, False)

    busy, _, done, *_ = [as_ours(c) for c in captures("multipath_f_busy.txt")]
    host.fail_flush(wwid, True)
    result = host.run(v.MultipathFlush(wwid), timeout=30)
    assert (result.exit_code, result.stdout, unstamp(result.stderr)) == (
        busy.exit_code,
        busy.stdout,
        busy.stderr,
    )
    host.fail_flush(wwid, False)
    check(host, v.MultipathFlush(wwid), done)
    assert host.maps() == {}


def test_logout_and_delete(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, _ = lab
    node(host, PORTALS[0])
    assert host.run(v.NodeLogin(PORTALS[0], IQN, "default"), timeout=30).ok
    logout = v.NodeLogout(PORTALS[0], IQN, "default")
    check(host, logout, capture("iscsiadm_logout.txt"))
    check(host, logout, capture("iscsiadm_logout_nosession.txt"))
    # The daemon deletes records itself: iscsiadm's exit codes, its own text
    # (once the kernel has let the session go).
    assert torn_down(host)
    delete = v.NodeDelete(PORTALS[0], IQN, "default")
    for fixture in ("iscsiadm_node_delete.txt", "iscsiadm_node_delete_missing.txt"):
        assert host.run(delete, timeout=30).exit_code == capture(fixture).exit_code
    assert host.leftovers() == {}


def test_failed_logins(lab: tuple[FakeHost, FakeTarget]) -> None:
    host, _ = lab
    node(host, PORTALS[0])
    wrong = v.NodeWrite(PORTALS[0], IQN, "default", password="wrong-1")
    assert host.run(wrong, timeout=30).ok
    login = v.NodeLogin(PORTALS[0], IQN, "default")
    check(host, login, capture("iscsiadm_login_badchap.txt"))
    check(host, v.SessionList(), capture("iscsiadm_session_after_badchap.txt"))
    node(host, PORTALS[3])
    for name, value in (
        ("node.conn[0].timeo.login_timeout", "2"),
        ("node.session.initial_login_retry_max", "1"),
    ):
        assert host.run(v.NodeUpdate.one(PORTALS[3], IQN, "default", name, value), timeout=30).ok
    host.set_unreachable(PORTALS[3], True)
    login = v.NodeLogin(PORTALS[3], IQN, "default")
    assert host.run(login, timeout=1.9).exit_code == TIMED_OUT  # 2 s x 1 try
    check(host, login, capture("iscsiadm_login_unreachable.txt"))
    host.set_unreachable(PORTALS[3], False)
    check(host, v.SessionList(), capture("iscsiadm_session_after_unreachable.txt"))


def test_login_while_another_program_deletes_its_records() -> None:
    # Real time here: the deletion must land while the login lists the database.
    with FakeHost(time_scale=1.0) as host:
        host.add_target(IQN, PORTALS, luns={1: 64 * MIB}, chap=("mpbuser", "mpb-secret-123"))
        node(host, PORTALS[1])
        host.set_node_db_scan(0.3)
        other = ("192.0.2.1:3260", "iqn.2024-01.org.example:other-program", "default")
        assert host.run(v.NodeNew(*other), timeout=30).ok
        # The login lists the database for 0.3 s: the deletion lands inside it.
        logins: list[CommandResult] = []
        login = threading.Thread(
            target=lambda: logins.append(
                host.run(v.NodeLogin(PORTALS[1], IQN, "default"), timeout=30)
            )
        )
        login.start()
        time.sleep(0.1)
        assert host.run(v.NodeDelete(*other), timeout=30).ok
        login.join()
        result = logins[0]
        real = capture("iscsiadm_login_idbm_ok.txt")
        assert (result.exit_code, result.stdout, result.stderr) == (
            real.exit_code,
            real.stdout,
            real.stderr,
        )
        assert [s[1:] for s in host.sessions()] == [(PORTALS[1], IQN, "default")]
