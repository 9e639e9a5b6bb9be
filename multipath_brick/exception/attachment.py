"""How an attach, a detach or a path listing of a volume failed.

The ones os-brick has an exception for subclass it.
"""

from __future__ import annotations

from collections.abc import Sequence

from os_brick import exception as brick_exception

from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "AttachError",
    "AuthenticationError",
    "DetachError",
    "DeviceNotReadyTimeout",
    "DiscoveryError",
    "FlushError",
    "NoUsablePathError",
    "VolumePathsError",
]


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


class AttachError(MultipathBrickError, brick_exception.VolumeDeviceNotFound):  # type: ignore[misc]
    """The attach failed outside its paths (a host read or a command of the
    attach itself); everything it made was removed before this was raised."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"attach failed: {reason}", reason)


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
