"""The errors multipath-brick raises: one tree, one root.

::

    MultipathBrickError                 (os_brick.exception.BrickException)
     +-- InvalidConnectionProperties    (ValueError) a connection dict we refuse
     +-- InvalidArgument                (ValueError) a privileged verb's bad argument
     |    +-- NotOwnedError             ... naming a disk, host or map that is not iSCSI's
     +-- CommandError                   a command exited non-zero
     |    +-- CommandTimeout            ... or did not exit in time
     +-- DiscoveryError                 (os_brick TargetPortalNotFound)
     +-- NoUsablePathError              (os_brick VolumeDeviceNotFound) every path failed
     |    +-- AuthenticationError       ... and every failure was a CHAP rejection
     +-- DeviceNotReadyTimeout          (os_brick VolumeDeviceNotFound) map never usable
     +-- AttachError                    (os_brick VolumeDeviceNotFound) attach failed otherwise
     +-- InvalidSettings                (ValueError) a bad AttachSettings value
     +-- MultipathUnavailableError      multipathd is not answering
     +-- FlushError                     a map could not be flushed (detach stops)
     +-- DetachError                    one or more detach steps failed (force=True)
     +-- VolumePathsError               (os_brick VolumePathsNotFound)
     +-- LockPathError                  the lock directory is unset or unsafe
     +-- LockTimeout                    a lock was not free in time
     +-- OsBrickMapsError               os-brick's factory maps are not the ones we know
     +-- UnsupportedTransportError      (ValueError) an iface/transport we do not attach through
     +-- BondError                      the iSCSI bond model refused something
     |    +-- BondValueError            (ValueError) a field of a bond value, bad
     |    |    +-- BondXmlError         ... or a REST body that is hostile or malformed
     |    +-- BondRuleError             a data-center rule refused an edit
     |    |    +-- BondNotFoundError    ... naming an id the data center does not hold
     |    +-- BondHostError             this host cannot carry the bond as asked
     |         +-- NetdevError          a bond network's netdev is missing or down
     |         +-- IfaceConflictError   an iface of our name is bound to another netdev
     |         +-- SameSubnetError      bond netdevs share a subnet without the sysctls
     |         +-- HostNonOperationalError  no path through the bond's networks came up
     +-- AgentError                     the host agent (multipath_brick.agent) refused a request
     |    +-- InvalidVolumeRequest      (ValueError) a vol_id or connection_info we refuse
     |         +-- UnsupportedVolumeType  ... whose driver_volume_type we do not attach
     |         +-- ConnectionMismatch   ... stored before with another connection
     +-- StoreError                     the agent's volume store cannot be used
          +-- StoreCorruptError         ... it is not a database, or a damaged one
          +-- StoreLockedError          ... another process holds it too long
          +-- StoreVersionError         ... a newer multipath-brick wrote it

Why subclass os-brick: callers written against os-brick (``except
exception.VolumeDeviceNotFound``) keep working when they switch connector.

Why fields live in ``args``: oslo.privsep sends an exception raised in the
daemon back to the caller as its class name and ``args``, and rebuilds it with
``cls(*args)``. Every class here therefore takes its fields positionally and
keeps exactly them in ``args``; the human message is derived, never stored as
an argument. No field ever holds a secret.
"""

from __future__ import annotations

from collections.abc import Sequence

from os_brick import exception as brick_exception

__all__ = [
    "AttachError",
    "AgentError",
    "AuthenticationError",
    "BondError",
    "BondNotFoundError",
    "BondRuleError",
    "BondValueError",
    "BondXmlError",
    "CommandError",
    "CommandTimeout",
    "ConnectionMismatch",
    "DetachError",
    "DeviceNotReadyTimeout",
    "DiscoveryError",
    "FlushError",
    "BondHostError",
    "HostNonOperationalError",
    "IfaceConflictError",
    "NetdevError",
    "SameSubnetError",
    "InvalidArgument",
    "InvalidConnectionProperties",
    "OsBrickMapsError",
    "UnsupportedTransportError",
    "InvalidSettings",
    "InvalidVolumeRequest",
    "LockPathError",
    "LockTimeout",
    "MultipathBrickError",
    "MultipathUnavailableError",
    "NoUsablePathError",
    "NotOwnedError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsupportedVolumeType",
    "VolumePathsError",
]


class MultipathBrickError(brick_exception.BrickException):  # type: ignore[misc]
    """Root of every error this library raises."""

    def __init__(self, message: str, *fields: object) -> None:
        super().__init__(message)
        self.msg: str = message
        self.args = fields

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> tuple[type[MultipathBrickError], tuple[object, ...]]:
        return (type(self), self.args)


