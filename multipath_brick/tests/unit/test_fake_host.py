"""The fake host on its own: what the library's tests rely on it to simulate.

Here iscsid and the target: records, logins, sessions, scans, CHAP, discovery.
The disks and maps (multipathd, udev, flush, delete) are in
``test_fake_host_devices.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from multipath_brick import verbs as v
from multipath_brick.host.base import TIMED_OUT, Host
from multipath_brick.testing import FakeHost, FakeTarget
from multipath_brick.testing.scsi_sim import sd_name
from multipath_brick.tests.unit.conftest import eventually

IQN = "iqn.2003-01.org.example:target1"


P1, P2 = "10.0.0.1:3260", "10.0.0.2:3260"


GIB = 1 << 30


SCALE = 0.001  # 1 simulated second = 1 ms


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with FakeHost(time_scale=SCALE) as h:
        yield h


@pytest.fixture
def target(host: FakeHost) -> FakeTarget:
    return host.add_target(IQN, [P1, P2], luns={1: GIB, 2: 2 * GIB})


def setup_node(host: FakeHost, portal: str = P1, scan: str = "manual", **extra: str) -> None:
    """A node record; ``scan="auto"`` keeps iscsid.conf's default, which the
    verbs refuse to write (only ``manual`` is allowed)."""
    assert host.run(v.NodeNew(portal, IQN, "default"), timeout=30).ok
    settings = {"node.session.scan": scan, **extra} if scan != "auto" else extra
    for name, value in settings.items():
        assert host.run(v.NodeUpdate.one(portal, IQN, "default", name, value), timeout=30).ok


def login(host: FakeHost, portal: str = P1, timeout: float = 300) -> int:
    return host.run(v.NodeLogin(portal, IQN, "default"), timeout=timeout).exit_code


def attach_path(host: FakeHost, portal: str = P1, lun: int = 1) -> str:
    """Node, login, targeted scan: returns the new disk's name."""
    setup_node(host, portal)
    assert login(host, portal) == 0
    before = set(host.disks())
    sid = host.sessions()[-1][0]
    device = host.realpath(f"/sys/class/iscsi_session/session{sid}/device")
    match = re.search(r"/host([0-9]+)/", device)
    assert match
    host.write(v.ScsiScan(int(match.group(1)), 0, 0, lun), timeout=30)
    (new,) = set(host.disks()) - before
    return new


def test_is_a_host_with_initiator_and_wwids_files(host: FakeHost) -> None:
    assert isinstance(host, Host)
    assert host.read_text("/etc/iscsi/initiatorname.iscsi") == (
        "InitiatorName=iqn.2004-10.com.example:fakehost\n"
    )
    assert host.read_text("/etc/multipath/wwids").startswith("# Multipath wwids")
    assert host.leftovers() == {}


def test_login_creates_session_sysfs_without_disks(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host)
    result = host.run(v.NodeLogin(P1, IQN, "default"), timeout=30)
    where = f"[iface: default, target: {IQN}, portal: 10.0.0.1,3260]"
    assert result.stdout == f"Logging in to {where}\nLogin to {where} successful.\n"
    assert host.sessions() == [(1, P1, IQN, "default")]
    s = "/sys/class/iscsi_session/session1"
    assert host.read_text(f"{s}/targetname").strip() == IQN
    assert host.read_text(f"{s}/state").strip() == "LOGGED_IN"
    assert host.realpath(f"{s}/device") == "/sys/devices/platform/host2/session1"
    conn = "/sys/class/iscsi_connection/connection1:0"
    assert host.read_text(f"{conn}/persistent_address").strip() == "10.0.0.1"
    assert host.read_text(f"{conn}/persistent_port").strip() == "3260"
    assert host.exists("/sys/class/scsi_host/host2/scan")
    assert host.exists("/sys/class/iscsi_host/host2")
    # manual scan: no disk, not even the scsi target directory yet
    assert host.list_dir(f"{s}/device") == ["connection1:0", "iscsi_session"]
    assert host.list_dir("/sys/block") == []
    out = host.run(v.SessionList(), timeout=30).stdout
    assert out == f"tcp: [1] 10.0.0.1:3260,1 {IQN} (non-flash)\n"


