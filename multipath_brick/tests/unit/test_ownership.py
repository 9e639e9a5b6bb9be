"""The daemon's ownership checks, against a FakeHost's sysfs tree (real files).

The host has a local SATA disk (``sda``, as a boot disk is), a multipath map
over it, an LVM-like map, and an attached iSCSI volume over 4 portals. Each
destructive verb is refused for the local ones and accepted for the iSCSI
ones, first by the check functions, then through the FakeHost door (which
runs the same checks the daemon runs), then by the entrypoints themselves.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick import verbs as v
from multipath_brick.exception import InvalidArgument, NotOwnedError
from multipath_brick.privileged import entrypoints
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import GIB, IQN, eventually, plural
from multipath_brick.tests.unit.test_privileged import bindir, in_process  # noqa: F401
from multipath_brick.verbs import ownership

LVM_UUID = "LVM-q2Fd8sXgD1sUy6qQb6hRkFxM0w4fTQ2mZQ8p3fQp6m0TrvFm2wNn8n1tJqJbHcKg"


@dataclasses.dataclass(frozen=True)
class Host:
    """The fake host and what it holds."""

    fake: FakeHost
    local: str  # the local SATA disk, sdX
    local_map: str  # multipath map over it (its name; as multipath makes one)
    lvm: str  # an LVM-like map over it (its name)
    info: dict[str, Any]  # the attached iSCSI volume's device_info

    @property
    def root(self) -> str:
        return self.fake.root

    @property
    def wwid(self) -> str:
        return str(self.info["multipath_id"])

    @property
    def disks(self) -> list[str]:
        # Not from info["paths"]: a path may still have been pending at return.
        return sorted(self.fake.disks())

    @property
    def dm(self) -> str:
        return str(self.info["path"]).removeprefix("/dev/")

    def hctl(self, disk: str) -> tuple[int, int, int, int]:
        h, c, t, lun = self.fake.realpath(f"/sys/block/{disk}/device").rsplit("/", 1)[1].split(":")
        return int(h), int(c), int(t), int(lun)


@pytest.fixture
def h(host: FakeHost, connector: ISCSIMultipathConnector) -> Host:
    local = host.add_local_disk()  # before any login: it is sda, as a boot disk
    local_wwid = "1ATA_QEMU_HARDDISK_QM00001"
    host.add_local_map(local_wwid, [local])
    host.add_local_map("vg0-root", [local], uuid=LVM_UUID)
    info = connector.connect_volume(plural())
    assert connector.wait_for_pending(timeout=10)
    assert eventually(lambda: len(host.maps().get(info["multipath_id"], [])) == 4)
    return Host(host, local, local_wwid, "vg0-root", info)


def snapshot(root: str) -> dict[str, str]:
    """Every file and link of a tree, with its content or target."""
    found = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            if os.path.islink(path):
                found[path] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    found[path] = f.read()
    return found


# --- the check functions ------------------------------------------------------------


def test_the_local_disk_is_sda_and_the_iscsi_disks_follow(h: Host) -> None:
    assert h.local == "sda"
    assert sorted(h.disks) == ["sdb", "sdc", "sdd", "sde"]
    assert h.fake.leftovers()["disks"] == sorted(h.disks)  # the local disk is not a leftover


def test_iscsi_disk(h: Host) -> None:
    for disk in h.disks:
        found = ownership.iscsi_disk(disk, root=h.root)
        assert found == h.fake.realpath(f"/sys/block/{disk}/device")
        assert "/session" in found
    with pytest.raises(NotOwnedError) as refused:
        ownership.iscsi_disk(h.local, root=h.root)
    assert refused.value.field == "device"
    assert refused.value.reason == (
        "sda is not under an iSCSI session: /sys/block/sda/device is "
        "/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0"
    )
    with pytest.raises(FileNotFoundError):
        ownership.iscsi_disk("sdzz", root=h.root)
    with pytest.raises(InvalidArgument) as bad:
        ownership.iscsi_disk("dm-0", root=h.root)
    assert bad.value.field == "device"


def test_iscsi_lun_and_host(h: Host) -> None:
    host, channel, target, lun = h.hctl(h.disks[0])
    assert ownership.iscsi_lun(host, channel, target, lun, root=h.root).endswith(
        f"/target{host}:0:0/{host}:0:0:1"
    )
    assert ownership.iscsi_host(host, root=h.root) == (
        f"/sys/devices/platform/host{host}/scsi_host/host{host}"
    )
    with pytest.raises(NotOwnedError, match="not under an iSCSI session"):
        ownership.iscsi_lun(0, 0, 0, 0, root=h.root)
    with pytest.raises(NotOwnedError) as refused:
        ownership.iscsi_host(0, root=h.root)
    assert refused.value.field == "host"
    assert "host0 is not an iSCSI host: driver ahci" in refused.value.reason
    with pytest.raises(FileNotFoundError):
        ownership.iscsi_lun(host, 0, 0, 7, root=h.root)  # no such LUN
    with pytest.raises(FileNotFoundError):
        ownership.iscsi_host(99, root=h.root)


def test_iscsi_wwid(h: Host) -> None:
    """Only the named disk is read: an iSCSI disk that carries the WWID."""
    for disk in h.disks:
        assert ownership.iscsi_wwid(h.wwid, disk, root=h.root).endswith(":0:0:1")
    with pytest.raises(NotOwnedError) as refused:
        ownership.iscsi_wwid(h.local_map, h.local, root=h.root)
    assert refused.value.field == "device"
    assert "not under an iSCSI session" in refused.value.reason
    with pytest.raises(NotOwnedError) as refused:  # the local disk's WWID, named by ours
        ownership.iscsi_wwid(h.local_map, h.disks[0], root=h.root)
    assert refused.value.field == "wwid"
    assert refused.value.reason == f"{h.disks[0]} carries {h.wwid}, not WWID {h.local_map}"
    with pytest.raises(FileNotFoundError):
        ownership.iscsi_wwid(h.wwid, "sdzz", root=h.root)


def test_removable_wwid(h: Host) -> None:
    """The rule for ``multipath -w`` (a verb to come): no foreign device may carry it."""
    ownership.removable_wwid(h.wwid, root=h.root)  # the iSCSI volume's
    ownership.removable_wwid("36001405deadbeef", root=h.root)  # nobody's
    with pytest.raises(NotOwnedError) as refused:
        ownership.removable_wwid("1ATA_QEMU_HARDDISK_QM00001", root=h.root)
    assert refused.value.field == "wwid"
    assert refused.value.reason.startswith("a foreign map has it: ")
    h.fake.add_local_disk(host=1)  # sdf: no map over it
    with pytest.raises(
        NotOwnedError, match="a foreign disk carries it: sdf is not under an iSCSI"
    ):
        ownership.removable_wwid("1ATA_QEMU_HARDDISK_QM00006", root=h.root)
    with pytest.raises(InvalidArgument, match="device number"):
        ownership.removable_wwid("8:16", root=h.root)


def test_a_write_goes_to_the_attribute_that_was_checked(h: Host) -> None:
    disk = h.disks[0]
    host, channel, target, lun = h.hctl(disk)
    for write in (
        v.ScsiDelete(disk),
        v.ScsiRescan(disk),
        v.ScsiRemoveLun(host, channel, target, lun),
        v.ScsiScan(host, channel, target, lun),
    ):
        checked = ownership.attribute(write, root=h.root)
        # The same file as the verb's own path, with no link left to follow.
        assert checked == h.fake.realpath(write.path())
        assert os.path.realpath(h.root + checked) == h.root + checked


def test_reading_and_linking_go_to_iscsi_disks_and_maps_only(h: Host) -> None:
    for verb in (v.ReadBlock, v.LinkEncrypted):
        assert ownership.check_command(verb(h.dm), root=h.root) is None
        assert ownership.check_command(verb(h.disks[0]), root=h.root) is None
        with pytest.raises(NotOwnedError, match="not under an iSCSI session"):
            ownership.check_command(verb(h.local), root=h.root)
        for dm in ("dm-0", "dm-1"):  # the local disk's multipath map, the LVM one
            with pytest.raises(NotOwnedError):
                ownership.check_command(verb(dm), root=h.root)
        assert "not run" in str(ownership.check_command(verb("dm-99"), root=h.root))
    # Removing os-brick's link of a device needs no device: it may be gone.
    assert ownership.check_command(v.UnlinkEncrypted("dm-99"), root=h.root) is None
    for bad in ("dm-0x", "../sda", "sda1", "mapper/x", "dm-01"):
        with pytest.raises(InvalidArgument):
            v.ReadBlock(bad)


def test_every_verb_has_a_rule_and_a_new_one_is_refused() -> None:
    ruled = {
        v.ReadBlock,
        v.MultipathdDelMap,
        v.LinkEncrypted,
        v.MultipathdAddPath,
        v.MultipathdDelPath,
        v.MultipathFlush,
        v.MultipathdResizeMap,
        v.MultipathAddWwid,
        v.MultipathRemoveWwid,
        v.ScsiScan,
        v.ScsiRemoveLun,
        v.ScsiDelete,
        v.ScsiRescan,
    }
    assert set(v.ALL_VERBS) == ruled | ownership.UNCHECKED
    assert not ruled & ownership.UNCHECKED

    @dataclasses.dataclass(frozen=True)
    class Wipe(v.Command):
        entrypoint = "wipe"

        def argv(self) -> tuple[str, ...]:
            return ("wipefs", "-a", "/dev/sda")

    @dataclasses.dataclass(frozen=True)
    class Poke(v.SysfsWrite):
        entrypoint = "poke"

        def path(self) -> str:
            return "/sys/block/sda/device/delete"

        def value(self) -> str:
            return "1"

    with pytest.raises(NotOwnedError, match="Wipe has no ownership rule"):
        ownership.check_command(Wipe())
    with pytest.raises(NotOwnedError, match="Poke has no ownership rule"):
        ownership.attribute(Poke())


# --- through the FakeHost door: refused as the daemon refuses ---------------------------

Door = Callable[[Host], object]


def _run(command: Callable[[Host], v.Command | v.RecordVerb]) -> Door:
    return lambda h: h.fake.run(command(h), timeout=5)


def _write(write: Callable[[Host], v.SysfsWrite]) -> Door:
    return lambda h: h.fake.write(write(h), timeout=5)


REFUSED: list[tuple[str, Door, str]] = [
    ("delete", _write(lambda h: v.ScsiDelete(h.local)), "device"),
    ("rescan", _write(lambda h: v.ScsiRescan(h.local)), "device"),
    ("remove lun", _write(lambda h: v.ScsiRemoveLun(0, 0, 0, 0)), "host"),
    ("scan", _write(lambda h: v.ScsiScan(0, 0, 0, 0)), "host"),
    ("add path", _run(lambda h: v.MultipathdAddPath(h.local)), "device"),
    ("del path", _run(lambda h: v.MultipathdDelPath(h.local)), "device"),
    ("flush mpath", _run(lambda h: v.MultipathFlush(h.local_map)), "map_name"),
    ("flush lvm", _run(lambda h: v.MultipathFlush(h.lvm)), "map_name"),
    ("flush dm-1", _run(lambda h: v.MultipathFlush("dm-1")), "map_name"),
    ("resize", _run(lambda h: v.MultipathdResizeMap(h.local_map)), "map_name"),
    ("add wwid", _run(lambda h: v.MultipathAddWwid(h.local_map, h.local)), "device"),
    ("add wwid by ours", _run(lambda h: v.MultipathAddWwid(h.local_map, h.disks[0])), "wwid"),
    ("flush 8:0", _run(lambda h: v.MultipathFlush("8:0")), "map_name"),
    ("add wwid 8:0", _run(lambda h: v.MultipathAddWwid("8:0", h.disks[0])), "wwid"),
]


@pytest.mark.parametrize(("what", "door", "field"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_fake_refuses_foreign_devices_and_leaves_them(
    h: Host, what: str, door: Door, field: str
) -> None:
    before = snapshot(h.root)
    calls, writes = len(h.fake.calls), len(h.fake.writes)
    with pytest.raises(InvalidArgument) as refused:
        door(h)
    assert refused.value.field == field
    assert snapshot(h.root) == before
    assert (len(h.fake.calls), len(h.fake.writes)) == (calls, writes)


def test_the_fake_accepts_the_iscsi_volume(h: Host) -> None:
    disk = h.disks[0]
    host, channel, target, lun = h.hctl(disk)
    h.fake.resize_lun(IQN, 1, 2 * GIB)
    for each in h.disks:
        h.fake.write(v.ScsiRescan(each), timeout=5)
    assert h.fake.run(v.MultipathdResizeMap(h.wwid), timeout=5).ok
    assert h.fake.run(v.MultipathAddWwid(h.wwid, disk), timeout=5).ok
    assert h.fake.run(v.MultipathdDelPath(disk), timeout=5).ok
    assert h.fake.run(v.MultipathdAddPath(disk), timeout=5).ok
    h.fake.write(v.ScsiScan(host, channel, target, lun), timeout=5)
    h.fake.write(v.ScsiRemoveLun(host, channel, target, lun), timeout=5)
    assert disk not in h.fake.disks()
    assert h.fake.run(v.MultipathFlush(h.wwid), timeout=5).ok
    for each in h.disks[1:]:
        h.fake.write(v.ScsiDelete(each), timeout=5)
    assert h.fake.maps() == {}


def test_gone_devices_are_answered_without_running(h: Host) -> None:
    calls = len(h.fake.calls)
    for command in (v.MultipathdAddPath("sdzz"), v.MultipathFlush("3600nothere")):
        result = h.fake.run(command, timeout=5)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr.endswith(": not run\n")
    assert len(h.fake.calls) == calls + 2
    with pytest.raises(FileNotFoundError):
        h.fake.write(v.ScsiDelete("sdzz"), timeout=5)


def test_the_connector_leaves_the_local_devices_alone(
    h: Host, connector: ISCSIMultipathConnector
) -> None:
    h.fake.resize_lun(IQN, 1, 2 * GIB)
    assert connector.extend_volume(plural()) == 2 * GIB
    connector.disconnect_volume(plural(), h.info)
    assert h.fake.leftovers() == {}
    assert h.fake.exists("/sys/block/sda/holders/dm-0")
    assert h.fake.read_text("/sys/block/dm-1/dm/name") == "vg0-root\n"
    assert h.fake.list_dir("/sys/block") == ["dm-0", "dm-1", "sda"]


# --- the entrypoints themselves (in process; this host has no SCSI disk) ----------------


@pytest.mark.usefixtures("in_process")
def test_entrypoints_check_before_running_anything(bindir: pathlib.Path) -> None:  # noqa: F811
    with pytest.raises(InvalidArgument, match="device number"):
        entrypoints.multipath_flush("8:0", 5.0)
    with pytest.raises(InvalidArgument, match="device number"):
        entrypoints.multipath_add_wwid("8:0", "sda", 5.0)
    code, out, err, _ = entrypoints.multipath_add_wwid("3600a0", "sdzz", 5.0)
    assert (code, out, err) == (1, "", "no /sys/block/sdzz: not run\n")
    code, out, err, _ = entrypoints.multipath_flush("mpatha", 5.0)
    assert (code, out, err) == (1, "", "no device-mapper map mpatha: not run\n")
    with pytest.raises(FileNotFoundError):
        entrypoints.scsi_delete("sdzz", 5.0)
    assert not (bindir / "log").exists()
