"""Values refused before anything runs.

Connection properties, a verb's arguments (at the edge and again in the
daemon), settings, a transport.
"""

from __future__ import annotations

from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "InvalidArgument",
    "InvalidConnectionProperties",
    "InvalidSettings",
    "NotOwnedError",
    "UnsupportedTransportError",
]


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


class InvalidSettings(MultipathBrickError, ValueError):
    """An attach or detach setting that cannot be used (checked when it is made).

    :ivar field: the setting, e.g. ``command_timeout``.
    :ivar reason: why it was refused.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid setting {field!r}: {reason}", field, reason)


class UnsupportedTransportError(MultipathBrickError, ValueError):
    """A ``transport`` (an iscsiadm iface) this connector cannot attach through.

    :ivar transport: the iface name given.
    :ivar reason: why, and what to do instead.
    """

    def __init__(self, transport: str, reason: str) -> None:
        self.transport = transport
        self.reason = reason
        super().__init__(f"transport {transport!r}: {reason}", transport, reason)
