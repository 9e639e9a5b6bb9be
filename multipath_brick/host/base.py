"""The Host: the only door between multipath-brick and the operating system.

Everything above this layer (iscsi, scsi, multipath, connector) asks a Host to
run a :mod:`~multipath_brick.verbs` verb, to write a sysfs
attribute, or to read files, and never touches ``os``, ``glob`` or
``subprocess`` itself. Two implementations exist:

* :class:`multipath_brick.host.linux.LinuxHost`, the real one, whose privileged
  verbs go through oslo.privsep;
* :class:`multipath_brick.testing.FakeHost`, which answers the same verbs from a
  simulated iscsid, multipathd and target, over a sysfs-like tree in a
  temporary directory.

Paths are absolute paths as seen on a real host (``/sys/block/sda``); a Host
maps them onto its root.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

from multipath_brick.exception import CommandError, CommandTimeout
from multipath_brick.verbs import Command, RecordVerb, SysfsWrite

#: Exit status reported for a command killed at its timeout.
TIMED_OUT = -9


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """How a command ended.

    :ivar argv: what ran, secrets masked (:meth:`Command.display`, :meth:`RecordVerb.display`).
    :ivar exit_code: its status; :data:`TIMED_OUT` when it was killed.
    :ivar stdout: its standard output.
    :ivar stderr: its standard error.
    :ivar duration: seconds it took.
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def timed_out(self) -> bool:
        return self.exit_code == TIMED_OUT

    def check(self, *accepted: int) -> CommandResult:
        """Return self when the exit code is 0 or accepted, raise otherwise.

        :raises CommandTimeout: when the command was killed at its timeout.
        :raises CommandError: for any other exit code.
        """
        if self.exit_code == 0 or self.exit_code in accepted:
            return self
        if self.timed_out:
            raise CommandTimeout(self.argv, self.exit_code, self.stderr)
        raise CommandError(self.argv, self.exit_code, self.stderr)


@runtime_checkable
class Host(Protocol):
    """What the library needs from the machine it runs on."""

    def run(self, command: Command | RecordVerb, *, timeout: float) -> CommandResult:
        """Run one verb's argv (as root on a real host); never raises for its exit code.

        A :class:`RecordVerb` runs no program: it writes into an open-iscsi record
        (CHAP secrets, which must not be on an argv) or reads one, and answers
        like a command.
        """

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        """Write a sysfs attribute (as root on a real host).

        :raises CommandTimeout: the write did not return in time (scans can hang).
        :raises OSError: the kernel refused it.
        """

    def read_text(self, path: str) -> str:
        """Read a file; :raises OSError: when it cannot."""

    def list_dir(self, path: str) -> list[str]:
        """Entry names in a directory, sorted; empty when it does not exist."""

    def exists(self, path: str) -> bool:
        """Whether a path exists (following symlinks)."""

    def realpath(self, path: str) -> str:
        """The path with symlinks resolved, as an absolute host path."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""

    def sleep(self, seconds: float) -> None:
        """Wait; fakes may shorten or simulate it."""
