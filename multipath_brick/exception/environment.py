"""What the machine did: its programs, multipathd, the locks, os-brick.

A command's failure or timeout, multipathd silent, a lock directory unsafe or a
lock held too long, os-brick's connector factory laid out otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "CommandError",
    "CommandTimeout",
    "LockPathError",
    "LockTimeout",
    "MultipathUnavailableError",
    "OsBrickMapsError",
]


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


class MultipathUnavailableError(MultipathBrickError):
    """multipathd does not answer, so no map can be made."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"multipathd unavailable: {reason}", reason)


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
