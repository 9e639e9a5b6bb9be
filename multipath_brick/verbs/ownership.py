"""Ownership: the daemon touches only iSCSI disks, iSCSI hosts and their maps.

The verbs' own checks (:mod:`.checks`) refuse values that are malformed; these
refuse values that are well formed but name something that is not the
library's: ``ScsiDelete("sda")`` of the boot disk, a flush of an LVM volume or
of the boot disk's multipath map, a scan of a SATA controller, the listing
of a WWID no iSCSI disk carries. What is the library's is what sysfs shows
under an iSCSI session, and only the kernel writes sysfs::

    /sys/block/sdX/device                 -> .../hostH/sessionN/targetH:C:T/H:C:T:L
    /sys/class/scsi_device/H:C:T:L/device -> (the same H:C:T:L directory)
    /sys/class/iscsi_session/sessionN     -> .../hostH/sessionN/iscsi_session/sessionN
    /sys/class/iscsi_host/hostH           -> .../hostH/iscsi_host/hostH
    /sys/block/dm-N/dm/uuid               mpath-<WWID>   (a multipath map)
    /sys/block/dm-N/slaves/sdX            (each an iSCSI disk as above)

(``...`` is ``/sys/devices/platform`` for software iSCSI.) Every check takes
``root`` (``/`` in the daemon; a FakeHost's tree in tests) and either returns
what it checked, raises :class:`~multipath_brick.exception.NotOwnedError` (or
:class:`~multipath_brick.exception.InvalidArgument` for a device number), or
raises :class:`FileNotFoundError` when the thing named does not exist (any
more): the verb would then act on nothing, and the daemon answers as the tool
or the kernel would, without acting.

Races. A check reads sysfs, then the verb acts: a window. For sysfs writes it
is closed: the daemon writes to the attribute *in the directory it checked*
(``.../sessionN/targetH:C:T/H:C:T:L/delete``, not ``/sys/block/sdX/device/delete``).
The kernel never reuses a session number (a counter that only grows), so that
path can only ever name a LUN of that iSCSI session; if the disk went, the
write fails with ENOENT. For a scan the path names the SCSI host
(``/sys/devices/platform/hostH/scsi_host/hostH/scan``), whose number the kernel
does reuse: the host would have to be logged out and another host with no
parent device take its number in between, which no daemon verb can make. For
multipath and multipathd, which take names, the window stays: the checked disk
or map would have to go and a foreign one take its name in between. Making a
disk or map appear takes root outside the daemon (every verb that can create a
disk or map needs an iSCSI host or WWID), and an attacker with root needs no
daemon. The check guards against a compromised *caller*, who can only pass
names.
"""

from __future__ import annotations

import errno
import re

from multipath_brick import verbs
from multipath_brick.exception import InvalidArgument, NotOwnedError
from multipath_brick.verbs import rooted
from multipath_brick.wwid import multipath_wwid

__all__ = [
    "UNCHECKED",
    "attribute",
    "check_command",
    "iscsi_disk",
    "iscsi_host",
    "iscsi_lun",
    "iscsi_wwid",
    "multipath_map",
    "removable_wwid",
]

# A SCSI device directory under an iSCSI session. The host number repeats in
# the target and the device name; software iSCSI (iscsi_tcp, iser) hangs the
# host under /sys/devices/platform, offload drivers under their PCI function.
_SESSION_LUN = re.compile(
    r"(?P<session>/sys/devices/(?:[^/]+/)*host(?P<h>\d+)/session(?P<sid>\d+))"
    r"/target(?P=h):(?P<c>\d+):(?P<t>\d+)/(?P=h):(?P=c):(?P=t):(?P<l>\d+)"
)
_DEVICE_NUMBER = re.compile(r"\d+:\d+")
_DM = re.compile(r"dm-\d+")