class InvalidConnectionProperties(MultipathBrickError, ValueError):
    """A connection-properties dict that cannot be used.

    :ivar key: the offending key, e.g. ``target_portals[2]``.
    :ivar reason: why it was refused.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"invalid connection property {key!r}: {reason}", key, reason)


class InvalidArgument(MultipathBrickError, ValueError):
    """A privileged verb refused one of its arguments (checked inside the daemon)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid argument {field!r}: {reason}", field, reason)


class NotOwnedError(InvalidArgument):
    """A destructive verb named something the library does not own.

    The daemon refuses to delete, rescan, scan, flush, resize or hand to
    multipathd anything that sysfs does not show as an iSCSI device: a local
    disk, a SCSI host of another transport, a device-mapper map with a slave
    that is not an iSCSI disk (see :mod:`multipath_brick.verbs.ownership`).

    :ivar field: the verb's field, e.g. ``device`` or ``map_name``.
    :ivar reason: what sysfs showed instead, e.g. ``sda is not under an iSCSI
        session: /sys/block/sda/device is
        /sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0``.
    """


class CommandError(MultipathBrickError):
    """A command exited with a non-zero status.

    :ivar argv: the command, with secrets replaced by ``***``.
    :ivar exit_code: its exit status.
    :ivar stderr: what it printed on stderr (stripped).
    """

    def __init__(self, argv: Sequence[str], exit_code: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(
            f"{' '.join(self.argv)} exited {exit_code}: {stderr.strip()}",
            self.argv,
            exit_code,
            stderr,
        )


class CommandTimeout(CommandError):
    """A command did not finish within its timeout and was killed."""

    def __init__(self, argv: Sequence[str], exit_code: int, stderr: str) -> None:
        super().__init__(argv, exit_code, stderr)
        self.msg = f"{' '.join(self.argv)} timed out"


class DiscoveryError(MultipathBrickError, brick_exception.TargetPortalNotFound):  # type: ignore[misc]
    """Sendtargets discovery on a portal failed or did not list the target."""

    def __init__(self, portal: str, reason: str) -> None:
        self.portal = portal
        self.reason = reason
        super().__init__(f"discovery on {portal} failed: {reason}", portal, reason)


class NoUsablePathError(MultipathBrickError, brick_exception.VolumeDeviceNotFound):  # type: ignore[misc]
    """No path of the volume produced a device.

    :ivar failures: ``(path, reason)`` pairs, one per path, ``path`` written
        as ``portal iqn lun iface``.
    """

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = tuple((str(p), str(r)) for p, r in failures)
        listing = "; ".join(f"{p}: {r}" for p, r in self.failures) or "no paths"
        super().__init__(f"no usable path to the volume ({listing})", self.failures)


class AuthenticationError(NoUsablePathError):
    """Every path was refused by the target's CHAP check (iscsiadm exit 24)."""


class DeviceNotReadyTimeout(MultipathBrickError, brick_exception.VolumeDeviceNotFound):  # type: ignore[misc]
    """Paths logged in, but the device never became usable in time."""

    def __init__(self, device: str, waited: float) -> None:
        self.device = device
        self.waited = waited
        super().__init__(f"{device} not ready after {waited:.1f}s", device, waited)


class MultipathUnavailableError(MultipathBrickError):
    """multipathd does not answer, so no map can be made."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"multipathd unavailable: {reason}", reason)


class FlushError(MultipathBrickError):
    """A multipath map could not be flushed; its paths were left in place."""

    def __init__(self, map_name: str, reason: str) -> None:
        self.map_name = map_name
        self.reason = reason
        super().__init__(f"could not flush {map_name}: {reason}", map_name, reason)


class DetachError(MultipathBrickError):
    """One or more detach steps failed; every step was still attempted."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(str(e) for e in errors)
        super().__init__("detach failed: " + "; ".join(self.errors), self.errors)


class VolumePathsError(MultipathBrickError, brick_exception.VolumePathsNotFound):  # type: ignore[misc]
    """The volume's paths could not be listed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"could not find the volume's paths: {reason}", reason)


class BondError(MultipathBrickError):
    """The iSCSI bond model (:mod:`multipath_brick.bond`) refused something."""


class BondValueError(BondError, ValueError):
    """A value of the bond model that cannot be used.

    :ivar subject: what holds the value, e.g. ``network 'san1'`` or
        ``data_center.iscsi_bonds[2]``.
    :ivar field: the offending field, e.g. ``mtu``.
    :ivar reason: why it was refused (never a secret: the model holds none).
    """

    def __init__(self, subject: str, field: str, reason: str) -> None:
        self.subject = subject
        self.field = field
        self.reason = reason
        super().__init__(f"{subject}: invalid {field!r}: {reason}", subject, field, reason)


class BondXmlError(BondValueError):
    """A REST body (``<iscsi_bond>``...) that is hostile, too large or malformed.

    :ivar element: where in the body, e.g. ``iscsi_bond/networks/network[3]``.
    :ivar reason: why it was refused; the body itself is never echoed.
    """

    def __init__(self, element: str, reason: str) -> None:
        super().__init__("XML body", element, reason)
        self.element = element
        self.args = (element, reason)
        self.msg = f"XML body refused at {element}: {reason}"


class BondRuleError(BondError):
    """A rule of the data center refused an edit; nothing was changed.

    :ivar subject: the bond, network or storage connection at fault, e.g.
        ``iSCSI bond 'san' (id b1)``.
    :ivar reason: the rule it breaks.
    """

    def __init__(self, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(f"{subject}: {reason}", subject, reason)


class BondNotFoundError(BondRuleError):
    """An edit named a bond, network or storage connection the data center does not hold.

    :ivar kind: ``iSCSI bond``, ``network`` or ``storage connection``.
    :ivar ident: the id that was asked for.
    :ivar data_center: the data center's id.
    """

    def __init__(self, kind: str, ident: str, data_center: str) -> None:
        self.kind = kind
        self.ident = ident
        self.data_center = data_center
        BondError.__init__(
            self,
            f"{kind} {ident!r} is not in data center {data_center!r}",
            kind,
            ident,
            data_center,
        )
        self.subject = f"{kind} {ident!r}"
        self.reason = f"not in data center {data_center!r}"


class AgentError(MultipathBrickError):
    """The host agent (:mod:`multipath_brick.agent`) refused or failed a request."""


class InvalidVolumeRequest(AgentError, ValueError):
    """A ``vol_id`` or ``connection_info`` the agent refuses; nothing was touched.

    :ivar field: the offending field, e.g. ``vol_id`` or ``connection_info.data``.
    :ivar reason: why it was refused (never the value: it may hold a secret).
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field!r}: {reason}", field, reason)


