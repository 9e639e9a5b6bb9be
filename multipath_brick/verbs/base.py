"""The verb base classes: a command (argv), a record write, or a sysfs write."""

from __future__ import annotations

import dataclasses
from typing import ClassVar


class Verb:
    """Base of every verb. ``entrypoint`` names its privsep function."""

    entrypoint: ClassVar[str]

    def fields(self) -> tuple[object, ...]:
        """The verb's fields, in order: the entrypoint's positional arguments."""
        return dataclasses.astuple(self)  # type: ignore[call-overload,no-any-return]


class Command(Verb):
    """A verb that runs a program."""

    def argv(self) -> tuple[str, ...]:
        raise NotImplementedError

    def display(self) -> tuple[str, ...]:
        """The argv as it may be logged or put in an error: secrets masked."""
        return self.argv()


class SysfsWrite(Verb):
    """A verb that writes one value to one sysfs attribute."""

    def path(self) -> str:
        raise NotImplementedError

    def value(self) -> str:
        raise NotImplementedError


class RecordVerb(Verb):
    """A verb the daemon carries out on a file of the host's tools itself.

    It runs no program: it writes what must never be on a command line (CHAP
    secrets) and what may as well go with them, or reads a record without an
    iscsiadm process (open-iscsi's records: see
    :mod:`multipath_brick.privileged.nodedb`), or edits multipath's WWID file
    without a ``multipath`` process that would look at every disk first
    (:mod:`multipath_brick.privileged.wwids_file`). Its outcome reads like a
    command's (the tool's exit code, and the record on standard output for a
    read), so hosts run it with :meth:`~multipath_brick.host.base.Host.run`.
    """

    def display(self) -> tuple[str, ...]:
        """What the verb does, as it may be logged or put in an error: no secret."""
        raise NotImplementedError
