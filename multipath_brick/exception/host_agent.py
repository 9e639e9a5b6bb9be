"""The host agent's refusals and its volume store's failures.

See :mod:`multipath_brick.agent`.
"""

from __future__ import annotations

from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "AgentError",
    "ConnectionMismatch",
    "InvalidVolumeRequest",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsupportedVolumeType",
]


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