#: Verbs that need no ownership check: iscsiadm's (node records and sessions
#: are named by the target, not by a local device) and multipathd's read-only
#: questions. Any other verb without a rule here is refused, so a new verb
#: cannot skip its check by being forgotten.
UNCHECKED: frozenset[type[verbs.Verb]] = frozenset(
    {
        verbs.NodeNew,
        verbs.NodeDelete,
        verbs.NodeShow,
        verbs.NodeLogin,
        verbs.NodeLogout,
        verbs.NodeUpdate,
        verbs.NodeList,
        verbs.SessionList,
        verbs.DiscoveryNew,
        verbs.DiscoveryDelete,
        verbs.DiscoveryRun,
        verbs.DiscoveryUpdate,
        # Record writes touch open-iscsi's own files, found from the checked target
        # name, portal and iface only (nodedb.py); never a local device.
        verbs.NodeWrite,
        verbs.NodeRead,
        verbs.DiscoverySetSecrets,
        verbs.MultipathdShowDaemon,
        verbs.MultipathdShowPaths,
        verbs.MultipathdShowMap,
        # iface records: ownership is the name itself; the verbs that change one
        # accept only this library's mpb-<netdev> names (checks.check_our_iface).
        verbs.IfaceNew,
        verbs.IfaceUpdate,
        verbs.IfaceDelete,
        verbs.IfaceShow,
        verbs.IfaceList,
        verbs.UnlinkEncrypted,  # only os-brick's link named after the device
    }
)


# --- the checks -------------------------------------------------------------------------


def _under_session(root: str, field: str, what: str, link: str, found: str) -> str:
    """``found`` (a SCSI device directory) if it hangs under an iSCSI session."""
    match = _SESSION_LUN.fullmatch(found)
    if match is None:
        raise NotOwnedError(field, f"{what} is not under an iSCSI session: {link} is {found}")
    sid = match["sid"]
    try:
        session = rooted.resolve(root, f"/sys/class/iscsi_session/session{sid}")
    except FileNotFoundError:
        session = None
    if session != f"{match['session']}/iscsi_session/session{sid}":
        # A directory named sessionN that the iSCSI transport class does not know.
        raise NotOwnedError(
            field, f"{what} is under session{sid}, which is not an iSCSI session: {found}"
        )
    return found


def iscsi_disk(device: str, *, root: str = "/") -> str:
    """The SCSI device directory of an iSCSI disk.

    :param device: ``sdX``.
    :param root: the directory standing for ``/``.
    :returns: e.g. ``/sys/devices/platform/host6/session1/target6:0:0/6:0:0:1``.
    :raises FileNotFoundError: there is no such disk.
    :raises NotOwnedError: the disk is not under an iSCSI session.
    """
    verbs.check_device(device)
    block = rooted.resolve(root, f"/sys/block/{device}")
    link = f"/sys/block/{device}/device"
    try:
        found = rooted.resolve(root, link)
    except FileNotFoundError:
        raise NotOwnedError("device", f"{device} is not a SCSI disk: no {link}") from None
    if block != f"{found}/block/{device}":
        raise NotOwnedError("device", f"{device} is not the block device of {found}: {block}")
    return _under_session(root, "device", device, link, found)


def iscsi_lun(host: int, channel: int, target: int, lun: int, *, root: str = "/") -> str:
    """The SCSI device directory of an H:C:T:L under an iSCSI session.

    :returns: e.g. ``/sys/devices/platform/host6/session1/target6:0:0/6:0:0:1``.
    :raises FileNotFoundError: there is no SCSI device at that address.
    :raises NotOwnedError: the device is not under an iSCSI session.
    """
    for field, value in (("host", host), ("channel", channel), ("target", target), ("lun", lun)):
        verbs.check_int(field, value)
    hctl = f"{host}:{channel}:{target}:{lun}"
    link = f"/sys/class/scsi_device/{hctl}/device"
    found = rooted.resolve(root, link)
    if found.rsplit("/", 1)[-1] != hctl:
        raise NotOwnedError("host", f"{link} is {found}, not the device {hctl}")
    return _under_session(root, "host", hctl, link, found)


def iscsi_host(host: int, *, root: str = "/") -> str:
    """The ``scsi_host`` directory of an iSCSI host (where its ``scan`` is).

    :returns: e.g. ``/sys/devices/platform/host6/scsi_host/host6``.
    :raises FileNotFoundError: there is no such SCSI host.
    :raises NotOwnedError: the SCSI host is not an iSCSI host.
    """
    verbs.check_int("host", host)
    scsi_host = rooted.resolve(root, f"/sys/class/scsi_host/host{host}")
    parent = scsi_host.removesuffix(f"/scsi_host/host{host}")
    try:
        iscsi = rooted.resolve(root, f"/sys/class/iscsi_host/host{host}")
    except FileNotFoundError:
        iscsi = None
    if parent == scsi_host or iscsi != f"{parent}/iscsi_host/host{host}":
        driver = rooted.read(root, f"{scsi_host}/proc_name") or "unknown"
        raise NotOwnedError(
            "host", f"host{host} is not an iSCSI host: driver {driver}, {scsi_host}"
        )
    return scsi_host