class UnsupportedVolumeType(InvalidVolumeRequest):
    """``driver_volume_type`` is not one this library attaches (only ``iscsi``).

    :ivar volume_type: the type that was given.
    """

    def __init__(self, volume_type: str) -> None:
        super().__init__(
            "connection_info.driver_volume_type",
            f"unsupported volume type {volume_type!r}: only 'iscsi' is attached",
        )
        self.volume_type = volume_type
        self.args = (volume_type,)


class ConnectionMismatch(InvalidVolumeRequest):
    """The volume id is stored with another connection; detach it first.

    :ivar vol_id: the volume id.
    """

    def __init__(self, vol_id: str) -> None:
        super().__init__(
            "connection_info",
            f"volume {vol_id!r} is attached with different connection info; detach it first",
        )
        self.vol_id = vol_id
        self.args = (vol_id,)


class StoreError(MultipathBrickError):
    """The agent's volume store cannot be used; it was left as found.

    :ivar path: the store's file.
    :ivar reason: what is wrong and what to do.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"volume store {path}: {reason}", path, reason)


class StoreCorruptError(StoreError):
    """The store file is not a database or is damaged (never reset silently)."""


class StoreLockedError(StoreError):
    """Another process kept the store locked longer than the busy timeout."""


class StoreVersionError(StoreError):
    """The store's schema is newer than this library knows (written by a newer release)."""


class LockPathError(MultipathBrickError):
    """The lock directory is not configured, or it or a lock file is not safe for root to use.

    :ivar path: the directory or lock file (empty when no directory is configured).
    :ivar reason: what is wrong: its owner, its mode, a symlink, not a
        directory, or how to configure one.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f"lock path {path}" if path else "no lock directory"
        super().__init__(f"{where}: {reason}", path, reason)


class LockTimeout(MultipathBrickError):
    """A lock stayed held by another thread or process for longer than the lock timeout.

    :ivar purpose: what the lock guards, e.g. ``node record <iqn> <portal>
        iface default`` or ``map of WWID <wwid>`` (never a secret).
    :ivar waited: seconds waited before giving up.
    :ivar lock_file: the lock file, to find its holder (``fuser``, ``lslocks``).
    """

    def __init__(self, purpose: str, waited: float, lock_file: str) -> None:
        self.purpose = purpose
        self.waited = waited
        self.lock_file = lock_file
        super().__init__(
            f"the lock of {purpose} was still held after {waited:.1f}s ({lock_file})",
            purpose,
            waited,
            lock_file,
        )


# --- added for failure discipline ------------------------------------------------------


class InvalidSettings(MultipathBrickError, ValueError):
    """An attach or detach setting that cannot be used (checked when it is made).

    :ivar field: the setting, e.g. ``command_timeout``.
    :ivar reason: why it was refused.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid setting {field!r}: {reason}", field, reason)


