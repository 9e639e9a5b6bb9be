"""The root boundary on the real kernel: the daemon touches only iSCSI devices.

scsi_debug gives the guest two SCSI disks that are not iSCSI's, on a SCSI host
of its own: one carries a plain device-mapper linear map (as LVM makes), the
other a multipath map made by multipathd (as over a multipathed boot disk).
Through the connector's own host (LinuxHost, so the real privsep daemon, as
the connector calls it) every destructive verb naming them, their host, their
maps, their WWID or their device numbers is refused, and they are left as
they were; the same verbs naming an attached iSCSI volume's disks, host and
map run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator

import pytest

from multipath_brick import verbs
from multipath_brick.exception import InvalidArgument, NotOwnedError
from multipath_brick.host import LinuxHost
from multipath_brick.privileged import entrypoints
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import read_file, run, wait_for, write_file

from .conftest import ConnectorFactory, attach_every_path, volume_props

LINEAR = "mpb-foreign-linear"
TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class Foreign:
    """What scsi_debug brought, and the maps over it."""

    host: int  # scsi_debug's SCSI host number
    plain: str  # sdX under the linear map
    multipathed: str  # sdX under the multipath map
    wwid: str  # the multipath map's name: its WWID, as multipathd read it
    dm: str  # the multipath map's dm-N
    linear_dm: str  # the linear map's dm-N


def _debug_disks() -> list[str]:
    return sorted(
        disk
        for disk in os.listdir("/sys/block")
        if disk.startswith("sd") and "/pseudo_" in os.path.realpath(f"/sys/block/{disk}/device")
    )


def _hctl(disk: str) -> tuple[int, int, int, int]:
    h, c, t, lun = os.path.basename(os.path.realpath(f"/sys/block/{disk}/device")).split(":")
    return int(h), int(c), int(t), int(lun)


def _dm_of(name: str) -> str:
    return os.path.basename(os.path.realpath(f"/dev/mapper/{name}"))


def _remove_scsi_debug() -> None:
    for disk in _debug_disks():
        write_file(f"/sys/block/{disk}/device/delete", "1")

    def unloaded() -> bool:
        return run(["rmmod", "scsi_debug"], check=False).returncode == 0 or not os.path.isdir(
            "/sys/module/scsi_debug"
        )

    wait_for("scsi_debug unloaded", unloaded, timeout=30)


def _holder(disk: str) -> str | None:
    return next(iter(sorted(os.listdir(f"/sys/block/{disk}/holders"))), None)


def _multipath_map_over(disk: str) -> str:
    """Have multipathd map ``disk``, as a multipathed local disk is: its dm-N.

    The WWID is whitelisted by device (``multipath -a /dev/sdX``), so it is
    the one multipathd reads from udev, whatever designator scsi_id chose.
    If multipathd does not make the map, ``multipath`` makes it.
    """
    run(["multipath", "-a", f"/dev/{disk}"])
    run(["multipathd", "add", "path", f"/dev/{disk}"], check=False)
    try:
        return wait_for(f"multipathd's map over {disk}", lambda: _holder(disk), timeout=15)
    except TimeoutError:
        run(["multipath", f"/dev/{disk}"], check=False)
    try:
        return wait_for(f"multipath's map over {disk}", lambda: _holder(disk), timeout=15)
    except TimeoutError:
        show = ["multipathd", "show", "paths", "raw", "format", "%d %w %m %t %T"]
        said = [run(argv, check=False) for argv in (show, ["multipath", "-ll"])]
        udev = run(["udevadm", "info", "-q", "property", "-n", disk], check=False).stdout
        raise AssertionError(
            f"no multipath map over {disk}:\n"
            + "".join(p.stdout + p.stderr for p in said)
            + "".join(line + "\n" for line in udev.splitlines() if "SERIAL" in line)
        ) from None


@pytest.fixture
def foreign(lab: Lab) -> Iterator[Foreign]:
    """Two scsi_debug disks, a linear map over one, a multipath map over the other."""
    if run(["modprobe", "-n", "scsi_debug"], check=False).returncode:
        pytest.fail("the guest kernel has no scsi_debug module")
    run(["modprobe", "scsi_debug", "num_tgts=2", "max_luns=1", "dev_size_mb=16"])
    try:
        plain, multipathed = wait_for(
            "two scsi_debug disks", lambda: d if len(d := _debug_disks()) == 2 else None
        )
        run(["udevadm", "settle", "-t", "30"], check=False)
        sectors = read_file(f"/sys/block/{plain}/size")
        devno = read_file(f"/sys/block/{plain}/dev")
        run(["dmsetup", "create", LINEAR, "--table", f"0 {sectors} linear {devno} 0"])
        dm = _multipath_map_over(multipathed)
        run(["udevadm", "settle", "-t", "30"], check=False)
        name = read_file(f"/sys/block/{dm}/dm/name")
        yield Foreign(_hctl(plain)[0], plain, multipathed, name, dm, _dm_of(LINEAR))
    finally:
        # As root, outside the daemon: the maps, the WWID, the disks, the module.
        run(["dmsetup", "remove", "--retry", LINEAR], check=False)
        for disk in _debug_disks():
            if (held := _holder(disk)) is not None:
                name = read_file(f"/sys/block/{held}/dm/name")
                if run(["multipath", "-f", name], check=False).returncode:
                    run(["dmsetup", "remove", "--force", "--retry", name], check=False)
            run(["multipath", "-w", f"/dev/{disk}"], check=False)
        _remove_scsi_debug()


def _state(f: Foreign) -> dict[str, object]:
    """What the refused verbs would change: disks, sizes, maps, their slaves, paths."""
    paths = run(["multipathd", "show", "paths", "raw", "format", "%d %m %t"], check=False)
    return {
        "disks": _debug_disks(),
        "sizes": [read_file(f"/sys/block/{d}/size") for d in _debug_disks()],
        "tables": run(["dmsetup", "table"]).stdout,
        "slaves": {
            dm: sorted(os.listdir(f"/sys/block/{dm}/slaves")) for dm in (f.dm, f.linear_dm)
        },
        "paths": sorted(line for line in paths.stdout.splitlines() if f.multipathed in line),
        "listed": f"/{f.wwid}/" in read_file("/etc/multipath/wwids"),
    }


def _refusals(host: LinuxHost, f: Foreign) -> list[tuple[str, Callable[[], object], str]]:
    h, c, t, lun = _hctl(f.plain)
    plain_wwid = "3" + read_file(f"/sys/block/{f.plain}/device/wwid")[4:]

    def write(verb: verbs.SysfsWrite) -> Callable[[], object]:
        return lambda: host.write(verb, timeout=TIMEOUT)

    def command(verb: verbs.Command | verbs.RecordVerb) -> Callable[[], object]:
        return lambda: host.run(verb, timeout=TIMEOUT)

    return [
        ("delete", write(verbs.ScsiDelete(f.plain)), "device"),
        ("delete multipathed", write(verbs.ScsiDelete(f.multipathed)), "device"),
        ("rescan", write(verbs.ScsiRescan(f.plain)), "device"),
        ("remove lun", write(verbs.ScsiRemoveLun(h, c, t, lun)), "host"),
        ("scan scsi_debug host", write(verbs.ScsiScan(f.host, 0, 0, 5)), "host"),
        ("scan ata host", write(verbs.ScsiScan(0, 0, 0, 0)), "host"),
        ("add path", command(verbs.MultipathdAddPath(f.plain)), "device"),
        ("del path", command(verbs.MultipathdDelPath(f.multipathed)), "device"),
        ("flush multipath map", command(verbs.MultipathFlush(f.wwid)), "map_name"),
        ("flush by dm-N", command(verbs.MultipathFlush(f.dm)), "map_name"),
        ("flush linear map", command(verbs.MultipathFlush(LINEAR)), "map_name"),
        ("resize", command(verbs.MultipathdResizeMap(f.wwid)), "map_name"),
        ("resize by dm-N", command(verbs.MultipathdResizeMap(f.dm)), "map_name"),
        ("add wwid", command(verbs.MultipathAddWwid(plain_wwid, f.plain)), "device"),
        (
            "add wwid of the mapped disk",
            command(verbs.MultipathAddWwid(f.wwid, f.multipathed)),
            "device",
        ),
    ]


def test_foreign_disks_hosts_and_maps_are_refused_and_left_intact(
    lab: Lab, foreign: Foreign, make_connector: ConnectorFactory
) -> None:
    host = make_connector().host
    assert isinstance(host, LinuxHost)
    before = _state(foreign)
    refused = {}
    for what, act, field in _refusals(host, foreign):
        with pytest.raises(NotOwnedError) as error:
            act()
        # Rebuilt on this side of the privsep socket, with its fields.
        assert type(error.value) is NotOwnedError, what
        assert error.value.field == field, what
        refused[what] = error.value.reason
    # A device number cannot even make a verb here; sent to the daemon as a
    # field (as a compromised caller would), it is refused there too.
    devno = read_file(f"/sys/block/{foreign.plain}/dev")
    with pytest.raises(InvalidArgument, match="device number"):
        entrypoints.multipath_flush(devno, TIMEOUT)
    with pytest.raises(InvalidArgument, match="device number"):
        entrypoints.multipath_add_wwid(devno, foreign.plain, TIMEOUT)
    assert _state(foreign) == before
    assert "not under an iSCSI session" in refused["delete"]
    assert "/pseudo_0/" in refused["delete"]
    assert "is not an iSCSI host: driver scsi_debug" in refused["scan scsi_debug host"]
    assert "is not a multipath map" in refused["flush linear map"]
    assert "has a path that is not an iSCSI disk" in refused["flush multipath map"]


def test_an_iscsi_volume_is_accepted_beside_foreign_devices(
    lab: Lab, foreign: Foreign, make_connector: ConnectorFactory
) -> None:
    before = _state(foreign)
    wwid = lab.add_lun(1, 64)
    connector = make_connector()
    host = connector.host
    props = volume_props(lab, 1)
    info, dm = attach_every_path(lab, connector, props)
    slaves = lab.dm_slaves(dm)
    assert not set(slaves) & set(_debug_disks())
    for disk in slaves:
        host.write(verbs.ScsiRescan(disk), timeout=TIMEOUT)
    assert connector.extend_volume(props) == 64 << 20  # rescans and resizes through the daemon
    assert host.run(verbs.MultipathAddWwid(wwid, slaves[0]), timeout=TIMEOUT).ok
    # Our disk named for a foreign disk's WWID: refused, the WWID not recorded.
    with pytest.raises(NotOwnedError) as refused:
        host.run(verbs.MultipathAddWwid(foreign.wwid, slaves[0]), timeout=TIMEOUT)
    assert refused.value.field == "wwid"
    # Accepted (not refused); what multipathd answers is its own business.
    host.run(verbs.MultipathdResizeMap(dm), timeout=TIMEOUT)
    host.run(verbs.MultipathdAddPath(slaves[0]), timeout=TIMEOUT)
    h, c, t, lun = _hctl(slaves[-1])
    host.write(verbs.ScsiScan(h, c, t, lun), timeout=TIMEOUT)  # the LUN is there: nothing new
    host.write(verbs.ScsiRemoveLun(h, c, t, lun), timeout=TIMEOUT)
    wait_for(f"{slaves[-1]} removed", lambda: not os.path.exists(f"/sys/block/{slaves[-1]}"))
    wait_for(f"{dm} down to 3 paths", lambda: lab.dm_slaves(dm) == slaves[:-1])
    connector.disconnect_volume(props, info)  # flush, del path, delete: all accepted
    assert lab.dm_for_wwid(wwid) is None
    assert _state(foreign) == before
