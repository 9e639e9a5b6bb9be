"""Devices of the fake host that are not iSCSI's: local disks and maps over them.

What the privsep daemon must never touch for the library
(:mod:`multipath_brick.verbs.ownership`): the host's own SATA disk, and a
device-mapper map whose slaves are not all iSCSI disks (the boot disk's
multipath map, an LVM volume). Laid out as on the lab guest (QEMU q35, ahci)::

    /sys/class/scsi_host/host0 -> ../../devices/pci0000:00/0000:00:1f.2/ata1/host0/scsi_host/host0
    /sys/block/sda -> ../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda
    /sys/block/sda/device/wwid    t10.ATA     QEMU HARDDISK   ...   QM00001
    /sys/block/dm-0/dm/uuid       mpath-1ATA_QEMU_HARDDISK_QM00001  (or LVM-..., or none)

They take sd and dm numbers like the iSCSI ones. The fake's multipathd does
not manage them (no verb the library sends may reach them) and
:meth:`~multipath_brick.testing.FakeHost.leftovers` does not list them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from multipath_brick.testing.scsi_sim import sd_name
from multipath_brick.testing.state import SimState
from multipath_brick.testing.sysfs_tree import sd_dev
from multipath_brick.wwid import multipath_wwid

#: The SATA ports of the fake's ahci controller (scsi hosts 0 and 1, as made
#: by :meth:`.SysfsTree.init_host`); one disk each.
SATA_HOSTS = (0, 1)
_AHCI = "/sys/devices/pci0000:00/0000:00:1f.2"


def add_disk(st: SimState, host: int, size: int) -> str:
    """Plug a QEMU SATA disk into port ``host``; its name (``sdX``).

    :raises ValueError: no such port, or the port has its disk already.
    """
    if host not in SATA_HOSTS:
        raise ValueError(f"the local controller has SCSI hosts {SATA_HOSTS}, not {host}")
    hctl = f"{host}:0:0:0"
    ddir = f"{_AHCI}/ata{host + 1}/host{host}/target{host}:0:0/{hctl}"
    if st.tree.exists(ddir):
        raise ValueError(f"SATA port {host} has a disk already")
    index = st.free_disk_index()
    name = sd_name(index)
    serial = f"QM{index + 1:05d}"
    # libata's VPD 0x83: "ATA", the model padded to 40 characters, the serial.
    st.tree.scsi_device(
        ddir, hctl, f"t10.ATA     {'QEMU HARDDISK':<40}{serial}", "ATA", "QEMU HARDDISK"
    )
    st.tree.block_device(ddir, name, size, sd_dev(index))
    st.tree.write_file(f"/dev/{name}", "")
    st.tree.link(f"/dev/disk/by-id/ata-QEMU_HARDDISK_{serial}", f"/dev/{name}")
    st.local_disks[name] = index
    st.sd_indexes.use(index)
    return name


def add_map(st: SimState, name: str, devices: Sequence[str], uuid: str | None) -> str:
    """A device-mapper map over ``devices``; its kernel name (``dm-N``).

    :param uuid: the map's dm uuid; by default ``mpath-<WWID of the first
        device>``, a multipath map as ``multipath`` makes over a local disk.
    :raises ValueError: a device does not exist.
    """
    blocks = []
    for device in devices:
        if not st.tree.exists(f"/sys/block/{device}"):
            raise ValueError(f"no disk {device}")
        blocks.append(st.tree.host_path(os.path.realpath(st.tree.local(f"/sys/block/{device}"))))
    if uuid is None:
        uuid = "mpath-" + multipath_wwid(_text(st, f"/sys/block/{devices[0]}/device/wwid"))
    dm = st.next_dm
    st.next_dm += 1
    sizes = [int(_text(st, f"{block}/size")) * 512 for block in blocks]
    st.tree.dm_device(dm, name, uuid, min(sizes, default=0))
    for block in blocks:
        st.tree.link_slave(dm, block)
    return f"dm-{dm}"


def _text(st: SimState, path: str) -> str:
    with open(st.tree.local(path), encoding="utf-8") as f:
        return f.read().strip()