class AttachError(MultipathBrickError, brick_exception.VolumeDeviceNotFound):  # type: ignore[misc]
    """The attach failed outside its paths (a host read or a command of the
    attach itself); everything it made was removed before this was raised."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"attach failed: {reason}", reason)


class BondHostError(BondError):
    """This host cannot carry the bond as asked; nothing was changed by the refusal."""


class NetdevError(BondHostError):
    """The netdev that carries a bond network on this host is missing or not up.

    :ivar network: the logical network, e.g. ``san1``.
    :ivar netdev: the netdev the caller said carries it, e.g. ``eth1``.
    :ivar reason: what the host shows, e.g. ``operstate is 'down'``.
    """

    def __init__(self, network: str, netdev: str, reason: str) -> None:
        self.network = network
        self.netdev = netdev
        self.reason = reason
        super().__init__(
            f"network {network!r}: netdev {netdev!r} {reason}", network, netdev, reason
        )


class IfaceConflictError(BondHostError):
    """An iface of this library's name exists bound to another netdev: never rebound.

    :ivar iface: the iface, e.g. ``mpb-eth1``.
    :ivar netdev: the netdev the name says, e.g. ``eth1``.
    :ivar bound_to: the netdev the record holds (empty: none).
    """

    def __init__(self, iface: str, netdev: str, bound_to: str) -> None:
        self.iface = iface
        self.netdev = netdev
        self.bound_to = bound_to
        shown = repr(bound_to) if bound_to else "no netdev"
        super().__init__(
            f"iface {iface!r} exists bound to {shown}, not {netdev!r}: left alone; "
            "remove or fix it by hand",
            iface,
            netdev,
            bound_to,
        )


class SameSubnetError(BondHostError):
    """Several bond netdevs share a subnet and lack the ARP and rp_filter sysctls.

    Without them the kernel answers ARP for every address on every such netdev
    and drops replies that arrive on the "wrong" one, so sessions bound to all
    but one netdev never log in.

    :ivar subnet: the shared subnet, e.g. ``192.168.10.0/24``.
    :ivar netdevs: the netdevs on it.
    :ivar lines: the ``sysctl`` settings that are missing, one ``key = value`` each.
    """

    def __init__(self, subnet: str, netdevs: Sequence[str], lines: Sequence[str]) -> None:
        self.subnet = subnet
        self.netdevs = tuple(netdevs)
        self.lines = tuple(lines)
        super().__init__(
            f"netdevs {', '.join(self.netdevs)} share subnet {subnet}: sessions through "
            "all but one would not log in. Set (e.g. in /etc/sysctl.d/):\n"
            + "\n".join(self.lines),
            subnet,
            self.netdevs,
            self.lines,
        )


class HostNonOperationalError(BondHostError):
    """The host carries a bond's networks but no path through them logged in.

    The oVirt feature makes such a host non-operational: it is not allowed to
    fall back to ``default`` (the management network) for a bonded target.

    :ivar networks: the bond networks the host carries.
    :ivar failures: ``(path, reason)`` of each bonded path, e.g.
        ``("10.0.0.1:3260 iqn... lun 1 via mpb-eth1", "connection timed out")``.
    """

    def __init__(self, networks: Sequence[str], failures: Sequence[tuple[str, str]]) -> None:
        self.networks = tuple(networks)
        self.failures = tuple(tuple(f) for f in failures)
        detail = "; ".join(f"{path}: {reason}" for path, reason in self.failures)
        super().__init__(
            f"host non-operational: no path through networks {', '.join(self.networks)} "
            f"logged in ({detail})",
            self.networks,
            self.failures,
        )


# --- added for the os-brick drop-in -------------------------------------------------------


class OsBrickMapsError(MultipathBrickError):
    """os-brick's connector factory is not laid out as this library knows it.

    :ivar version: the installed os-brick version.
    :ivar reason: what differs (a map missing or unknown, an iSCSI entry that
        is neither os-brick's class nor ours).
    """

    def __init__(self, version: str, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(
            f"cannot plug into os-brick {version}'s connector factory: {reason}",
            version,
            reason,
        )


class UnsupportedTransportError(MultipathBrickError, ValueError):
    """A ``transport`` (an iscsiadm iface) this connector cannot attach through.

    :ivar transport: the iface name given.
    :ivar reason: why, and what to do instead.
    """

    def __init__(self, transport: str, reason: str) -> None:
        self.transport = transport
        self.reason = reason
        super().__init__(f"transport {transport!r}: {reason}", transport, reason)
