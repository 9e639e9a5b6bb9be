"""A process killed mid-call, as a Host: for testing crash recovery.

``SIGKILL`` stops a process between two instructions: whatever it already
asked of the kernel and the daemons stays done, nothing after happens, and no
cleanup runs. :class:`KilledHost` stands for the host as seen by such a
process: it passes the first ``after`` host calls (commands and sysfs writes)
to the real (fake) host, then raises :class:`ProcessKilled` for that call and
every later one, without touching the host. ``ProcessKilled`` derives from
``BaseException`` so the library's ``except Exception`` cleanups do not run,
like in a killed process; ``finally`` blocks still run but can no longer reach
the host. The host's own background work (udev, iscsid, multipathd) goes on, as
it does when an agent dies. Make the next "process" with a new connector on
the underlying host.

Example::

    killed = KilledHost(fake, after=7)
    with pytest.raises(ProcessKilled):
        ManagedVolumes(ISCSIMultipathConnector(host=killed), store=path).attach_volume(...)
    ManagedVolumes(ISCSIMultipathConnector(host=fake), store=path).attach_volume(...)
"""

from __future__ import annotations

import threading

from multipath_brick.host.base import CommandResult, Host
from multipath_brick.privileged.verbs import Command, SysfsWrite

__all__ = ["KilledHost", "ProcessKilled"]


class ProcessKilled(BaseException):
    """The simulated process was killed; raised by every host call from then on."""


class KilledHost:
    """A :class:`~multipath_brick.host.base.Host` whose process dies after ``after`` calls.

    :param host: the host the process acts on.
    :param after: how many commands and sysfs writes succeed before the kill;
        None never kills (count the calls of a run with :attr:`count`).
    :ivar count: host calls made (or attempted) so far.
    """

    def __init__(self, host: Host, after: int | None = None) -> None:
        self._host = host
        self._after = after
        self._lock = threading.Lock()
        self.count = 0

    @property
    def killed(self) -> bool:
        """Whether the kill has happened."""
        with self._lock:
            return self._after is not None and self.count > self._after

    def _step(self) -> None:
        with self._lock:
            self.count += 1
            if self._after is not None and self.count > self._after:
                raise ProcessKilled(f"killed before host call {self.count}")

    def run(self, command: Command, *, timeout: float) -> CommandResult:
        self._step()
        return self._host.run(command, timeout=timeout)

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        self._step()
        self._host.write(write, timeout=timeout)

    # Reads change nothing: a process may read until it dies, and after it
    # died nothing reads; refusing them too keeps a dead thread from deciding.
    def read_text(self, path: str) -> str:
        self._alive()
        return self._host.read_text(path)

    def list_dir(self, path: str) -> list[str]:
        self._alive()
        return self._host.list_dir(path)

    def exists(self, path: str) -> bool:
        self._alive()
        return self._host.exists(path)

    def realpath(self, path: str) -> str:
        self._alive()
        return self._host.realpath(path)

    def monotonic(self) -> float:
        return self._host.monotonic()

    def sleep(self, seconds: float) -> None:
        self._alive()
        self._host.sleep(seconds)

    def _alive(self) -> None:
        if self.killed:
            raise ProcessKilled("killed")
