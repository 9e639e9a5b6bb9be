"""multipath/multipathd verbs, edits of multipath's WWID file and SCSI sysfs writes."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from multipath_brick.verbs.base import Command, RecordVerb, SysfsWrite
from multipath_brick.verbs.checks import check_device, check_int, check_name

# --- multipath / multipathd ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MultipathdShowDaemon(Command):
    entrypoint = "multipathd_show_daemon"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "show", "daemon")


@dataclasses.dataclass(frozen=True)
class MultipathdShowPaths(Command):
    """Path states, one line each: ``device wwid map dm-state checker-state``.

    The map is ``[orphan]`` for a path in no map. The checker state comes last
    because it may hold a space (``i/o pending``).
    """

    entrypoint = "multipathd_show_paths"
    FORMAT: ClassVar[str] = "%d %w %m %t %T"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "show", "paths", "raw", "format", self.FORMAT)


@dataclasses.dataclass(frozen=True)
class _DeviceVerb(Command):
    device: str

    def __post_init__(self) -> None:
        check_device(self.device)


@dataclasses.dataclass(frozen=True)
class MultipathdAddPath(_DeviceVerb):
    entrypoint = "multipathd_add_path"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "add", "path", f"/dev/{self.device}")


@dataclasses.dataclass(frozen=True)
class MultipathdDelPath(_DeviceVerb):
    entrypoint = "multipathd_del_path"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "del", "path", f"/dev/{self.device}")


@dataclasses.dataclass(frozen=True)
class _WwidVerb(RecordVerb):
    """An edit of multipath's WWID file, done by the daemon itself
    (:mod:`multipath_brick.privileged.wwids_file`): what ``multipath -a``/``-w``
    do to the file, without the program's look at every block device."""

    wwid: str

    def __post_init__(self) -> None:
        check_name("wwid", self.wwid)


@dataclasses.dataclass(frozen=True)
class MultipathAddWwid(_WwidVerb):
    """Record the WWID of an iSCSI disk in /etc/multipath/wwids, so multipathd
    maps it even with ``find_multipaths strict`` or before a second path shows up.

    ``device`` is the disk that carries it: the daemon checks that one disk
    (:func:`~multipath_brick.verbs.ownership.iscsi_wwid`), so the check costs
    the same however many disks the host has.
    """

    device: str
    entrypoint = "multipath_add_wwid"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_device(self.device)

    def display(self) -> tuple[str, ...]:
        return ("write-wwids", "add", self.wwid, self.device)


@dataclasses.dataclass(frozen=True)
class MultipathRemoveWwid(_WwidVerb):
    """Remove the WWID from /etc/multipath/wwids (as ``multipath -w``), once its
    map is gone: otherwise multipathd would map the LUN again as soon as any
    disk of it appears, even one made by another host tool."""

    entrypoint = "multipath_remove_wwid"

    def display(self) -> tuple[str, ...]:
        return ("write-wwids", "remove", self.wwid)


@dataclasses.dataclass(frozen=True)
class _MapVerb(Command):
    map_name: str

    def __post_init__(self) -> None:
        check_name("map_name", self.map_name)


@dataclasses.dataclass(frozen=True)
class MultipathFlush(_MapVerb):
    entrypoint = "multipath_flush"

    def argv(self) -> tuple[str, ...]:
        return ("multipath", "-f", self.map_name)


@dataclasses.dataclass(frozen=True)
class MultipathdDelMap(_MapVerb):
    """Have multipathd drop a map and remove it: what os-brick's forced detach
    does once it removed the paths of a map it could not flush."""

    entrypoint = "multipathd_del_map"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "del", "map", self.map_name)


@dataclasses.dataclass(frozen=True)
class MultipathdShowMap(_MapVerb):
    """One map and its paths, as JSON: ``multipathd show map <map> json``.

    ``map_name`` is the map's name or its ``dm-N`` (multipathd's
    ``find_mp_by_str``). multipathd refreshes that one map's table and status
    from device-mapper, then prints it; its cost does not grow with the
    host's other maps and paths, as ``show paths`` does (a line per path of
    the host). A map it does not have: ``fail``, exit 1.
    """

    entrypoint = "multipathd_show_map"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "show", "map", self.map_name, "json")


@dataclasses.dataclass(frozen=True)
class MultipathdResizeMap(_MapVerb):
    entrypoint = "multipathd_resize_map"

    def argv(self) -> tuple[str, ...]:
        return ("multipathd", "resize", "map", self.map_name)


# --- sysfs writes ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _HctlWrite(SysfsWrite):
    """A write about one SCSI address, H:C:T:L."""

    host: int
    channel: int
    target: int
    lun: int

    def __post_init__(self) -> None:
        check_int("host", self.host, 2**31)
        check_int("channel", self.channel, 2**31)
        check_int("target", self.target, 2**31)
        check_int("lun", self.lun)


@dataclasses.dataclass(frozen=True)
class ScsiScan(_HctlWrite):
    """Scan one H:C:T:L; sessions use ``node.session.scan=manual`` so nothing else appears."""

    entrypoint = "scsi_scan"

    def path(self) -> str:
        return f"/sys/class/scsi_host/host{self.host}/scan"

    def value(self) -> str:
        return f"{self.channel} {self.target} {self.lun}"


@dataclasses.dataclass(frozen=True)
class ScsiRemoveLun(_HctlWrite):
    """Remove the SCSI device at H:C:T:L, which may have no block device (yet)."""

    entrypoint = "scsi_remove_lun"

    def path(self) -> str:
        hctl = f"{self.host}:{self.channel}:{self.target}:{self.lun}"
        return f"/sys/class/scsi_device/{hctl}/device/delete"

    def value(self) -> str:
        return "1"


@dataclasses.dataclass(frozen=True)
class _ScsiDeviceWrite(SysfsWrite):
    device: str

    def __post_init__(self) -> None:
        check_device(self.device)


@dataclasses.dataclass(frozen=True)
class ScsiDelete(_ScsiDeviceWrite):
    entrypoint = "scsi_delete"

    def path(self) -> str:
        return f"/sys/block/{self.device}/device/delete"

    def value(self) -> str:
        return "1"


@dataclasses.dataclass(frozen=True)
class ScsiRescan(_ScsiDeviceWrite):
    entrypoint = "scsi_rescan"

    def path(self) -> str:
        return f"/sys/block/{self.device}/device/rescan"

    def value(self) -> str:
        return "1"


#: Every verb, by entrypoint name (the privileged module has one function each).
