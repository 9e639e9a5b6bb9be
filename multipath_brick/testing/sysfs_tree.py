"""The fake host's file tree: sysfs, /dev and /etc laid out like Linux.

Real directories, regular files and *relative* symlinks under a root directory,
so code that walks ``/sys/class/iscsi_session/sessionN/device/target*/...`` or
resolves ``/sys/block/sdX/holders/dm-N`` works unchanged. Attribute files end
with a newline, as the kernel writes them.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from multipath_brick.scsi.bypath import BY_PATH, lun_part
from multipath_brick.scsi.sysfs import UDEV_DB

if TYPE_CHECKING:
    from multipath_brick.testing.state import Disk, MapState, Session

WWIDS_HEADER = (
    "# Multipath wwids, Version : 1.0\n"
    "# NOTE: This file is automatically maintained by multipath and multipathd.\n"
    "# You should not need to edit this file in normal circumstances.\n"
    "#\n"
    "# Valid WWIDs:\n"
)
DM_MAJOR = 254  # what the lab guest (Debian) gives device-mapper


def sd_dev(index: int) -> str:
    """``major:minor`` of the index-th sd disk (8, 65..71, 128..135; 16 per major)."""
    group, slot = divmod(index, 16)
    majors = [8, *range(65, 72), *range(128, 136)]
    return f"{majors[group % len(majors)]}:{slot * 16}"


class SysfsTree:
    """Absolute host paths mapped onto ``root``.

    :param root: an existing directory that stands for ``/``.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    # --- primitives ------------------------------------------------------------------

    def local(self, path: str) -> str:
        """The real path of a host path.

        :raises ValueError: for a relative path or one escaping the root.
        """
        if not path.startswith("/"):
            raise ValueError(f"host paths are absolute: {path!r}")
        real = os.path.normpath(self.root + path)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise ValueError(f"path escapes the fake root: {path!r}")
        return real

    def host_path(self, real: str) -> str:
        """The host path of a real path under the root."""
        rel = os.path.relpath(real, self.root)
        return "/" if rel == "." else "/" + rel

    def write_file(self, path: str, content: str) -> None:
        """Create or replace a file (and its parents)."""
        real = self.local(path)
        os.makedirs(os.path.dirname(real), exist_ok=True)
        with open(real, "w", encoding="utf-8") as f:
            f.write(content)

    def attr(self, path: str, value: object) -> None:
        """Write a sysfs attribute: its value and a newline."""
        self.write_file(path, f"{value}\n")

    def mkdir(self, path: str) -> None:
        """Create a directory and its parents."""
        os.makedirs(self.local(path), exist_ok=True)

    def link(self, path: str, target: str) -> None:
        """Make ``path`` a relative symlink to the host path ``target``."""
        real = self.local(path)
        os.makedirs(os.path.dirname(real), exist_ok=True)
        if os.path.lexists(real):
            os.unlink(real)
        os.symlink(os.path.relpath(self.local(target), os.path.dirname(real)), real)

    def exists(self, path: str) -> bool:
        """Whether a host path exists (following symlinks)."""
        return os.path.exists(self.local(path))

    def remove(self, path: str) -> None:
        """Remove a file, link or directory tree; missing is fine."""
        real = self.local(path)
        if os.path.islink(real) or os.path.isfile(real):
            os.unlink(real)
        elif os.path.isdir(real):
            shutil.rmtree(real)

    # --- host-wide files ---------------------------------------------------------------

    def init_host(self, initiator: str) -> None:
        """The files a host with open-iscsi and multipath-tools has before any login."""
        self.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={initiator}\n")
        self.write_wwids([])
        for d in (
            "/sys/class/iscsi_session",
            "/sys/class/iscsi_connection",
            "/sys/class/iscsi_host",
            "/sys/class/scsi_host",
            "/sys/class/block",
            "/sys/block",
            "/sys/devices/platform",
            "/sys/devices/virtual/block",
            "/dev/disk/by-path",
            "/dev/disk/by-id",
            "/dev/mapper",
            UDEV_DB,
        ):
            self.mkdir(d)
        # Local SATA controllers take the first scsi hosts, as on the lab guest.
        for n in (0, 1):
            shost = f"/sys/devices/pci0000:00/0000:00:1f.2/ata{n + 1}/host{n}/scsi_host/host{n}"
            self.attr(f"{shost}/proc_name", "ahci")
            self.write_file(f"{shost}/scan", "")
            self.link(f"/sys/class/scsi_host/host{n}", shost)

    def write_wwids(self, wwids: list[str]) -> None:
        """``/etc/multipath/wwids`` in multipath's own format."""
        body = "".join(f"/{w}/\n" for w in wwids)
        self.write_file("/etc/multipath/wwids", WWIDS_HEADER + body)

    # --- iSCSI sessions ----------------------------------------------------------------

    @staticmethod
    def session_dir(s: Session) -> str:
        """``/sys/devices/platform/hostH/sessionN``."""
        return f"/sys/devices/platform/host{s.host}/session{s.sid}"

    def add_session(self, s: Session, initiator: str, attrs: dict[str, str]) -> None:
        """The scsi host, iscsi_session and iscsi_connection of a new login.

        :param attrs: more session attributes (recovery_tmo, username...); the
            kernel shows CHAP passwords here too, the fake never writes them.
        """
        hostdir = f"/sys/devices/platform/host{s.host}"
        sdir = self.session_dir(s)
        cls = f"{sdir}/iscsi_session/session{s.sid}"
        self.attr(f"{cls}/targetname", s.iqn)
        self.attr(f"{cls}/ifacename", s.iface)
        self.attr(f"{cls}/initiatorname", initiator)
        self.attr(f"{cls}/tpgt", s.tpgt)
        self.attr(f"{cls}/state", "LOGGED_IN")
        for key, text in attrs.items():
            self.attr(f"{cls}/{key}", text)
        self.link(f"{cls}/device", sdir)
        self.link(f"/sys/class/iscsi_session/session{s.sid}", cls)
        conn = f"{sdir}/connection{s.sid}:0/iscsi_connection/connection{s.sid}:0"
        for name, value in (
            ("persistent_address", s.address),
            ("persistent_port", s.port),
            ("address", s.address),
            ("port", s.port),
            ("state", "up"),
        ):
            self.attr(f"{conn}/{name}", value)
        self.link(f"/sys/class/iscsi_connection/connection{s.sid}:0", conn)
        ihost = f"{hostdir}/iscsi_host/host{s.host}"
        self.attr(f"{ihost}/initiatorname", initiator)
        self.link(f"/sys/class/iscsi_host/host{s.host}", ihost)
        shost = f"{hostdir}/scsi_host/host{s.host}"
        self.attr(f"{shost}/proc_name", "iscsi_tcp")
        self.write_file(f"{shost}/scan", "")
        self.link(f"/sys/class/scsi_host/host{s.host}", shost)
        # No target{H}:0:0 yet: with manual scan it appears with the first LUN.

    def set_session_state(self, s: Session, up: bool) -> None:
        """Session ``LOGGED_IN``/``FAILED``, connection ``up``/``failed``."""
        sdir = self.session_dir(s)
        self.attr(f"{sdir}/iscsi_session/session{s.sid}/state", "LOGGED_IN" if up else "FAILED")
        conn = f"{sdir}/connection{s.sid}:0/iscsi_connection/connection{s.sid}:0"
        self.attr(f"{conn}/state", "up" if up else "failed")

    def remove_session(self, s: Session) -> None:
        """Everything a logout tears down (its disks must be gone already)."""
        self.remove(f"/sys/class/iscsi_session/session{s.sid}")
        self.remove(f"/sys/class/iscsi_connection/connection{s.sid}:0")
        self.remove(f"/sys/class/iscsi_host/host{s.host}")
        self.remove(f"/sys/class/scsi_host/host{s.host}")
        self.remove(f"/sys/devices/platform/host{s.host}")

    # --- SCSI disks --------------------------------------------------------------------

    def target_dir(self, s: Session) -> str:
        """The session's scsi target directory, ``.../targetH:0:0``."""
        return f"{self.session_dir(s)}/target{s.host}:0:0"

    def disk_dir(self, d: Disk) -> str:
        """The disk's scsi device directory, ``.../targetH:0:0/H:0:0:L``."""
        return f"{self.target_dir(d.session)}/{d.hctl}"

    def add_disk(self, d: Disk, vendor: str, model: str) -> None:
        """What the kernel creates when a LUN is scanned: the SCSI device at
        once, its block device when sd has probed it (:meth:`add_block`)."""
        self.scsi_device(self.disk_dir(d), d.hctl, d.scsi_wwid, vendor, model)

    def scsi_device(self, ddir: str, hctl: str, wwid: str, vendor: str, model: str) -> None:
        """A SCSI disk device ``ddir`` (``.../targetH:C:T/H:C:T:L``), any transport."""
        for name, value in (
            ("wwid", wwid),
            ("state", "running"),
            ("vendor", f"{vendor:<8}"),
            ("model", f"{model:<16}"),
            ("rev", "4.0 "),
            ("type", 0),
            ("queue_depth", 32),
        ):
            self.attr(f"{ddir}/{name}", value)
        self.write_file(f"{ddir}/delete", "")
        self.write_file(f"{ddir}/rescan", "")
        self.mkdir(f"{ddir}/scsi_device/{hctl}")
        self.link(f"{ddir}/scsi_device/{hctl}/device", ddir)
        self.link(f"/sys/class/scsi_device/{hctl}", f"{ddir}/scsi_device/{hctl}")

    def add_block(self, d: Disk) -> None:
        """The block device sd makes for a scanned disk (udev comes later)."""
        self.block_device(self.disk_dir(d), d.name, d.size, sd_dev(d.index))

    def block_device(self, ddir: str, name: str, size: int, devno: str) -> None:
        """The sd block device ``name`` of the SCSI device ``ddir``."""
        block = f"{ddir}/block/{name}"
        self.attr(f"{block}/size", size // 512)
        self.attr(f"{block}/dev", devno)
        self.attr(f"{block}/ro", 0)
        self.mkdir(f"{block}/holders")
        self.link(f"{block}/device", ddir)
        self.link(f"/sys/block/{name}", block)
        self.link(f"/sys/class/block/{name}", block)

    @staticmethod
    def by_path(d: Disk) -> str:
        """The disk's ``/dev/disk/by-path`` link."""
        # udev's path_id: the persistent address, never bracketed (even IPv6),
        # and a LUN of 256 or more in its hex form (multipath_brick.scsi.bypath).
        s = d.session
        return f"{BY_PATH}/ip-{s.address}:{s.port}-iscsi-{s.iqn}-{lun_part(d.lun)}"

    def udev_disk(self, d: Disk) -> None:
        """The database entry, device node and by-path link udev makes for a new disk."""
        self.write_file(f"{UDEV_DB}/b{sd_dev(d.index)}", f"E:ID_SERIAL={d.wwid}\n")
        self.write_file(f"/dev/{d.name}", "")
        self.link(self.by_path(d), f"/dev/{d.name}")
        if not os.path.lexists(self.local(f"/dev/disk/by-id/scsi-{d.wwid}")):
            # Once multipath claims the WWID, udev points this at the map.
            self.link(f"/dev/disk/by-id/scsi-{d.wwid}", f"/dev/{d.name}")

    def set_disk_size(self, d: Disk) -> None:
        """Show the disk's current size (in 512-byte sectors)."""
        self.attr(f"{self.disk_dir(d)}/block/{d.name}/size", d.size // 512)

    def _unlink_if_to(self, path: str, device: str) -> None:
        link = self.local(path)
        if os.path.islink(link) and os.readlink(link).endswith(f"/{device}"):
            os.unlink(link)

    def remove_disk(self, d: Disk) -> None:
        """Everything of a deleted disk, including udev's links."""
        self._unlink_if_to(self.by_path(d), d.name)
        self._unlink_if_to(f"/dev/disk/by-id/scsi-{d.wwid}", d.name)
        self.remove(f"{UDEV_DB}/b{sd_dev(d.index)}")
        self.remove(f"/sys/class/scsi_device/{d.hctl}")
        self.remove(f"/dev/{d.name}")
        self.remove(f"/sys/block/{d.name}")
        self.remove(f"/sys/class/block/{d.name}")
        self.remove(self.disk_dir(d))

    # --- device-mapper multipath maps --------------------------------------------------

    @staticmethod
    def map_dir(m: MapState) -> str:
        """``/sys/devices/virtual/block/dm-N``."""
        return f"/sys/devices/virtual/block/dm-{m.dm}"

    def add_map(self, m: MapState, *, linked: bool = True) -> None:
        """A new dm-N with its name and uuid; with ``linked``, the links udev
        makes for it (else :meth:`link_map` makes them later)."""
        self.dm_device(m.dm, m.name, f"mpath-{m.wwid}", m.size, linked=False)
        if linked:
            self.link_map(m)

    def link_map(self, m: MapState) -> None:
        """The links udev makes for a new map once it has processed it."""
        self.link(f"/dev/mapper/{m.name}", f"/dev/dm-{m.dm}")
        self.link(f"/dev/disk/by-id/dm-uuid-mpath-{m.wwid}", f"/dev/dm-{m.dm}")
        self.link(f"/dev/disk/by-id/dm-name-{m.name}", f"/dev/dm-{m.dm}")
        self.link(f"/dev/disk/by-id/scsi-{m.wwid}", f"/dev/dm-{m.dm}")
        self.link(f"/dev/disk/by-id/wwn-0x{m.wwid[1:]}", f"/dev/dm-{m.dm}")

    def dm_device(self, dm: int, name: str, uuid: str, size: int, *, linked: bool = True) -> None:
        """A device-mapper device ``dm-N`` (any target type) and its ``/dev`` names."""
        vdir = f"/sys/devices/virtual/block/dm-{dm}"
        self.attr(f"{vdir}/dev", f"{DM_MAJOR}:{dm}")
        self.attr(f"{vdir}/size", size // 512)
        self.attr(f"{vdir}/ro", 0)
        self.attr(f"{vdir}/dm/name", name)
        self.attr(f"{vdir}/dm/uuid", uuid)
        self.attr(f"{vdir}/dm/suspended", 0)
        self.mkdir(f"{vdir}/slaves")
        self.mkdir(f"{vdir}/holders")
        self.link(f"/sys/block/dm-{dm}", vdir)
        self.link(f"/sys/class/block/dm-{dm}", vdir)
        self.write_file(f"/dev/dm-{dm}", "")
        if linked:
            self.link(f"/dev/mapper/{name}", f"/dev/dm-{dm}")

    def set_map_size(self, m: MapState) -> None:
        """Show the map's current size (in 512-byte sectors)."""
        self.attr(f"{self.map_dir(m)}/size", m.size // 512)

    def add_slave(self, m: MapState, d: Disk) -> None:
        """Link a path under the map: ``slaves/sdX`` and ``sdX/holders/dm-N``."""
        self.link_slave(m.dm, f"{self.disk_dir(d)}/block/{d.name}")

    def link_slave(self, dm: int, block: str) -> None:
        """``dm-N/slaves/sdX`` and ``sdX/holders/dm-N``, for the block device
        directory ``block`` (``.../block/sdX``)."""
        vdir = f"/sys/devices/virtual/block/dm-{dm}"
        self.link(f"{vdir}/slaves/{os.path.basename(block)}", block)
        self.link(f"{block}/holders/dm-{dm}", vdir)

    def remove_slave(self, m: MapState, d: Disk) -> None:
        """Undo :meth:`add_slave`."""
        self.remove(f"{self.map_dir(m)}/slaves/{d.name}")
        self.remove(f"{self.disk_dir(d)}/block/{d.name}/holders/dm-{m.dm}")

    def remove_map(self, m: MapState) -> None:
        """Everything of a removed map (its slaves' holder links must be gone)."""
        for link in (
            f"/dev/mapper/{m.name}",
            f"/dev/disk/by-id/dm-uuid-mpath-{m.wwid}",
            f"/dev/disk/by-id/dm-name-{m.name}",
            f"/dev/disk/by-id/scsi-{m.wwid}",
            f"/dev/disk/by-id/wwn-0x{m.wwid[1:]}",
            f"/dev/dm-{m.dm}",
            f"/sys/block/dm-{m.dm}",
            f"/sys/class/block/dm-{m.dm}",
        ):
            self.remove(link)
        self.remove(self.map_dir(m))
