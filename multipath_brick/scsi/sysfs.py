"""sysfs lookups: iSCSI session -> SCSI host -> H:C:T:L -> sdX -> WWID -> dm-N.

The kernel lays these out as::

    /sys/class/iscsi_session/sessionN/{targetname,ifacename,state}
    /sys/class/iscsi_session/sessionN/device -> .../hostH/sessionN
    .../hostH/sessionN/targetH:C:T/H:C:T:L/block/sdX
    /sys/class/iscsi_connection/connectionN:0/{persistent_address,persistent_port}
    /sys/block/sdX/device/wwid          naa.6001405...   (the disk's WWID)
    /sys/block/sdX/holders/dm-N         (the multipath map holding it)
    /sys/block/dm-N/dm/uuid             mpath-36001405...
    /run/udev/data/b8:16                (udev has processed the disk 8:16)

Reading sysfs (and udev's database) needs no privilege, so every lookup here is a plain file read
through the Host.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import re
from collections.abc import Collection

from multipath_brick.host.base import Host
from multipath_brick.scsi.session_numbers import SESSIONS, SessionNumbers

# The daemon checks the WWIDs it lists with the same conversion: it lives below
# the host boundary, in the privileged layer.
from multipath_brick.wwid import multipath_wwid

_HOST_DIR = re.compile(r"host(\d+)$")
_HCTL = re.compile(r"(\d+):(\d+):(\d+):(\d+)$")
_TARGET_DIR = re.compile(r"target(\d+):(\d+):(\d+)")
#: multipathd's names for its maps (the WWID, without user_friendly_names).
MAPPER = "/dev/mapper"
SECTOR = 512
#: udev's database: one file per processed device, ``b<major>:<minor>`` for a disk.
UDEV_DB = "/run/udev/data"
#: systemd-udevd keeps this file while it has events queued or running
#: (``udevadm settle`` waits for it to go).
UDEV_QUEUE = "/run/udev/queue"
#: How a sysfs read says its object is gone: ENOENT, the file (or a directory
#: above it) was removed before the open; ENODEV, kernfs deactivated the node
#: after the lookup or while the file was open (``kernfs_fop_open`` and the
#: read path return it once ``kernfs_get_active`` fails). Any other error (EIO,
#: EACCES...) is a real failure and is raised.
GONE = frozenset({errno.ENOENT, errno.ENODEV})
#: An iSCSI connection's ``address``/``port`` between logins: iscsi_tcp has no
#: socket and answers ENOTCONN. Not set yet, like "(null)".
_NOT_CONNECTED = GONE | {errno.ENOTCONN}
#: A disk's ``device/wwid``: ``scsi_vpd_lun_id`` answers ENXIO when the disk
#: has no device identification VPD page (0x83), EINVAL when the page has no
#: designator it uses. The disk has no WWID; it is not gone.
_NO_WWID = GONE | {errno.ENXIO, errno.EINVAL}
#: A map's ``dm/name`` and ``dm/uuid``: device-mapper answers EINVAL once the
#: map is being removed (``dm_attr_show``: ``dm_get_from_kobject`` refuses a
#: device that is freeing or deleting). Seen in the lab while 8 volumes were
#: attached and detached at once: another volume's map, flushed during our walk.
_MAP_GONE = GONE | {errno.EINVAL}


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """An iSCSI session as sysfs shows it.

    :ivar sid: session number (``sessionN``).
    :ivar host: the SCSI host number the session created.
    :ivar iqn: target name.
    :ivar portal: ``address:port`` normalised like :class:`~.properties.Target`.
    :ivar iface: the iscsiadm iface the session was made through.
    :ivar state: ``LOGGED_IN``, ``FAILED``, ``FREE``...
    """

    sid: int
    host: int
    iqn: str
    portal: str
    iface: str
    state: str

    @property
    def logged_in(self) -> bool:
        return self.state == "LOGGED_IN"


@dataclasses.dataclass(frozen=True)
class ScsiDisk:
    """A SCSI disk of a session: its H:C:T:L and block device name."""

    host: int
    channel: int
    target: int
    lun: int
    device: str


def normalise_portal(address: str, port: str | int) -> str:
    """``address:port`` with IPv6 bracketed and compressed, as properties do."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"{address}:{port}"
    if parsed.version == 6:
        return f"[{parsed.compressed}]:{port}"
    return f"{address}:{port}"


