"""The fake host on its own: disks and multipath maps.

multipathd's maps and whitelist, udev's delays, flush, delete, resize, a
hanging scan, a logout taking its disks.
"""

from __future__ import annotations

import pytest

from multipath_brick import verbs as v
from multipath_brick.exception import CommandTimeout
from multipath_brick.testing import FakeHost, FakeTarget
from multipath_brick.tests.unit import test_fake_host
from multipath_brick.tests.unit.conftest import eventually, torn_down
from multipath_brick.tests.unit.test_fake_host import (
    GIB,
    IQN,
    P1,
    P2,
    attach_path,
    login,
    setup_node,
)

#: The fixtures of test_fake_host.py: a host 1000x faster, and a 2-portal target.
host = test_fake_host.host
target = test_fake_host.target


def test_map_only_after_multipath_a_and_add_path(host: FakeHost, target: FakeTarget) -> None:
    sd = attach_path(host)
    show = v.MultipathdShowPaths()
    wwid = target.wwid(1)
    assert host.run(show, timeout=30).stdout == f"{sd} {wwid} [orphan] undef undef\n"
    assert host.maps() == {}
    assert host.run(v.MultipathAddWwid(wwid, sd), timeout=30).stdout == f"wwid '{wwid}' added\n"
    assert f"/{wwid}/\n" in host.read_text("/etc/multipath/wwids")
    assert host.run(v.MultipathdAddPath(sd), timeout=30).stdout == "ok\n"
    assert host.maps() == {wwid: [sd]}
    assert host.run(show, timeout=30).stdout == f"{sd} {wwid} {wwid} active ready\n"
    assert host.realpath(f"/dev/mapper/{wwid}") == "/dev/dm-0"
    assert host.read_text("/sys/block/dm-0/dm/uuid").strip() == f"mpath-{wwid}"
    assert host.list_dir(f"/sys/block/{sd}/holders") == ["dm-0"]
    assert host.realpath(f"/sys/block/{sd}/holders/dm-0") == "/sys/devices/virtual/block/dm-0"
    assert host.list_dir("/sys/block/dm-0/slaves") == [sd]
    # a second path joins by itself: the WWID is known now
    sd2 = attach_path(host, P2)
    assert host.maps() == {wwid: [sd, sd2]}


def test_udev_delay_and_map_ready_delay() -> None:
    with FakeHost(time_scale=0.01) as host:
        target = host.add_target(IQN, [P1], luns={1: GIB})
        host.remember_wwid(target.wwid(1))
        # Wide margins (0.3 s, 0.9 s real): the checks must land inside them even
        # on a busy machine.
        host.set_udev_delay(30)
        host.set_map_ready_delay(90)
        sd = attach_path(host)
        assert not host.exists(f"/dev/{sd}") and host.maps() == {}
        assert eventually(lambda: host.maps() == {target.wwid(1): [sd]})
        assert host.exists(f"/dev/{sd}")
        show = v.MultipathdShowPaths()
        wwid = target.wwid(1)
        pending = f"{sd} {wwid} {wwid} active i/o pending\n"
        assert host.run(show, timeout=30).stdout == pending  # ~0.6 s to go
        ready = f"{sd} {wwid} {wwid} active ready\n"
        assert eventually(lambda: host.run(show, timeout=30).stdout == ready)


def test_unreachable_portal_fails_existing_paths(host: FakeHost, target: FakeTarget) -> None:
    host.remember_wwid(target.wwid(1))
    sd = attach_path(host)
    host.set_unreachable(P1, True)
    wwid = target.wwid(1)
    shown = host.run(v.MultipathdShowPaths(), timeout=30).stdout
    assert shown == f"{sd} {wwid} {wwid} failed faulty\n"
    assert host.read_text("/sys/class/iscsi_session/session1/state").strip() == "FAILED"