def test_manual_scan_creates_only_that_lun(host: FakeHost, target: FakeTarget) -> None:
    sd = attach_path(host, lun=2)
    assert sd == "sda"
    assert host.disks() == {"sda": ("2:0:0:2", target.wwid(2))}
    assert host.read_text("/sys/block/sda/device/wwid").strip() == target.scsi_wwid(2)
    assert target.wwid(2) == "3" + target.scsi_wwid(2)[4:]
    assert host.read_text("/sys/block/sda/size").strip() == str(2 * GIB // 512)
    disk_dir = "/sys/devices/platform/host2/session1/target2:0:0/2:0:0:2"
    assert host.realpath("/sys/block/sda/device") == disk_dir
    by_path = f"/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-{IQN}-lun-2"
    assert host.realpath(by_path) == "/dev/sda"
    host.write(v.ScsiScan(2, 0, 0, 9), timeout=30)  # no such LUN: nothing
    assert list(host.disks()) == ["sda"]
    with pytest.raises(FileNotFoundError):
        host.write(v.ScsiScan(7, 0, 0, 1), timeout=30)


def test_auto_scan_brings_every_lun(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host, scan="auto")
    assert login(host) == 0
    assert sorted(hctl for hctl, _ in host.disks().values()) == ["2:0:0:1", "2:0:0:2"]


def test_disk_names_like_the_kernel() -> None:
    assert [sd_name(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "sda",
        "sdz",
        "sdaa",
        "sdab",
        "sdzz",
        "sdaaa",
    ]


def test_chap(host: FakeHost) -> None:
    host.add_target(IQN, [P1], luns={1: GIB}, chap=("user", "secret"))
    setup_node(host)
    result = host.run(v.NodeLogin(P1, IQN, "default"), timeout=30)
    assert result.exit_code == 24
    assert "initiator reported error (24 - iSCSI login failed due to authorization failure)" in (
        result.stderr
    )
    setup_node(
        host,
        **{"node.session.auth.authmethod": "CHAP", "node.session.auth.username": "user"},
    )
    assert host.run(v.NodeWrite(P1, IQN, "default", password="wrong"), timeout=9).ok
    assert login(host) == 24
    assert host.run(v.NodeWrite(P1, IQN, "default", password="secret"), timeout=9).ok
    assert login(host) == 0
    assert all("secret" not in arg for argv, *_ in host.calls for arg in argv)
    shown = host.run(v.NodeShow(P1, IQN, "default"), timeout=30).stdout
    assert "node.session.auth.password = ********\n" in shown
    assert "node.session.auth.password_in = <empty>\n" in shown
    assert "secret" not in shown


def test_chap_secrets_go_to_an_existing_record_only(host: FakeHost, target: FakeTarget) -> None:
    # As the daemon's writer: 21 without a record, and the record keeps what it had.
    missing = host.run(
        v.NodeWrite(P1, IQN, "default", password="secret", password_in="back"), timeout=9
    )
    assert (missing.exit_code, missing.stderr) == (21, "No records found\n")
    assert host.node_records() == []
    setup_node(host)
    assert host.run(
        v.NodeWrite(P1, IQN, "default", password="secret", password_in="back"), timeout=9
    ).ok
    settings = host.node_settings(P1, IQN)
    assert settings["node.session.auth.password"] == "secret"
    assert settings["node.session.auth.password_in"] == "back"
    # None takes a mutual secret away again; -o new resets the record (iscsid.conf).
    assert host.run(v.NodeWrite(P1, IQN, "default", password="secret"), timeout=9).ok
    assert host.node_settings(P1, IQN)["node.session.auth.password_in"] == ""
    assert host.run(v.NodeNew(P1, IQN, "default"), timeout=9).ok
    assert host.node_settings(P1, IQN)["node.session.auth.password"] == ""


def test_second_login_is_15_and_delete_under_session_is_refused(
    host: FakeHost, target: FakeTarget
) -> None:
    setup_node(host)
    assert login(host) == 0
    result = host.run(v.NodeLogin(P1, IQN, "default"), timeout=30)
    assert result.exit_code == 15
    assert "1 session requested, but 1 already present" in result.stderr
    assert host.run(v.NodeDelete(P1, IQN, "default"), timeout=30).exit_code == 15


def test_missing_record_is_21(host: FakeHost, target: FakeTarget) -> None:
    assert login(host) == 21
    assert host.run(v.NodeShow(P1, IQN, "default"), timeout=30).exit_code == 21
    assert host.run(v.NodeList(), timeout=30).stderr == "iscsiadm: No records found\n"
    assert host.run(v.SessionList(), timeout=30).exit_code == 21


def test_node_new_overwrites_with_defaults(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host)
    assert host.node_settings(P1, IQN)["node.session.scan"] == "manual"
    assert host.run(v.NodeNew(P1, IQN, "default"), timeout=30).ok
    assert host.node_settings(P1, IQN)["node.session.scan"] == "auto"


def test_unreachable_portal_times_out_after_scaled_retries(
    host: FakeHost, target: FakeTarget
) -> None:
    host.set_unreachable(P2, True)
    setup_node(host, P2, **{"node.conn[0].timeo.login_timeout": "20"})
    start = time.monotonic()
    assert login(host, P2) == 8  # 20 s x 8 retries = 160 simulated seconds
    assert time.monotonic() - start >= 160 * SCALE
    start = time.monotonic()
    assert login(host, P2, timeout=30) == TIMED_OUT
    assert 30 * SCALE <= time.monotonic() - start < 160 * SCALE


def test_parallel_logins_overlap() -> None:
    with FakeHost(time_scale=0.01) as host:
        host.add_target(IQN, [P1, P2], luns={1: GIB})
        for p in (P1, P2):
            setup_node(host, p)
            host.set_latency(p, 10)  # 100 ms each
        logins = [v.NodeLogin(P1, IQN, "default"), v.NodeLogin(P2, IQN, "default")]
        with ThreadPoolExecutor(len(logins)) as pool:
            results = list(pool.map(lambda login: host.run(login, timeout=30), logins))
        assert [r.exit_code for r in results] == [0, 0]
        # Both in flight at once (structure, not wall time: the machine may be busy).
        assert host.max_concurrent_logins == 2
        (s1, e1), (s2, e2) = [(c[2], c[3]) for c in host.calls if "--login" in c[0]]
        assert s1 < e2 and s2 < e1


def test_login_slower_than_login_timeout_times_out(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host, **{"node.conn[0].timeo.login_timeout": "5"})
    host.set_latency(P1, 6)
    result = host.run(v.NodeLogin(P1, IQN, "default"), timeout=100)
    assert result.exit_code == 8 and "(8 - connection timed out)" in result.stderr
    assert result.duration >= 5 * 8 * SCALE


def test_killed_login_completes_in_the_background(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host)
    host.set_latency(P1, 10)
    assert login(host, timeout=5) == TIMED_OUT
    assert host.sessions() == []
    # iscsid went on: a session nobody waited for
    assert eventually(lambda: host.sessions() == [(1, P1, IQN, "default")])


def test_discovery(host: FakeHost) -> None:
    host.add_target(IQN, [P1, P2], luns={1: GIB}, discovery_chap=("d", "dpw"))
    run = v.DiscoveryRun(P1, "default")
    assert host.run(run, timeout=30).exit_code == 24
    assert host.run(v.DiscoveryNew(P1, "default"), timeout=30).ok
    for name, value in (("authmethod", "CHAP"), ("username", "d")):
        upd = v.DiscoveryUpdate(P1, "default", f"discovery.sendtargets.auth.{name}", value)
        assert host.run(upd, timeout=30).ok
    assert host.run(run, timeout=30).exit_code == 24  # no secret yet
    assert host.run(v.DiscoverySetSecrets(P1, "dpw"), timeout=30).ok
    result = host.run(run, timeout=30)
    assert result.stdout == f"10.0.0.1:3260,1 {IQN}\n10.0.0.2:3260,1 {IQN}\n"
    assert host.node_records() == []
    host.set_unreachable(P2)
    assert host.run(v.DiscoveryRun(P2, "default"), timeout=30).exit_code == TIMED_OUT
    assert host.leftovers() == {"discovery_records": [P1]}


def test_ipv6_portal(host: FakeHost) -> None:
    portal = "[fd00::1]:3260"
    host.add_target(IQN, [portal], luns={1: GIB})
    sd = attach_path(host, portal)
    listing = host.run(v.SessionList(), timeout=30).stdout
    assert listing == f"tcp: [1] [fd00::1]:3260,1 {IQN} (non-flash)\n"
    conn = "/sys/class/iscsi_connection/connection1:0/persistent_address"
    assert host.read_text(conn).strip() == "fd00::1"
    assert host.exists(f"/dev/disk/by-path/ip-fd00::1:3260-iscsi-{IQN}-lun-1")
    assert host.realpath(f"/dev/disk/by-path/ip-fd00::1:3260-iscsi-{IQN}-lun-1") == f"/dev/{sd}"


def test_discovery_of_a_dead_portal_times_out_like_iscsiadm(host: FakeHost) -> None:
    host.add_target(IQN, [P1], luns={1: GIB})
    host.set_unreachable(P1)
    result = host.run(v.DiscoveryRun(P1, "default"), timeout=1000)
    assert result.exit_code == 11
    assert result.stderr.endswith("SendTargets discovery: iSCSI PDU timed out\n")