class Sysfs:
    """Read-only views of the kernel's SCSI, iSCSI and device-mapper objects.

    A session's identity (target, portal, iface, SCSI host) is read once and
    kept: the kernel numbers sessions from a counter that only grows, and
    iscsid sets those parameters once, before the session first logs in. Only
    the state is read again. Without this, every look for one session read
    eight files of every session on the host: 32 path tasks looking for their
    sessions among 32 were most of the library's CPU in the lab.
    """

    def __init__(self, host: Host) -> None:
        self._host = host
        self._identities: dict[int, SessionInfo] = {}
        # Every session's target name, kept even while its identity is not
        # complete (a login in progress, or failing for minutes against a dead
        # portal): a lookup visits only the sessions to its own target.
        self._numbers = SessionNumbers(
            host, lambda sid: self._param(f"{SESSIONS}/session{sid}/targetname")
        )

    def _read(self, path: str, absent: frozenset[int] = GONE) -> str | None:
        """A sysfs file's text, or None when its object is gone.

        :param absent: the errno values that mean "not there" for this file.
        :raises OSError: any other failure (an I/O error must not pass for a
            torn-down session or a removed disk).
        """
        try:
            return self._host.read_text(path).strip()
        except OSError as error:
            if error.errno in absent:
                return None
            raise

    def _realpath(self, path: str) -> str | None:
        """A sysfs link resolved, or None when it vanished (a session torn down)."""
        try:
            return self._host.realpath(path)
        except OSError:
            return None

    def sessions(self) -> list[SessionInfo]:
        """Every iSCSI session the kernel has, in session order."""
        self._refresh()
        found = (self._session(sid) for sid in self._numbers.all())
        return [info for info in found if info is not None]

    def sessions_to(self, iqns: Collection[str]) -> list[SessionInfo]:
        """The sessions to these targets, in session order.

        Only a matching session's state and parameters are read: on a host
        with hundreds of sessions, a volume's detach reads its own (another
        volume's session may be going away meanwhile: not ours to read).
        """
        self._refresh()
        found = (self._session(sid) for sid in self._numbers.to(iqns))
        return [info for info in found if info is not None]

    def find_session(
        self, iqn: str, portal: str, iface: str, *, logged_in: bool = False
    ) -> SessionInfo | None:
        """The first session (in session order) to that target through that iface.

        Visits the sessions to that target only; reads the state of a
        matching session only, and the identity of a session only until it is
        known.
        """
        wanted = (iqn, portal, iface)
        self._refresh()
        for sid in self._numbers.to((iqn,)):
            known = self._identities.get(sid)
            if known is not None and (known.iqn, known.portal, known.iface) != wanted:
                continue
            info = self._session(sid)
            if info is None or (info.iqn, info.portal, info.iface) != wanted:
                continue
            if info.logged_in or not logged_in:
                return info
        return None

    def portal_group_tag(self, iqn: str, portal: str) -> int | None:
        """The tpgt a logged-in session to (iqn, portal), through any iface, got
        from the target at login; None without one."""
        for info in self.sessions_to((iqn,)):
            if info.portal == portal and info.logged_in:
                tag = self._param(f"{SESSIONS}/session{info.sid}/tpgt")
                if tag is not None and tag.isdigit():
                    return int(tag)
        return None

    def _refresh(self) -> None:
        """List the sessions there are now; forget the identities of the others."""
        for gone in self._numbers.refresh():
            self._identities.pop(gone, None)

    def _session(self, sid: int) -> SessionInfo | None:
        base = f"{SESSIONS}/session{sid}"
        state = self._read(f"{base}/state")
        known = self._identities.get(sid)
        if state is None:  # torn down
            self._identities.pop(sid, None)
            return None
        if known is not None:
            return dataclasses.replace(known, state=state)
        conn = f"/sys/class/iscsi_connection/connection{sid}:0"
        iqn = self._numbers.iqn(sid)
        address = self._param(f"{conn}/persistent_address") or self._param(f"{conn}/address")
        port = self._param(f"{conn}/persistent_port") or self._param(f"{conn}/port")
        device = self._realpath(f"{base}/device")
        host = _HOST_DIR.search(device.rsplit("/", 1)[0]) if device else None
        if iqn is None or address is None or port is None or host is None:
            return None  # being set up, or torn down while we looked
        iface = self._param(f"{base}/ifacename")
        info = SessionInfo(
            sid=sid,
            host=int(host.group(1)),
            iqn=iqn,
            portal=normalise_portal(address, port),
            iface=iface or "default",
            state=state,
        )
        if info.logged_in:
            # Every parameter is set by now (before, ``address`` may stand in
            # for a ``persistent_address`` not yet set, after a redirect).
            self._identities[sid] = info
        return info

    def _param(self, path: str) -> str | None:
        """An iSCSI parameter; None until iscsid has set it (the kernel shows "(null)")."""
        value = self._read(path, _NOT_CONNECTED)
        return None if not value or value == "(null)" else value

    def _scsi_devices(self, session: SessionInfo) -> list[tuple[str, tuple[int, ...]]]:
        """The session's SCSI devices: (sysfs directory, (H, C, T, L)) each."""
        root = self._realpath(f"{SESSIONS}/session{session.sid}/device")
        if root is None:
            return []  # logged out meanwhile (another volume's detach)
        found = []
        for target_dir in self._host.list_dir(root):
            if target_dir.startswith("target"):
                for hctl in self._host.list_dir(f"{root}/{target_dir}"):
                    if match := _HCTL.match(hctl):
                        address = tuple(int(g) for g in match.groups())
                        found.append((f"{root}/{target_dir}/{hctl}", address))
        return found

    def has_disk_lun(self, session: SessionInfo, lun: int) -> bool:
        """Whether the LUN has a SCSI disk device on the session (block device or not).

        Reads that one LUN's directory, not every LUN of the session: a target
        exporting hundreds of LUNs to this host costs one look, not hundreds.
        """
        directory = self._lun_dir(session, lun)
        return directory is not None and self._is_disk(directory)

    def has_disk_luns(self, session: SessionInfo) -> bool:
        """Whether any LUN still has a SCSI disk device on the session, with or
        without its block device: sd makes that one after the scan returned, in
        its own time."""
        return any(self._is_disk(directory) for directory, _ in self._scsi_devices(session))

    def disk(self, session: SessionInfo, lun: int) -> ScsiDisk | None:
        """The LUN's disk on the session, once sd has made its block device."""
        directory = self._lun_dir(session, lun)
        if directory is None or not (blocks := self._blocks(directory)):
            return None
        h, c, t, _ = (int(g) for g in directory.rsplit("/", 1)[1].split(":"))
        return ScsiDisk(h, c, t, lun, blocks[0])

    def _lun_dir(self, session: SessionInfo, lun: int) -> str | None:
        """The LUN's SCSI device directory, if the kernel has it.

        Software iSCSI gives a session one SCSI host with one target: the
        directory is ``targetH:C:T/H:C:T:L`` under the session's device.
        """
        root = self._realpath(f"{SESSIONS}/session{session.sid}/device")
        if root is None:
            return None  # logged out meanwhile (another volume's detach)
        for target_dir in self._host.list_dir(root):
            if match := _TARGET_DIR.fullmatch(target_dir):
                directory = f"{root}/{target_dir}/{':'.join(match.groups())}:{lun}"
                if self._host.exists(directory):
                    return directory
        return None

    def _blocks(self, directory: str) -> list[str]:
        return self._host.list_dir(f"{directory}/block")

    def _is_disk(self, directory: str) -> bool:
        return self._read(f"{directory}/type") == "0"  # TYPE_DISK

    def scsi_target(self, session: SessionInfo) -> tuple[int, int]:
        """(channel, target id) of the session's SCSI target; (0, 0) before it exists.

        Software iSCSI gives every session its own SCSI host with one target,
        channel 0 id 0, and the kernel may create that target only on scan.
        """
        root = self._host.realpath(f"{SESSIONS}/session{session.sid}/device")
        for name in self._host.list_dir(root):
            match = re.fullmatch(r"target\d+:(\d+):(\d+)", name)
            if match:
                return int(match.group(1)), int(match.group(2))
        return 0, 0

    def wwid(self, device: str) -> str | None:
        """The multipath WWID of a disk, or None when the kernel has none (yet)."""
        raw = self._read(f"/sys/block/{device}/device/wwid", _NO_WWID)
        return multipath_wwid(raw) if raw else None

    def udev_processed(self, device: str) -> bool:
        """Whether udev has finished with a disk's "add" event.

        multipathd takes a disk's WWID from udev's database: asked to add a
        disk udev has not processed, it keeps the disk as a path without WWID
        that only udev's own event can repair. A host without udev (no
        database directory) has nothing to wait for.
        """
        devno = self._read(f"/sys/block/{device}/dev")
        if devno is None:
            return False
        return self._host.exists(f"{UDEV_DB}/b{devno}") or not self._host.exists(UDEV_DB)

    def udev_idle(self) -> bool:
        """Whether udev has no event queued or running (no probe holds a device open)."""
        return not self._host.exists(UDEV_QUEUE)

    def holders(self, device: str) -> list[str]:
        return [
            h for h in self._host.list_dir(f"/sys/block/{device}/holders") if h.startswith("dm-")
        ]

    def slaves(self, dm: str) -> list[str]:
        return self._host.list_dir(f"/sys/block/{dm}/slaves")

    def dm_uuid(self, dm: str) -> str | None:
        return self._read(f"/sys/block/{dm}/dm/uuid", _MAP_GONE)

    def dm_name(self, dm: str) -> str | None:
        return self._read(f"/sys/block/{dm}/dm/name", _MAP_GONE)

    def map_linked(self, dm: str) -> bool:
        """Whether udev has made the map's ``/dev/mapper/<name>`` link (and, in
        the same event, its by-id links): seconds after the map, on a busy host."""
        name = self.dm_name(dm)
        return name is not None and self._realpath(f"{MAPPER}/{name}") == f"/dev/{dm}"

    def map_for_wwid(self, wwid: str) -> str | None:
        """The ``dm-N`` multipath map of a WWID, found by its dm uuid.

        multipathd names a map after its WWID unless ``user_friendly_names`` is
        set: ``/dev/mapper/<wwid>`` then leads straight to it (one link and one
        uuid read). Otherwise, or before the map exists, every dm device's uuid
        is read.
        """
        uuid = f"mpath-{wwid}"
        named = self._realpath(f"{MAPPER}/{wwid}")
        if named is not None and (dm := named.rsplit("/", 1)[1]).startswith("dm-"):
            if self.dm_uuid(dm) == uuid:
                return dm
        for name in self._host.list_dir("/sys/block"):
            if name.startswith("dm-") and self.dm_uuid(name) == uuid:
                return name
        return None

    def size_bytes(self, device: str) -> int | None:
        sectors = self._read(f"/sys/block/{device}/size")
        return int(sectors) * SECTOR if sectors and sectors.isdigit() else None

    def exists(self, device: str) -> bool:
        return self._host.exists(f"/sys/block/{device}")