def _maps_named(root: str, map_name: str) -> list[str]:
    """The ``dm-N`` devices ``map_name`` may mean: itself, and the map so named.

    Device-mapper names are unique: ``/dev/mapper/<name>``, once its target's
    own ``dm/name`` agrees, is the one map of that name, found without reading
    every map's name. Without that link (udev behind, or a name that is a
    ``dm-N``), every map's name is read.
    """
    itself = (
        [map_name]
        if _DM.fullmatch(map_name) and rooted.read(root, f"/sys/block/{map_name}/dev")
        else []
    )
    try:
        linked = rooted.resolve(root, f"/dev/mapper/{map_name}").rsplit("/", 1)[-1]
    except FileNotFoundError:
        linked = ""
    if _DM.fullmatch(linked) and rooted.read(root, f"/sys/block/{linked}/dm/name") == map_name:
        return sorted({*itself, linked})
    return [
        dm
        for dm in rooted.listing(root, "/sys/block")
        if _DM.fullmatch(dm)
        and (dm == map_name or rooted.read(root, f"/sys/block/{dm}/dm/name") == map_name)
    ]


def multipath_map(map_name: str, *, root: str = "/", empty_ok: bool = False) -> list[str]:
    """The ``dm-N`` a map name may mean, checked: a multipath map over iSCSI disks.

    ``map_name`` is what multipath and multipathd are given: the map's name
    (its WWID, or ``mpathX`` with friendly names) or its kernel name ``dm-N``
    (multipathd reads ``dm-N`` as a minor number, multipath as a name). Every
    map it may mean is checked, so both readings are covered.

    :param empty_ok: accept a map with no slave left (see :func:`check_command`).
    :returns: the ``dm-N`` names checked.
    :raises InvalidArgument: ``map_name`` is a device number (``8:0``): multipath
        would act on whatever device has that number.
    :raises FileNotFoundError: no map has that name.
    :raises NotOwnedError: a map of that name is not a multipath map, has no
        slave (unless ``empty_ok``) or a slave that is not an iSCSI disk.
    """
    verbs.check_name("map_name", map_name)
    if _DEVICE_NUMBER.fullmatch(map_name):
        raise InvalidArgument("map_name", f"a device number, not a map name: {map_name!r}")
    maps = _maps_named(root, map_name)
    if not maps:
        raise FileNotFoundError(errno.ENOENT, f"no device-mapper map {map_name}")
    for dm in maps:
        shown = map_name if map_name == dm else f"{map_name} ({dm})"
        uuid = rooted.read(root, f"/sys/block/{dm}/dm/uuid") or ""
        if not uuid.startswith("mpath-"):
            raise NotOwnedError("map_name", f"{shown} is not a multipath map: dm uuid {uuid!r}")
        slaves = rooted.listing(root, f"/sys/block/{dm}/slaves")
        if not slaves and not empty_ok:
            raise NotOwnedError("map_name", f"{shown} has no path")
        for slave in slaves:
            try:
                iscsi_disk(slave, root=root)
            except FileNotFoundError:
                continue  # being removed: no longer a slave to protect
            except InvalidArgument as error:
                raise NotOwnedError(
                    "map_name", f"{shown} has a path that is not an iSCSI disk: {error.reason}"
                ) from None
    return maps


def iscsi_wwid(wwid: str, device: str, *, root: str = "/") -> str:
    """The SCSI device directory of ``device``, an iSCSI disk that carries ``wwid``.

    Only the named disk is read, never every session's: the check of an attach
    costs the same on a host with a thousand volumes as on an empty one.

    :param wwid: as multipathd spells it (:func:`multipath_wwid`).
    :raises InvalidArgument: ``wwid`` is a device number (``multipath -a 8:0``
        would record the WWID of that device).
    :raises FileNotFoundError: there is no such disk.
    :raises NotOwnedError: the disk is not under an iSCSI session, or carries
        another WWID.
    """
    verbs.check_name("wwid", wwid)
    if _DEVICE_NUMBER.fullmatch(wwid):
        raise InvalidArgument("wwid", f"a device number, not a WWID: {wwid!r}")
    found = iscsi_disk(device, root=root)
    raw = rooted.read(root, f"{found}/wwid")
    carried = multipath_wwid(raw) if raw else "no WWID"
    if carried != wwid:
        raise NotOwnedError("wwid", f"{device} carries {carried}, not WWID {wwid}")
    return found


