"""The kernel side of the fake host: scsi hosts, LUN scans, sd disks and udev.

A scan creates the SCSI device before it returns; sd probes it afterwards (the
scripted probe delay: READ CAPACITY and friends over the wire) and only then
makes the block device. udev makes ``/dev/sdX`` and the by-path link (and
multipathd hears of the disk) only after the scripted udev delay, as on a busy
real host.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable

from multipath_brick.testing.state import INITIATOR, Disk, Session, SimState

VENDOR = "LIO-ORG"
MODEL = "FakeDisk"
#: Simulated seconds a logged-out session stays in sysfs after iscsid answered.
SESSION_TEARDOWN = 0.03
_SCAN = re.compile(r"/sys/class/scsi_host/host([0-9]+)/scan")
_DEVICE_ATTR = re.compile(r"/sys/block/(sd[a-z]+)/device/(delete|rescan)")
_HCTL_DELETE = re.compile(r"/sys/class/scsi_device/([0-9]+):0:0:([0-9]+)/device/delete")


def sd_name(index: int) -> str:
    """The kernel's disk name for an index: sda..sdz, sdaa..sdzz, sdaaa..."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return "sd" + letters


class Kernel:
    """SCSI hosts, disks and their udev events.

    :param state: the shared state (callers hold its lock).
    :param on_udev_add: called when udev has processed a new disk.
    :param on_removed: called when a disk goes away (multipathd drops the path).
    """

    def __init__(
        self,
        state: SimState,
        on_udev_add: Callable[[Disk], None],
        on_removed: Callable[[Disk], None],
    ) -> None:
        self.st = state
        self.on_udev_add = on_udev_add
        self.on_removed = on_removed

    # --- sessions ----------------------------------------------------------------------

    def create_session(self, portal: str, iqn: str, iface: str, record: dict[str, str]) -> Session:
        """A new session on a new scsi host (numbers only ever grow).

        :param record: the node record the login used.
        """
        target = self.st.targets[iqn]
        s = Session(
            self.st.next_sid,
            self.st.next_host,
            iqn,
            portal,
            iface,
            target.tpgt,
            float(record["node.session.timeo.replacement_timeout"]),
        )
        self.st.next_sid += 1
        self.st.next_host += 1
        self.st.sessions[s.sid] = s
        attrs = {
            "recovery_tmo": record["node.session.timeo.replacement_timeout"],
            # The kernel prints an unset string parameter as "(null)".
            "username": record["node.session.auth.username"] or "(null)",
            "username_in": record["node.session.auth.username_in"] or "(null)",
        }
        self.st.tree.add_session(s, INITIATOR, attrs)
        return s

    def remove_session(self, s: Session) -> None:
        """Logout: the kernel removes the session's disks, then the host.

        Its sysfs objects go :data:`SESSION_TEARDOWN` after iscsid has answered
        the logout: nothing promises the kernel is done when iscsiadm returns
        (in the lab a shell looking some 30 ms later never found one left), and
        this keeps code that acts on the session's absence at once from
        passing here by luck. Session and host numbers are not reused meanwhile.
        """
        for disk in self.st.disks_of(s):
            self.remove_disk(disk)
        del self.st.sessions[s.sid]
        self.st.later(SESSION_TEARDOWN, lambda: self.st.tree.remove_session(s))

    # --- disks -------------------------------------------------------------------------

    def scan(self, s: Session, lun: int) -> Disk | None:
        """Scan one LUN: a new disk when the target has it and it is not there yet."""
        target = self.st.targets.get(s.iqn)
        if target is None or lun not in target.luns or s.sid not in self.st.sessions:
            return None
        if s.portal in self.st.unreachable:
            return None  # INQUIRY never answered: no device
        if self.st.disk_at(s.host, lun) is not None:
            return None
        index = self.st.free_disk_index()
        disk = Disk(
            name=sd_name(index),
            index=index,
            session=s,
            lun=lun,
            scsi_wwid=target.scsi_wwid(lun),
            wwid=target.wwid(lun),
            size=target.luns[lun],
        )
        self.st.add_disk(disk)
        self.st.tree.add_disk(disk, VENDOR, MODEL)

        def udev() -> None:
            if self.st.disks.get(disk.name) is disk:
                disk.udev_done = True
                self.st.tree.udev_disk(disk)
                self.on_udev_add(disk)

        def probe() -> None:
            if self.st.disks.get(disk.name) is disk:
                disk.probed = True
                self.st.tree.add_block(disk)
                delay = self.st.udev_delay_by_portal.get(s.portal, self.st.udev_delay)
                self.st.udev_event(delay, udev)

        probe_delay = self.st.sd_probe_delay_by_portal.get(s.portal, self.st.sd_probe_delay)
        self.st.later(probe_delay, probe)
        return disk

    def scan_all(self, s: Session) -> None:
        """A wildcard scan (``- - -``): every LUN of the session's target."""
        target = self.st.targets.get(s.iqn)
        for lun in sorted(target.luns) if target else ():
            self.scan(s, lun)

    def remove_disk(self, disk: Disk) -> None:
        """``echo 1 > .../delete``: the disk leaves its map and sysfs."""
        if self.st.disks.get(disk.name) is not disk:
            return
        self.on_removed(disk)
        self.st.drop_disk(disk)
        self.st.tree.remove_disk(disk)
        if not self.st.disks_of(disk.session):
            # The kernel reaps a scsi target with its last device.
            self.st.tree.remove(self.st.tree.target_dir(disk.session))

    def rescan_disk(self, disk: Disk) -> None:
        """``echo 1 > .../rescan``: the disk learns the LUN's current size."""
        target = self.st.targets.get(disk.session.iqn)
        if target is not None and disk.lun in target.luns:
            disk.size = target.luns[disk.lun]
            self.st.tree.set_disk_size(disk)

    # --- sysfs writes ------------------------------------------------------------------

    def write_delay(self, path: str) -> float:
        """Simulated seconds a write blocks: the scripted scan hang, plus the
        session's recovery timeout when a scan goes to a dead portal."""
        m = _SCAN.fullmatch(path)
        if m is None:
            return 0.0
        session = self.st.session_on_host(int(m.group(1)))
        dead = session is not None and session.portal in self.st.unreachable
        return self.st.scan_hang + (session.recovery_tmo if session and dead else 0.0)

    def write(self, path: str, value: str) -> None:
        """Apply a sysfs write.

        :raises OSError: ENOENT for a missing attribute, EINVAL for a bad value.
        """
        m = _SCAN.fullmatch(path)
        if m:
            session = self.st.session_on_host(int(m.group(1)))
            if session is None:
                if self.st.tree.exists(path):
                    return  # a local controller: nothing new behind it
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            fields = value.split()
            if len(fields) != 3:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
            channel, target, lun = fields
            if channel not in ("0", "-") or target not in ("0", "-"):
                return
            if lun == "-":
                self.scan_all(session)
            else:
                self.scan(session, int(lun))
            return
        by_hctl = _HCTL_DELETE.fullmatch(path)
        if by_hctl:
            found = self.st.disk_at(int(by_hctl.group(1)), int(by_hctl.group(2)))
            if found is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            self.remove_disk(found)
            return
        m = _DEVICE_ATTR.fullmatch(path)
        disk = self.st.disks.get(m.group(1)) if m else None
        if m is None or disk is None or not disk.probed:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if m.group(2) == "delete":
            self.remove_disk(disk)
        else:
            self.rescan_disk(disk)
