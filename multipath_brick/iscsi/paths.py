"""Paths and where each one stands (its state).

A path is one (portal, iqn, lun, iface): the unit that logs in, gets a SCSI
disk, and joins (or fails to join) the multipath map.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from multipath_brick.iscsi.properties import Target


@dataclasses.dataclass(frozen=True, order=True)
class Path:
    """One way to the volume: a target triple through one iscsiadm iface."""

    target: Target
    iface: str = "default"

    def __str__(self) -> str:
        return f"{self.target} via {self.iface}"


class PathState(str, enum.Enum):
    """Where a path stands when ``connect_volume`` returns: the ``state`` of its
    entry in ``device_info['paths']``."""

    #: logged in, disk present, part of the map.
    ACTIVE = "active"
    #: could not be brought up; ``reason`` says why.
    FAILED = "failed"
    #: still logging in in the background; multipathd gets the path when it arrives.
    PENDING = "pending"


@dataclasses.dataclass(frozen=True)
class PathResult:
    """What happened to one path.

    :ivar path: the path.
    :ivar state: active, failed or pending.
    :ivar device: the SCSI disk (``sdX``) when active.
    :ivar wwid: the disk's multipath WWID when active.
    :ivar reason: why it failed.
    :ivar seconds: how long it took to resolve.
    :ivar auth_failed: the target rejected our CHAP credentials.
    :ivar new_session: this attach logged the session in (so may log it out).
    :ivar new_record: this attach created the node record.
    """

    path: Path
    state: PathState
    device: str | None = None
    wwid: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    auth_failed: bool = False
    new_session: bool = False
    new_record: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The entry of ``device_info['paths']``."""
        target = self.path.target
        return {
            "portal": target.portal,
            "iqn": target.iqn,
            "lun": target.lun,
            "iface": self.path.iface,
            "state": self.state.value,
            "device": f"/dev/{self.device}" if self.device else None,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def pending(cls, path: Path, seconds: float) -> PathResult:
        return cls(path, PathState.PENDING, seconds=seconds)


def path_from_dict(entry: dict[str, Any]) -> Path | None:
    """Rebuild a Path from a ``device_info['paths']`` entry; None when malformed."""
    try:
        target = Target(str(entry["portal"]), str(entry["iqn"]), int(entry["lun"]))
        return Path(target, str(entry.get("iface") or "default"))
    except (KeyError, TypeError, ValueError):
        return None
