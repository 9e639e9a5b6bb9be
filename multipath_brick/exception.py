"""The errors multipath-brick raises: one tree, one root.

::

    MultipathBrickError                 (os_brick.exception.BrickException)
     +-- InvalidConnectionProperties    (ValueError) a connection dict we refuse
     +-- InvalidArgument                (ValueError) a privileged verb's bad argument
     +-- CommandError                   a command exited non-zero
     |    +-- CommandTimeout            ... or did not exit in time
     +-- DiscoveryError                 (os_brick TargetPortalNotFound)
     +-- NoUsablePathError              (os_brick VolumeDeviceNotFound) every path failed
     |    +-- AuthenticationError       ... and every failure was a CHAP rejection
     +-- DeviceNotReadyTimeout          (os_brick VolumeDeviceNotFound) map never usable
     +-- MultipathUnavailableError      multipathd is not answering
     +-- FlushError                     a map could not be flushed (detach stops)
     +-- DetachError                    one or more detach steps failed (force=True)
     +-- VolumePathsError               (os_brick VolumePathsNotFound)

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
    "AuthenticationError",
    "CommandError",
    "CommandTimeout",
    "DetachError",
    "DeviceNotReadyTimeout",
    "DiscoveryError",
    "FlushError",
    "InvalidArgument",
    "InvalidConnectionProperties",
    "MultipathBrickError",
    "MultipathUnavailableError",
    "NoUsablePathError",
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
