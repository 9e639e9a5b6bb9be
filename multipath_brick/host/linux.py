"""The real host: privileged verbs through oslo.privsep, reads straight from the file system.

Only what needs root crosses into the privsep daemon: each verb goes to the
entrypoint of the same name in :mod:`multipath_brick.privileged.entrypoints`,
as its fields, and is rebuilt and checked there. Reading sysfs, ``/dev`` and
``/etc`` needs no privilege and stays in the caller's process, under ``root``
(``/`` on a real host; a temporary directory in tests).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from oslo_privsep.comm import PrivsepTimeout

from multipath_brick import privileged
from multipath_brick.exception import CommandTimeout
from multipath_brick.host.base import TIMED_OUT, CommandResult
from multipath_brick.privileged import entrypoints, start_daemon
from multipath_brick.verbs import Command, RecordVerb, SysfsWrite, Verb

__all__ = ["LinuxHost"]

LOG = logging.getLogger(__name__)

# How much longer than the command's own timeout we wait for the daemon's answer.
# The entrypoint enforces the timeout itself; this only guards against a daemon
# that stopped answering (hung in the kernel).
_DAEMON_GRACE = 30.0

# One slot per thread of the daemon's pool (its thread_pool_size). A call takes
# a slot before it is sent, waiting for one at most as long as the command may
# run, so that the daemon never holds a queue of requests: oslo.privsep's
# client-side timeout does not cancel a queued request, which the daemon would
# run later, after its caller gave up (a login after its record was deleted, a
# scan after the detach). The deadline sent with each call is the second
# guard: the daemon drops a request that reaches a thread too late.
# By pool size, read from the configuration at each call: one size in practice,
# but a test (or a reconfigured daemon) may start another daemon with another.
_slots: dict[int, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _daemon_slots() -> threading.BoundedSemaphore:
    size = max(1, int(privileged.context.conf.thread_pool_size or privileged.THREAD_POOL_SIZE))
    with _slots_lock:
        return _slots.setdefault(size, threading.BoundedSemaphore(size))


class LinuxHost:
    """The :class:`~multipath_brick.host.base.Host` of a real Linux machine.

    The privsep daemon is started on the first privileged call (``python -m
    multipath_brick.privsep_daemon`` when the process is root, else through
    ``root_helper privsep-helper``).

    :param root: the directory file reads are relative to; ``/`` on a real host.
    :param root_helper: how to gain root when not root, e.g. ``sudo`` or ``sudo
        cinder-rootwrap /etc/cinder/rootwrap.conf`` (os-brick's ``root_helper``).
    """

    def __init__(self, root: str = "/", root_helper: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.root_helper = root_helper

    def __repr__(self) -> str:
        return f"LinuxHost(root={self.root!r})"

    # --- privileged ------------------------------------------------------------------

    def run(self, command: Command | RecordVerb, *, timeout: float) -> CommandResult:
        """Run one verb in the privsep daemon; never raises for its exit code.

        :raises InvalidArgument: the daemon refused one of the verb's fields.
        """
        try:
            outcome = self._call(command, timeout)
        except CommandTimeout as error:
            return CommandResult(command.display(), TIMED_OUT, "", error.stderr)
        result = _result(command, outcome)
        # argv is the masked display: no CHAP secret reaches the log.
        LOG.debug("%s: exit %d, %.2f s", " ".join(result.argv), result.exit_code, result.duration)
        return result

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        """Write a sysfs attribute in the privsep daemon.

        :raises CommandTimeout: the write did not return in time (scans can hang).
        :raises OSError: the kernel refused it.
        :raises InvalidArgument: the daemon refused one of the verb's fields.
        """
        try:
            self._call(write, timeout)
        except CommandTimeout as error:
            raise CommandTimeout(
                ("write", write.path(), write.value()), TIMED_OUT, error.stderr
            ) from None

    def _call(self, verb: Verb, timeout: float) -> Any:
        """Send a verb to its entrypoint, within the daemon's pool and a deadline.

        :raises CommandTimeout: no daemon thread was free in ``timeout``
            seconds, the daemon dropped the request at its deadline, or it did
            not answer.
        """
        start_daemon(self.root_helper)
        entrypoint: Callable[..., Any] = getattr(entrypoints, verb.entrypoint)
        slots = _daemon_slots()
        if not slots.acquire(timeout=timeout):
            raise CommandTimeout((verb.entrypoint,), TIMED_OUT, "no privsep daemon thread free")
        try:
            deadline = time.monotonic() + timeout
            return entrypoint(
                *verb.fields(), timeout, _wrap_timeout=timeout + _DAEMON_GRACE, deadline=deadline
            )
        except PrivsepTimeout:
            raise CommandTimeout(
                (verb.entrypoint,), TIMED_OUT, "privsep daemon did not answer"
            ) from None
        finally:
            slots.release()

    # --- unprivileged reads ----------------------------------------------------------

    def _local(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"not an absolute host path: {path!r}")
        return os.path.join(self.root, path.lstrip("/"))

    def read_text(self, path: str) -> str:
        """Read a file under the root.

        :raises OSError: when it cannot be read.
        """
        with open(self._local(path), encoding="utf-8", errors="replace") as f:
            return f.read()

    def list_dir(self, path: str) -> list[str]:
        """Entry names of a directory, sorted; empty when it does not exist."""
        try:
            return sorted(os.listdir(self._local(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def exists(self, path: str) -> bool:
        """Whether the path exists (following symlinks)."""
        return os.path.exists(self._local(path))

    def realpath(self, path: str) -> str:
        """The path with symlinks resolved, as an absolute host path.

        Symlinks are resolved inside the root: sysfs links are relative
        (``../../devices/...``), and an absolute one is taken as a host path.
        """
        return _resolve(self.root, path)

    # --- time ------------------------------------------------------------------------

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(seconds)


def _result(command: Command | RecordVerb, outcome: Sequence[Any]) -> CommandResult:
    # Over the socket the outcome comes back as a tuple again (privsep unpacks
    # msgpack arrays with use_list=False); in-process calls return it as is.
    code, stdout, stderr, duration = outcome
    return CommandResult(command.display(), int(code), str(stdout), str(stderr), float(duration))


def _resolve(root: str, path: str, _depth: int = 0) -> str:
    """Resolve ``path`` (absolute, as on the host) with every link taken inside ``root``."""
    if _depth > 40:  # as the kernel's ELOOP limit
        raise OSError(f"too many levels of symbolic links: {path}")
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    for index, part in enumerate(parts):
        if part == "..":
            if done:
                done.pop()
            continue
        local = os.path.join(root, *done, part)
        if os.path.islink(local):
            target = os.readlink(local)
            base = "/" if target.startswith("/") else "/" + "/".join(done)
            rest = "/".join(parts[index + 1 :])
            joined = os.path.join(base, target, rest) if rest else os.path.join(base, target)
            return _resolve(root, joined, _depth + 1)
        done.append(part)
    return "/" + "/".join(done)
