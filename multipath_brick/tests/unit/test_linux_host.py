"""LinuxHost's unprivileged side: file reads under a root, time."""

from __future__ import annotations

import os
import pathlib

import pytest

from multipath_brick.host import Host, LinuxHost


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A tiny sysfs-like tree, with the relative and absolute links Linux has."""
    device = tmp_path / "sys/devices/platform/host2/session1/target2:0:0/2:0:0:1"
    (device / "block/sdb").mkdir(parents=True)
    (device / "wwid").write_text("naa.6001405abcdef\n")
    (tmp_path / "sys/block").mkdir(parents=True)
    os.symlink(
        "../devices/platform/host2/session1/target2:0:0/2:0:0:1/block/sdb",
        tmp_path / "sys/block/sdb",
    )
    os.symlink("../..", device / "block/sdb/device")
    (tmp_path / "sys/block/sda").mkdir()
    by_path = tmp_path / "dev/disk/by-path"
    by_path.mkdir(parents=True)
    (tmp_path / "dev/sdb").touch()
    os.symlink("../../sdb", by_path / "ip-10.0.0.1:3260-iscsi-iqn.x-lun-1")
    os.symlink("/dev/sdb", by_path / "absolute")
    return tmp_path


def test_is_a_host() -> None:
    assert isinstance(LinuxHost(), Host)


def test_reads_files_under_its_root(root: pathlib.Path) -> None:
    host = LinuxHost(str(root))
    assert host.read_text("/sys/block/sdb/device/wwid") == "naa.6001405abcdef\n"
    with pytest.raises(FileNotFoundError):
        host.read_text("/sys/block/sdc/device/wwid")


def test_lists_directories_sorted_and_missing_ones_as_empty(root: pathlib.Path) -> None:
    host = LinuxHost(str(root))
    assert host.list_dir("/sys/block") == ["sda", "sdb"]
    assert host.list_dir("/sys/class/iscsi_session") == []
    assert host.list_dir("/sys/block/sdb/device/wwid") == []


def test_exists_follows_links_under_the_root(root: pathlib.Path) -> None:
    host = LinuxHost(str(root))
    assert host.exists("/sys/block/sdb/device/wwid")
    assert host.exists("/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x-lun-1")
    assert not host.exists("/sys/block/sdc")


def test_realpath_is_a_host_path_even_through_absolute_links(root: pathlib.Path) -> None:
    host = LinuxHost(str(root))
    assert host.realpath("/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x-lun-1") == "/dev/sdb"
    assert host.realpath("/dev/disk/by-path/absolute") == "/dev/sdb"
    assert host.realpath("/sys/block/sdb/device") == (
        "/sys/devices/platform/host2/session1/target2:0:0/2:0:0:1"
    )
    assert host.realpath("/sys/block/./sda/../sda/") == "/sys/block/sda"
    # ".." after a link leaves the link's target, as the kernel does.
    assert host.realpath("/sys/block/sdb/../sdb") == host.realpath("/sys/block/sdb")
    assert host.realpath("/not/there") == "/not/there"


def test_realpath_agrees_with_the_real_system() -> None:
    host = LinuxHost()
    for path in ("/proc/self", "/usr/bin", "/etc/../etc/hostname", "/tmp"):
        assert host.realpath(path) == os.path.realpath(path)


def test_relative_paths_are_refused(root: pathlib.Path) -> None:
    with pytest.raises(ValueError):
        LinuxHost(str(root)).read_text("sys/block/sdb/device/wwid")


def test_time() -> None:
    host = LinuxHost()
    before = host.monotonic()
    host.sleep(0.01)
    assert host.monotonic() - before >= 0.01


def test_a_session_logged_out_while_read_has_no_disks(root: pathlib.Path) -> None:
    # Found in the lab (8 volumes at once): another volume's detach logged a
    # session out between the listing and the read of its device link, and
    # readlink raised. The exact interleaving cannot be staged here; a session
    # that is gone must read as no disks either way.
    from multipath_brick.scsi.sysfs import SessionInfo, Sysfs

    gone = SessionInfo(
        sid=40, host=7, iqn="iqn.x", portal="10.0.0.1:3260", iface="default", state="LOGGED_IN"
    )
    host = LinuxHost(str(root))
    assert Sysfs(host).disk(gone, 1) is None
    assert not Sysfs(host).has_disk_luns(gone)
    assert not Sysfs(host).has_disk_lun(gone, 1)
    assert Sysfs(host).sessions() == []