def removable_wwid(wwid: str, *, root: str = "/") -> None:
    """Check that no foreign device carries ``wwid``, before it leaves
    /etc/multipath/wwids (``multipath -w``).

    With ``find_multipaths strict`` multipathd maps only listed WWIDs: removing
    the WWID of a multipathed local disk would leave that disk unmapped at the
    next boot. A WWID no present disk carries (a volume just detached) may go.

    :raises InvalidArgument: ``wwid`` is a device number.
    :raises NotOwnedError: a disk that is not under an iSCSI session carries
        it, or a multipath map of that WWID has a path that is not an iSCSI disk.
    """
    verbs.check_name("wwid", wwid)
    if _DEVICE_NUMBER.fullmatch(wwid):
        raise InvalidArgument("wwid", f"a device number, not a WWID: {wwid!r}")
    for name in rooted.listing(root, "/sys/block"):
        if _DM.fullmatch(name):
            if rooted.read(root, f"/sys/block/{name}/dm/uuid") == f"mpath-{wwid}":
                try:
                    multipath_map(name, root=root, empty_ok=True)
                except NotOwnedError as error:
                    raise NotOwnedError("wwid", f"a foreign map has it: {error.reason}") from None
            continue
        raw = rooted.read(root, f"/sys/block/{name}/device/wwid")
        if raw and multipath_wwid(raw) == wwid:
            try:
                iscsi_disk(name, root=root)
            except FileNotFoundError:
                continue  # removed meanwhile
            except InvalidArgument as error:
                raise NotOwnedError("wwid", f"a foreign disk carries it: {error.reason}") from None


# --- by verb ----------------------------------------------------------------------------


def check_command(command: verbs.Command | verbs.RecordVerb, *, root: str = "/") -> str | None:
    """Check what a command (or an edit of the WWID file) would touch, before it runs.

    A flush accepts a multipath map whose paths are all gone: no path means
    it is no longer anyone's disk, ``multipath -f`` refuses a map that is open,
    and the library must be able to remove such a leftover (a detach
    interrupted after the paths went). A resize needs a path to take the size
    from.

    :returns: None when the command may run; when what it names does not exist,
        the error to answer instead (exit status 1, as the tools answer).
    :raises NotOwnedError: it names something that is not the library's, or
        it is a verb with no rule here and not in :data:`UNCHECKED`.
    :raises InvalidArgument: it names a device number.
    """
    try:
        if isinstance(command, (verbs.MultipathdAddPath, verbs.MultipathdDelPath)):
            iscsi_disk(command.device, root=root)
        elif isinstance(command, (verbs.MultipathFlush, verbs.MultipathdDelMap)):
            multipath_map(command.map_name, root=root, empty_ok=True)
        elif isinstance(command, verbs.MultipathdResizeMap):
            multipath_map(command.map_name, root=root)
        elif isinstance(command, verbs.MultipathAddWwid):
            iscsi_wwid(command.wwid, command.device, root=root)
        elif isinstance(command, verbs.MultipathRemoveWwid):
            removable_wwid(command.wwid, root=root)
        elif isinstance(command, (verbs.ReadBlock, verbs.LinkEncrypted)):
            dm = command.device.startswith("dm-")
            multipath_map(command.device, root=root) if dm else iscsi_disk(
                command.device, root=root
            )
        elif type(command) not in UNCHECKED:
            raise NotOwnedError("command", f"{type(command).__name__} has no ownership rule")
    except FileNotFoundError as gone:
        return f"{gone.strerror}: not run\n"
    return None


def attribute(write: verbs.SysfsWrite, *, root: str = "/") -> str:
    """The attribute a sysfs write may go to, in the directory that was checked.

    :returns: e.g. ``/sys/devices/platform/host6/session1/target6:0:0/6:0:0:1/delete``
        for ``ScsiDelete("sda")``: the same attribute as the verb's own path,
        with the links resolved (see the module docstring on races).
    :raises FileNotFoundError: the disk, LUN or host does not exist.
    :raises NotOwnedError: it is not an iSCSI one, or the verb has no rule.
    """
    leaf = write.path().rsplit("/", 1)[-1]
    if isinstance(write, (verbs.ScsiDelete, verbs.ScsiRescan)):
        return f"{iscsi_disk(write.device, root=root)}/{leaf}"
    if isinstance(write, verbs.ScsiRemoveLun):
        found = iscsi_lun(write.host, write.channel, write.target, write.lun, root=root)
        return f"{found}/{leaf}"
    if isinstance(write, verbs.ScsiScan):
        return f"{iscsi_host(write.host, root=root)}/{leaf}"
    raise NotOwnedError("path", f"{type(write).__name__} has no ownership rule")
