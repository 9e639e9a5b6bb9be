"""The simulated host's state: targets, node records, sessions, disks and maps.

Everything here is plain data guarded by :attr:`SimState.lock`; the simulators
(:mod:`.iscsi_sim`, :mod:`.scsi_sim`, :mod:`.multipath_sim`) change it and
:mod:`.sysfs_tree` mirrors it as files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable

from multipath_brick.testing.sysfs_tree import SysfsTree
from multipath_brick.testing.tables import LowestFree, Table

#: ``iscsiadm`` exit codes used by the fake (open-iscsi ``include/iscsi_err.h``).
ERR_SESS_NOT_FOUND = 2
ERR_TRANS = 4
ERR_IDBM = 6
ERR_TRANS_TIMEOUT = 8
ERR_PDU_TIMEOUT = 11
ERR_SESS_EXISTS = 15
ERR_FATAL_LOGIN = 19
ERR_NO_OBJS_FOUND = 21
ERR_SYSFS_LOOKUP = 22
ERR_LOGIN_AUTH_FAILED = 24

#: open-iscsi's ``iscsi_err_msgs``, for "initiator reported error (N - text)".
ERR_TEXT = {
    ERR_SESS_NOT_FOUND: "session not found",
    ERR_TRANS: "encountered connection failure",
    ERR_IDBM: "encountered iSCSI database failure",
    ERR_TRANS_TIMEOUT: "connection timed out",
    ERR_PDU_TIMEOUT: "iSCSI PDU timed out",
    ERR_SESS_EXISTS: "session exists",
    ERR_FATAL_LOGIN: "encountered non-retryable iSCSI login failure",
    ERR_NO_OBJS_FOUND: "no objects found",
    ERR_LOGIN_AUTH_FAILED: "iSCSI login failed due to authorization failure",
}

INITIATOR = "iqn.2004-10.com.example:fakehost"
#: systemd-udevd's flag file: present while it has events to process.
UDEV_QUEUE = "/run/udev/queue"
Credentials = tuple[str, str]


def split_portal(portal: str) -> tuple[str, int]:
    """``10.0.0.1:3260`` -> ``("10.0.0.1", 3260)``; ``[fe80::1]:3260`` -> ``("fe80::1", 3260)``."""
    host, _, port = portal.rpartition(":")
    return host.strip("[]"), int(port)


def normalise_portal(portal: str) -> str:
    """Add the default port 3260 to a bare address, bracket a bare IPv6 address."""
    if portal.startswith("[") and portal.endswith("]"):
        return f"{portal}:3260"
    if portal.count(":") > 1 and not portal.startswith("["):
        return f"[{portal}]:3260"
    if ":" not in portal:
        return f"{portal}:3260"
    return portal


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a command printed and how it exited."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""


@dataclasses.dataclass
class Plan:
    """A command decided under the lock: it lasts ``duration`` simulated seconds,
    then ``commit`` (run under the lock again) applies its effect.

    ``on_kill(remaining)`` runs instead of ``commit`` when the caller's timeout
    kills the command first; daemons (iscsid, the kernel) may still finish the
    work in the background, as they do on a real host.
    """

    duration: float
    commit: Callable[[], Outcome]
    on_kill: Callable[[float], None] | None = None


def done(outcome: Outcome) -> Plan:
    """A plan that takes no time."""
    return Plan(0.0, lambda: outcome)


@dataclasses.dataclass(eq=False)
class NodeDbScan:
    """An iscsiadm command listing the node database, as a login does to find its record.

    iscsiadm lists the target and portal directories without the database lock;
    a directory removed between its listing and its opening is an error the
    command remembers (``vanished``) while it goes on with the records it found.
    """

    vanished: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FakeTarget:
    """An iSCSI target served by the fake host's storage.

    :ivar iqn: the target name.
    :ivar portals: where it listens, as ``ip:port`` (IPv6 ``[addr]:port``).
    :ivar luns: LUN number -> size in bytes (change it with
        :meth:`FakeHost.resize_lun`, which keeps disks stale until a rescan).
    :ivar chap: ``(username, password)`` the initiator must present, or None.
    :ivar mutual_chap: ``(username_in, password_in)`` the target answers with.
    :ivar discovery_chap: ``(username, password)`` required by sendtargets.
    :ivar tpgt: the target portal group tag.
    """

    iqn: str
    portals: tuple[str, ...]
    luns: dict[int, int]
    chap: Credentials | None = dataclasses.field(default=None, repr=False)
    mutual_chap: Credentials | None = dataclasses.field(default=None, repr=False)
    discovery_chap: Credentials | None = dataclasses.field(default=None, repr=False)
    tpgt: int = 1

    def _serial(self, lun: int) -> str:
        # LIO's NAA 6 identifiers: OUI 001405 then 25 hex digits of serial.
        digest = hashlib.sha256(f"{self.iqn}/{lun}".encode()).hexdigest()
        return "6001405" + digest[:25]

    def wwid(self, lun: int) -> str:
        """The multipath WWID of a LUN (``36001405...``), also its map name.

        :param lun: the LUN number.
        """
        return "3" + self._serial(lun)

    def scsi_wwid(self, lun: int) -> str:
        """What ``/sys/block/sdX/device/wwid`` holds for the LUN (``naa.6001405...``).

        :param lun: the LUN number.
        """
        return "naa." + self._serial(lun)


@dataclasses.dataclass
class Session:
    """One logged-in iSCSI session (one scsi host of its own)."""

    sid: int
    host: int
    iqn: str
    portal: str
    iface: str
    tpgt: int
    recovery_tmo: float = 120.0

    @property
    def key(self) -> tuple[str, str, str]:
        """(portal, iqn, iface), the node record it was logged in with."""
        return (self.portal, self.iqn, self.iface)

    @property
    def address(self) -> str:
        """The portal's address, without IPv6 brackets."""
        return split_portal(self.portal)[0]

    @property
    def port(self) -> int:
        """The portal's TCP port."""
        return split_portal(self.portal)[1]


