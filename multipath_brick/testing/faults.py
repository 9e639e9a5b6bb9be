"""Fault injection in front of a FakeHost: a host call that fails, a process that dies.

:class:`FaultyHost` is a :class:`~multipath_brick.host.base.Host` that passes
every call to a :class:`~multipath_brick.testing.FakeHost` and counts them.
Armed, it either fails the Nth counted call the way a real host fails it (a
command exits 1 without running, a sysfs write or a file read raises
``OSError``), or "crashes" at it: the Nth call still reaches the fake host
(a process killed by ``kill -9`` leaves its running command behind), then it
and every later call of any kind raise :class:`ProcessDied`, so every thread of
the connector using it stops at its next look at the host. A new connector on
the same FakeHost then stands for the next process.

Example::

    faulty = FaultyHost(host)
    ISCSIMultipathConnector(use_multipath=True, host=faulty).connect_volume(props)  # counts
    clean = faulty.calls
    faulty.arm(crash_at=clean // 2)
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Collection
from typing import TypeVar

from multipath_brick.host.base import CommandResult
from multipath_brick.testing.fake_host import FakeHost
from multipath_brick.verbs import Command, RecordVerb, SysfsWrite

__all__ = ["FaultyHost", "ProcessDied"]

T = TypeVar("T")

#: Kinds of host calls that can be counted: commands, sysfs writes, file reads
#: (``read_text`` and ``list_dir``).
KINDS = frozenset({"run", "write", "read"})
#: What the failing command prints, and what a failing write or read says.
INJECTED = "injected failure"


class ProcessDied(BaseException):  # noqa: N818 - it stands for a signal, not an error
    """The process using the host was killed: not an ``Exception``, so that no
    ``except Exception`` of the library can catch it, as none can catch SIGKILL."""


class FaultyHost:
    """A Host that counts its calls and fails or dies at the Nth one.

    :param host: the FakeHost every call goes to.
    :param kinds: which calls are counted (see :data:`KINDS`); the others pass
        uncounted, until a crash.
    :ivar calls: counted calls since the last :meth:`arm`.
    :ivar injected: what was injected, e.g. ``"fail run write-wwids add 3600..."``.
    """

    def __init__(self, host: FakeHost, *, kinds: Collection[str] = ("run", "write")) -> None:
        unknown = set(kinds) - KINDS
        if unknown:
            raise ValueError(f"unknown kinds of host call: {sorted(unknown)}")
        self.host = host
        self.kinds = frozenset(kinds)
        self.calls = 0
        self.injected: str | None = None
        self._fail_at: int | None = None
        self._crash_at: int | None = None
        self._dead = False
        self._lock = threading.Lock()
        self._inside = 0
        self._quiet = threading.Condition(self._lock)

    def arm(self, *, fail_at: int | None = None, crash_at: int | None = None) -> None:
        """Count from zero again; fail, or die at, the given (1-based) counted call."""
        with self._lock:
            self.calls = 0
            self.injected = None
            self._fail_at, self._crash_at = fail_at, crash_at

    @property
    def dead(self) -> bool:
        """Whether the "process" has died."""
        return self._dead

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no call is inside the fake host any more.

        A call that was under way when the "process" died still completes (a
        login iscsid finishes, a scan the kernel finishes); the next process
        starts after that, as a restart takes longer than one host call.

        :returns: whether every call ended within ``timeout`` seconds.
        """
        with self._quiet:
            return self._quiet.wait_for(lambda: self._inside == 0, timeout)

    def _enter(self, kind: str | None, what: str) -> str | None:
        """Count one call: ``"fail"``, ``"crash"`` or None (pass it on).

        A call passed on (None or ``"crash"``) is under way from here until
        :meth:`_pass` returns; ``kind`` None is a call that is never counted.
        """
        with self._lock:
            if self._dead:
                raise ProcessDied(what)
            fault = self._fault(kind, what)
            if fault != "fail":
                self._inside += 1
            return fault

    def _fault(self, kind: str | None, what: str) -> str | None:
        if kind not in self.kinds:
            return None
        self.calls += 1
        if self.calls == self._crash_at:
            self._dead = True
            self.injected = f"crash {kind} {what}"
            return "crash"
        if self.calls == self._fail_at:
            self.injected = f"fail {kind} {what}"
            return "fail"
        return None

    def _pass(self, call: Callable[[], T]) -> T:
        """Make an entered call on the fake host; it is no longer under way after."""
        try:
            return call()
        finally:
            with self._quiet:
                self._inside -= 1
                self._quiet.notify_all()

    # --- the Host protocol -------------------------------------------------------------

    def run(self, command: Command | RecordVerb, *, timeout: float) -> CommandResult:
        """The fake host's answer; exit 1 (not run) or a death when armed so."""
        display = command.display()
        fault = self._enter("run", " ".join(display))
        if fault == "fail":
            return CommandResult(display, 1, "", f"{INJECTED}\n", 0.0)
        result = self._pass(lambda: self.host.run(command, timeout=timeout))
        if fault == "crash":
            raise ProcessDied(" ".join(display))
        return result

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        """The fake host's write; ``OSError(EIO)`` (not written) or a death when armed so."""
        fault = self._enter("write", f"{write.path()} {write.value()}")
        if fault == "fail":
            raise OSError(errno.EIO, INJECTED, write.path())
        self._pass(lambda: self.host.write(write, timeout=timeout))
        if fault == "crash":
            raise ProcessDied(write.path())

    def read_text(self, path: str) -> str:
        """The fake host's file; ``OSError(EIO)`` or a death when armed so."""
        fault = self._enter("read", path)
        if fault == "fail":
            raise OSError(errno.EIO, INJECTED, path)
        text = self._pass(lambda: self.host.read_text(path))
        if fault == "crash":
            raise ProcessDied(path)
        return text

    def list_dir(self, path: str) -> list[str]:
        """The fake host's listing; ``OSError(EIO)`` or a death when armed so."""
        fault = self._enter("read", path)
        if fault == "fail":
            raise OSError(errno.EIO, INJECTED, path)
        names = self._pass(lambda: self.host.list_dir(path))
        if fault == "crash":
            raise ProcessDied(path)
        return names

    def exists(self, path: str) -> bool:
        self._enter(None, path)
        return self._pass(lambda: self.host.exists(path))

    def realpath(self, path: str) -> str:
        self._enter(None, path)
        return self._pass(lambda: self.host.realpath(path))

    def monotonic(self) -> float:
        self._enter(None, "monotonic")
        return self._pass(self.host.monotonic)

    def sleep(self, seconds: float) -> None:
        self._enter(None, "sleep")
        self._pass(lambda: self.host.sleep(seconds))
        if self._dead:
            raise ProcessDied("sleep")
