"""Sysfs session lookups: identities read once, states read fresh."""

from __future__ import annotations

import errno
import pathlib

import pytest

from multipath_brick.host import LinuxHost
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.testing.state import Session
from multipath_brick.testing.sysfs_tree import SysfsTree

IQN = "iqn.2024-01.test.mpb:target1"
OTHER = "iqn.2024-01.test.mpb:target2"


class CountingHost(LinuxHost):
    """A LinuxHost under a root that counts the files it reads."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def read_text(self, path: str) -> str:
        self.reads.append(path)
        return super().read_text(path)


class FailingHost(LinuxHost):
    """A LinuxHost whose reads of some files fail with the errno the kernel gives.

    A sysfs attribute's ``show()`` returning ``-E...`` (or kernfs refusing a
    deactivated node) is the read system call failing with that errno.
    """

    def __init__(self, root: str, failing: dict[str, int]) -> None:
        super().__init__(root)
        self.failing = failing

    def read_text(self, path: str) -> str:
        if path in self.failing:
            code = self.failing[path]
            raise OSError(code, errno.errorcode[code], path)
        return super().read_text(path)


@pytest.fixture
def tree(tmp_path: pathlib.Path) -> SysfsTree:
    tree = SysfsTree(str(tmp_path))
    tree.mkdir("/sys/class/iscsi_session")
    return tree


def _session(sid: int, iqn: str = IQN, portal: str = "10.0.1.2:3260") -> Session:
    return Session(sid=sid, host=sid + 1, iqn=iqn, portal=portal, iface="default", tpgt=1)


def test_finds_a_session_among_many_and_reads_only_its_state(tree: SysfsTree) -> None:
    for sid in range(1, 9):
        portal = f"10.0.{sid}.2:3260"
        tree.add_session(_session(sid, IQN if sid % 2 else OTHER, portal), "iqn.init", {})
    host = CountingHost(tree.root)
    sysfs = Sysfs(host)
    assert len(sysfs.sessions()) == 8

    host.reads.clear()
    found = sysfs.find_session(IQN, "10.0.5.2:3260", "default", logged_in=True)
    assert found is not None and (found.sid, found.host) == (5, 6)
    assert host.reads == ["/sys/class/iscsi_session/session5/state"]

    host.reads.clear()
    assert len(sysfs.sessions()) == 8
    assert all(path.endswith("/state") for path in host.reads)


def test_the_state_is_read_fresh(tree: SysfsTree) -> None:
    session = _session(3)
    tree.add_session(session, "iqn.init", {})
    sysfs = Sysfs(LinuxHost(tree.root))
    assert sysfs.find_session(IQN, session.portal, "default", logged_in=True) is not None

    tree.set_session_state(session, up=False)
    assert sysfs.find_session(IQN, session.portal, "default", logged_in=True) is None
    failed = sysfs.find_session(IQN, session.portal, "default")
    assert failed is not None and failed.state == "FAILED"


def test_a_session_being_set_up_is_not_remembered_half_made(tree: SysfsTree) -> None:
    # Until iscsid sets a parameter the kernel shows "(null)".
    session = _session(4)
    tree.add_session(session, "iqn.init", {})
    cls = "/sys/class/iscsi_session/session4"
    tree.attr(f"{cls}/targetname", "(null)")
    tree.attr(f"{cls}/ifacename", "(null)")
    tree.attr(f"{cls}/state", "FREE")
    sysfs = Sysfs(LinuxHost(tree.root))
    assert sysfs.sessions() == []
    assert sysfs.find_session(IQN, session.portal, "default") is None

    tree.attr(f"{cls}/targetname", IQN)
    tree.attr(f"{cls}/ifacename", "default")
    tree.attr(f"{cls}/state", "LOGGED_IN")
    found = sysfs.find_session(IQN, session.portal, "default", logged_in=True)
    assert found is not None and found.sid == 4


def test_a_torn_down_session_is_forgotten(tree: SysfsTree) -> None:
    first, second = _session(1), _session(2, portal="10.0.2.2:3260")
    tree.add_session(first, "iqn.init", {})
    tree.add_session(second, "iqn.init", {})
    sysfs = Sysfs(LinuxHost(tree.root))
    assert [s.sid for s in sysfs.sessions()] == [1, 2]

    tree.remove_session(first)
    assert sysfs.find_session(IQN, first.portal, "default") is None
    assert [s.sid for s in sysfs.sessions()] == [2]


def test_another_targets_login_costs_one_read(tree: SysfsTree) -> None:
    # A login to a dead portal keeps a half-made session for minutes; looking
    # for our session must not read all of its files at every look.
    theirs = _session(1, OTHER)
    tree.add_session(theirs, "iqn.init", {})
    conn = "/sys/class/iscsi_connection/connection1:0"
    tree.attr(f"{conn}/persistent_address", "(null)")
    tree.attr(f"{conn}/address", "(null)")
    tree.attr("/sys/class/iscsi_session/session1/state", "FREE")
    host = CountingHost(tree.root)
    sysfs = Sysfs(host)
    assert sysfs.find_session(IQN, "10.0.1.2:3260", "default") is None
    assert host.reads == ["/sys/class/iscsi_session/session1/targetname"]

    host.reads.clear()
    assert sysfs.find_session(IQN, "10.0.1.2:3260", "default") is None
    assert host.reads == []


def test_only_enoent_and_enodev_mean_a_session_is_gone(tree: SysfsTree) -> None:
    session = _session(1)
    tree.add_session(session, "iqn.init", {})
    state = "/sys/class/iscsi_session/session1/state"
    # kernfs answers ENODEV for a node removed after the lookup or while open.
    assert Sysfs(FailingHost(tree.root, {state: errno.ENODEV})).sessions() == []
    # An I/O error is not a logout: it is raised, never taken for one.
    with pytest.raises(OSError) as failed:
        Sysfs(FailingHost(tree.root, {state: errno.EIO})).sessions()
    assert failed.value.errno == errno.EIO


def test_a_connection_between_logins_has_no_address_yet(tree: SysfsTree) -> None:
    # iscsi_tcp answers ENOTCONN for address/port while it has no socket.
    session = _session(2)
    tree.add_session(session, "iqn.init", {})
    conn = "/sys/class/iscsi_connection/connection2:0"
    tree.attr(f"{conn}/persistent_address", "(null)")
    tree.attr("/sys/class/iscsi_session/session2/state", "FAILED")
    sysfs = Sysfs(FailingHost(tree.root, {f"{conn}/address": errno.ENOTCONN}))
    assert sysfs.sessions() == []
    broken = Sysfs(FailingHost(tree.root, {f"{conn}/address": errno.EIO}))
    with pytest.raises(OSError):
        broken.sessions()


@pytest.mark.parametrize("code", [errno.ENXIO, errno.EINVAL, errno.ENOENT, errno.ENODEV])
def test_a_disk_without_device_identification_has_no_wwid(tree: SysfsTree, code: int) -> None:
    # scsi_vpd_lun_id: ENXIO without VPD page 0x83, EINVAL without a designator.
    tree.attr("/sys/block/sdb/device/wwid", "naa.6001405aabbccdd")
    host = FailingHost(tree.root, {"/sys/block/sdb/device/wwid": code})
    assert Sysfs(host).wwid("sdb") is None
    assert Sysfs(LinuxHost(tree.root)).wwid("sdb") == "36001405aabbccdd"


def test_an_io_error_reading_a_wwid_is_raised(tree: SysfsTree) -> None:
    tree.attr("/sys/block/sdb/device/wwid", "naa.6001405aabbccdd")
    host = FailingHost(tree.root, {"/sys/block/sdb/device/wwid": errno.EIO})
    with pytest.raises(OSError):
        Sysfs(host).wwid("sdb")