@dataclasses.dataclass(eq=False)
class Disk:
    """A SCSI disk (sdX) on a session."""

    name: str
    index: int
    session: Session
    lun: int
    scsi_wwid: str
    wwid: str
    size: int
    #: sd has probed the disk: its block device exists.
    probed: bool = False
    #: udev has processed the disk (multipathd reads the WWID from udev's database).
    udev_done: bool = False

    @property
    def hctl(self) -> str:
        """``H:C:T:L`` (channel and target id are always 0 for iSCSI)."""
        return f"{self.session.host}:0:0:{self.lun}"


@dataclasses.dataclass(eq=False)
class MapState:
    """A multipath map (dm-N)."""

    name: str
    dm: int
    wwid: str
    created: float
    slaves: list[str] = dataclasses.field(default_factory=list)
    size: int = 0
    #: When its table last changed (created, or reloaded with more paths): udev
    #: probes it again after each change.
    changed: float = 0.0


class SimState:
    """All mutable state of one fake host, and the lock around it."""

    def __init__(self, tree: SysfsTree, time_scale: float) -> None:
        self.lock = threading.RLock()
        self.tree = tree
        self.time_scale = time_scale
        self.closed = False
        self.timers: list[threading.Timer] = []
        # what the controls set
        self.targets: dict[str, FakeTarget] = {}
        self.latency: dict[str, float] = {}
        self.unreachable: set[str] = set()
        self.udev_delay = 0.0
        self.sd_probe_delay = 0.0
        self.sd_probe_delay_by_portal: dict[str, float] = {}
        self.udev_delay_by_portal: dict[str, float] = {}
        self.map_ready_delay = 0.0
        self.map_probe_hold = 0.0
        self.new_map_udev_wait = 0.0
        self.flush_fail_all = False
        self.flush_delay = 0.0
        self.flush_removes_first = True
        self.flush_fail: set[str] = set()
        self.wwids_edit_delay = 0.0
        self.multipathd_running = True
        self.discovery_answers: dict[str, list[tuple[str, str]]] = {}
        self.scan_hang = 0.0
        self.node_db_scan = 0.0
        # iscsid
        self.nodes: Table[tuple[str, str, str], dict[str, str]] = Table(
            target=lambda key, _: key[:2]
        )
        self.discovery: dict[str, dict[str, str]] = {}
        self.sessions: Table[int, Session] = Table(
            key=lambda _, s: s.key, host=lambda _, s: s.host
        )
        self.next_sid = 1
        # Hosts 0 and 1 stand for local controllers, so sid != host number
        # (code that confuses them fails here as it would on a real host).
        self.next_host = 2
        self.logins_in_flight = 0
        self.node_db_scans: list[NodeDbScan] = []
        self.max_logins_in_flight = 0
        # kernel
        self.disks: Table[str, Disk] = Table(
            session=lambda _, d: d.session.sid, hctl=lambda _, d: (d.session.host, d.lun)
        )
        self.sd_indexes = LowestFree()
        #: Disks that are not iSCSI's (:mod:`.local_devices`), by name: they
        #: take sd names too.
        self.local_disks: dict[str, int] = {}
        # multipathd
        self.maps: Table[str, MapState] = Table(kernel_name=lambda _, m: f"dm-{m.dm}")
        #: The map each disk is a slave of (sysfs's ``holders``), by disk name.
        self.holders: dict[str, MapState] = {}
        self.next_dm = 0
        self.wwids: list[str] = []
        #: multipathd's paths: disk name -> its map's name, None for an orphan.
        self.mp_paths: Table[str, str | None] = Table(orphan=self._orphan_wwid)
        # udev: events queued or being processed (/run/udev/queue while any)
        self.udev_events = 0

    def _orphan_wwid(self, name: str, map_name: str | None) -> str | None:
        disk = self.disks.get(name)
        return disk.wwid if disk is not None and map_name is None else None

    def free_disk_index(self) -> int:
        """The index of the next sd name: the kernel gives the lowest free one."""
        return self.sd_indexes.peek()

    def add_disk(self, disk: Disk) -> None:
        """A disk the kernel made: its name and sd index are taken."""
        self.disks[disk.name] = disk
        self.sd_indexes.use(disk.index)

    def drop_disk(self, disk: Disk) -> None:
        """A disk the kernel removed: its name and sd index are free again."""
        del self.disks[disk.name]
        self.sd_indexes.free(disk.index)

    def disks_of(self, session: Session) -> list[Disk]:
        """The session's disks, in the order the kernel made them."""
        return self.disks.under("session", session.sid)

    def disk_at(self, host: int, lun: int) -> Disk | None:
        """The disk at ``H:0:0:L``, if any."""
        return self.disks.first_under("hctl", (host, lun))

    def session_on_host(self, host: int) -> Session | None:
        """The session of a scsi host number, if it is an iSCSI host."""
        return self.sessions.first_under("host", host)

    def add_slave(self, m: MapState, name: str) -> None:
        """A disk joins a map's table."""
        m.slaves.append(name)
        self.holders[name] = m

    def remove_slave(self, m: MapState, name: str) -> None:
        """A disk leaves a map's table."""
        m.slaves.remove(name)
        if self.holders.get(name) is m:
            del self.holders[name]

    def portal_up(self, portal: str) -> bool:
        """Whether packets reach the portal."""
        return portal not in self.unreachable and any(
            portal in t.portals for t in self.targets.values()
        )

    def session_for(self, key: tuple[str, str, str]) -> Session | None:
        """The session of a (portal, iqn, iface), if logged in."""
        return self.sessions.first_under("key", key)

    def udev_event(self, seconds: float, action: Callable[[], object]) -> None:
        """Queue a udev event that takes ``seconds`` and then runs ``action``.

        While any event is queued or running, ``/run/udev/queue`` exists, as
        systemd-udevd keeps it (``udevadm settle`` waits for it to go).
        """
        self.udev_events += 1
        if self.udev_events == 1:
            self.tree.write_file(UDEV_QUEUE, "")

        def processed() -> None:
            self.udev_events -= 1
            if self.udev_events == 0:
                self.tree.remove(UDEV_QUEUE)
            action()

        self.later(seconds, processed)

    def later(self, seconds: float, action: Callable[[], object]) -> None:
        """Run ``action`` under the lock after ``seconds`` simulated seconds.

        With no delay it runs now (the caller holds the lock already).
        """
        if seconds <= 0:
            action()
            return

        def fire() -> None:
            with self.lock:
                if not self.closed:
                    action()

        timer = threading.Timer(seconds * self.time_scale, fire)
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()]
        self.timers.append(timer)
        timer.start()

    @staticmethod
    def now() -> float:
        """Real monotonic time (only simulated durations are scaled)."""
        return time.monotonic()
