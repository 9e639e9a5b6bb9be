"""Sysfs session lookups: identities read once, states read fresh."""

from __future__ import annotations

import errno
import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_a_map_being_removed_is_gone(tree: SysfsTree) -> None:
    # Another volume's map, flushed while the walk for ours reads its uuid:
    # device-mapper answers EINVAL (seen in the lab, 8 volumes at once).
    tree.dm_device(0, "3600a", "mpath-3600a", 1 << 20, linked=False)
    tree.dm_device(1, "3600b", "mpath-3600b", 1 << 20, linked=False)
    going = {"/sys/block/dm-0/dm/uuid": errno.EINVAL, "/sys/block/dm-0/dm/name": errno.EINVAL}
    sysfs = Sysfs(FailingHost(tree.root, going))
    assert sysfs.map_for_wwid("3600b") == "dm-1"
    assert sysfs.dm_name("dm-0") is None
    assert Sysfs(LinuxHost(tree.root)).map_for_wwid("3600a") == "dm-0"
    with pytest.raises(OSError) as failed:
        Sysfs(FailingHost(tree.root, {"/sys/block/dm-0/dm/uuid": errno.EIO})).map_for_wwid("x")
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


# --- the lookups against a fresh look -------------------------------------------------

_IQNS = (IQN, OTHER, "iqn.2024-01.test.mpb:target3")
_PORTALS = ("10.0.1.2:3260", "10.0.2.2:3260")
_STATES = ("LOGGED_IN", "FAILED", "FREE")

# An operation on the host's sessions: a login (target, portal, whether iscsid
# has set its target name yet, state), a logout, a state change, or iscsid
# setting a target name it had not yet (the pick chooses among the sessions).
_op = st.one_of(
    st.tuples(st.just("login"), st.sampled_from(_IQNS), st.sampled_from(_PORTALS), st.booleans()),
    st.tuples(st.just("logout"), st.integers(0, 50)),
    st.tuples(st.just("state"), st.integers(0, 50), st.sampled_from(_STATES)),
    st.tuples(st.just("named"), st.integers(0, 50)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_op, max_size=30))
def test_a_kept_sysfs_answers_as_the_host_is(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    # A Sysfs kept across logins and logouts (its listing, target names and
    # identities remembered) answers every lookup with the first session, in
    # session order, that has the identity (and is logged in, when asked).
    tree = SysfsTree(str(tmp_path_factory.mktemp("sysfs")))
    tree.mkdir("/sys/class/iscsi_session")
    kept = Sysfs(LinuxHost(tree.root))
    live: dict[int, tuple[Session, bool, str]] = {}  # sid -> (session, named, state)
    made = 0  # the kernel's session counter: it only grows
    for op in ops:
        sids = sorted(live)
        pick = sids[op[1] % len(sids)] if sids and op[0] != "login" else 0
        cls = f"/sys/class/iscsi_session/session{pick}"
        if op[0] == "login":
            _, iqn, portal, named = op
            made += 1
            sid = made
            session = Session(sid, sid + 100, iqn, portal, "default", 1)
            tree.add_session(session, "iqn.init", {})
            if not named:
                tree.attr(f"/sys/class/iscsi_session/session{sid}/targetname", "(null)")
            live[sid] = (session, named, "LOGGED_IN")
        elif pick and op[0] == "logout":
            tree.remove_session(live.pop(pick)[0])
        elif pick and op[0] == "state":
            tree.attr(f"{cls}/state", op[2])
            live[pick] = (*live[pick][:2], op[2])
        elif pick and op[0] == "named":
            session, _, state = live[pick]
            tree.attr(f"{cls}/targetname", session.iqn)
            live[pick] = (session, True, state)
        shown = {sid: (s.iqn, s.portal, state) for sid, (s, named, state) in live.items() if named}
        assert [(i.sid, i.state) for i in kept.sessions()] == [
            (sid, shown[sid][2]) for sid in sorted(shown)
        ]
        for iqn in _IQNS:
            assert [i.sid for i in kept.sessions_to((iqn,))] == [
                sid for sid in sorted(shown) if shown[sid][0] == iqn
            ]
            for portal in _PORTALS:
                for logged_in in (False, True):
                    found = kept.find_session(iqn, portal, "default", logged_in=logged_in)
                    first = next(
                        (
                            sid
                            for sid in sorted(shown)
                            if shown[sid][:2] == (iqn, portal)
                            and (shown[sid][2] == "LOGGED_IN" or not logged_in)
                        ),
                        None,
                    )
                    assert (found.sid if found else None) == first, (iqn, portal, logged_in)
