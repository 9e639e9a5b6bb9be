"""The verb base classes: a command (argv) or a sysfs write."""

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