def test_flush_failure_then_flush(host: FakeHost, target: FakeTarget) -> None:
    wwid = target.wwid(1)
    host.remember_wwid(wwid)
    sd = attach_path(host)
    host.fail_flush(wwid, True)
    result = host.run(v.MultipathFlush(wwid), timeout=30)
    assert result.exit_code == 1 and result.stderr.endswith(f"| {wwid}: map in use\n")
    assert host.exists(f"/dev/mapper/{wwid}")
    host.fail_flush(wwid, False)
    assert host.run(v.MultipathFlush(wwid), timeout=30).ok
    assert host.maps() == {} and not host.exists(f"/dev/mapper/{wwid}")
    assert host.list_dir(f"/sys/block/{sd}/holders") == []
    assert host.run(v.MultipathFlush(wwid), timeout=30).exit_code == 1


def test_multipathd_stopped(host: FakeHost) -> None:
    host.set_multipathd_running(False)
    result = host.run(v.MultipathdShowDaemon(), timeout=30)
    assert (result.exit_code, result.stdout) == (1, "")
    host.set_multipathd_running(True)
    assert host.run(v.MultipathdShowDaemon(), timeout=30).stdout == "pid 4242 idle\n"


def test_logout_removes_disks_map_stays_then_nothing_left(
    host: FakeHost, target: FakeTarget
) -> None:
    wwid = target.wwid(1)
    host.remember_wwid(wwid)
    sd = attach_path(host)
    result = host.run(v.NodeLogout(P1, IQN, "default"), timeout=30)
    assert result.stdout.endswith(
        f"Logout of [sid: 1, target: {IQN}, portal: 10.0.0.1,3260] successful.\n"
    )
    assert host.disks() == {} and not host.exists(f"/sys/block/{sd}")
    assert torn_down(host) and not host.exists("/sys/class/iscsi_session/session1")
    assert host.maps() == {wwid: []}
    assert host.leftovers() == {
        "node_records": [f"{P1} {IQN} default"],
        "maps": [wwid],
        "wwids": [wwid],
    }
    assert host.run(v.MultipathFlush(wwid), timeout=30).ok
    assert host.run(v.NodeDelete(P1, IQN, "default"), timeout=30).ok
    assert host.run(v.NodeLogout(P1, IQN, "default"), timeout=30).exit_code == 21
    removed = host.run(v.MultipathRemoveWwid(wwid), timeout=30)
    assert (removed.exit_code, removed.stdout) == (0, f"wwid '{wwid}' removed\n")
    again = host.run(v.MultipathRemoveWwid(wwid), timeout=30)
    assert (again.exit_code, again.stdout) == (0, f"wwid '{wwid}' not in wwids file\n")
    assert host.leftovers() == {}


def test_delete_and_resize(host: FakeHost, target: FakeTarget) -> None:
    wwid = target.wwid(1)
    host.remember_wwid(wwid)
    sd, sd2 = attach_path(host), attach_path(host, P2)
    host.resize_lun(IQN, 1, 2 * GIB)
    for dev in (sd, sd2):
        host.write(v.ScsiRescan(dev), timeout=30)
    assert host.run(v.MultipathdResizeMap(wwid), timeout=30).ok
    assert host.read_text("/sys/block/dm-0/size").strip() == str(2 * GIB // 512)
    host.write(v.ScsiDelete(sd), timeout=30)
    assert host.maps() == {wwid: [sd2]} and not host.exists(f"/dev/{sd}")
    with pytest.raises(FileNotFoundError):
        host.write(v.ScsiDelete(sd), timeout=30)


def test_scan_hang_times_out(host: FakeHost, target: FakeTarget) -> None:
    setup_node(host)
    login(host)
    host.set_scan_hang(50)
    with pytest.raises(CommandTimeout):
        host.write(v.ScsiScan(2, 0, 0, 1), timeout=10)
    assert host.disks() == {}
    # the kernel finishes the scan in the end
    assert eventually(lambda: list(host.disks()) == ["sda"])


def test_first_add_path_adopts_every_orphan_of_the_wwid(
    host: FakeHost, target: FakeTarget
) -> None:
    sd, sd2 = attach_path(host), attach_path(host, P2)
    assert host.maps() == {}
    host.run(v.MultipathAddWwid(target.wwid(1), sd), timeout=30)
    assert host.maps() == {}  # no uevent, no map (as in the lab)
    assert host.run(v.MultipathdAddPath(sd2), timeout=30).ok
    assert host.maps() == {target.wwid(1): [sd, sd2]}
    assert host.run(v.MultipathdAddPath(sd), timeout=30).stdout == "ok\n"
