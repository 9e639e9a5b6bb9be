"""Waiting for the kernel and the daemons: a deadline, widening pauses, ``wait_until``.

Every wait of an attach or a detach looks at something (sysfs, udev's
database, multipathd's answer) until it is there or a deadline passes, on the
:class:`~multipath_brick.host.base.Host`'s clock, so that a fake host can
answer it. The looks start at a short pause and widen, up to a most that
depends on what is waited for:

* :data:`LOOK_MAX` (0.25 s): a path's own kernel objects (its session, SCSI
  device, block device, WWID, a deleted disk going away), which the kernel
  makes or removes within about a second of the step that causes them: a
  longer pause would only add to the attach's latency;
* :data:`BUSY_LOOK_MAX` (0.5 s): udev and multipathd while an attach's disks
  arrive, which run seconds (with 32 new disks in the lab, a minute) behind on
  a busy host: 32 path tasks looking every 50 ms take CPU from the very udev
  workers they all wait for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # only a protocol; locks.py uses pauses() without the host layer
    from multipath_brick.host.base import Host

__all__ = ["BUSY_LOOK_MAX", "LOOK_MAX", "Backoff", "Deadline", "pauses", "wait_until"]

_T = TypeVar("_T")

#: Longest pause between two looks at a path's own kernel objects (seconds).
LOOK_MAX = 0.25
#: Longest pause between two looks at udev's or multipathd's progress while an
#: attach's disks arrive (seconds).
BUSY_LOOK_MAX = 0.5


def pauses(first: float, most: float = LOOK_MAX, growth: float = 1.5) -> Iterator[float]:
    """Pauses between looks: ``first``, then ``growth`` times longer each time, up to ``most``.

    :param first: the first pause (seconds).
    :param most: the longest pause; never shorter than ``first``.
    :param growth: how much longer each pause is than the one before.
    """
    pause = first
    while True:
        yield pause
        pause = min(pause * growth, max(first, most))


@dataclasses.dataclass(frozen=True)
class Deadline:
    """A point on the host's clock after which a wait gives up.

    :ivar host: whose clock.
    :ivar start: when the wait began.
    :ivar end: when it gives up.
    """

    host: Host
    start: float
    end: float

    @classmethod
    def after(cls, host: Host, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now."""
        now = host.monotonic()
        return cls(host, now, now + seconds)

    def passed(self) -> bool:
        return self.host.monotonic() >= self.end

    def left(self) -> float:
        """Seconds until the end, 0 once it passed."""
        return max(self.end - self.host.monotonic(), 0.0)

    def waited(self) -> float:
        """Seconds since the start."""
        return self.host.monotonic() - self.start


def wait_until(
    host: Host,
    look: Callable[[], _T | None],
    timeout: float,
    first_pause: float,
    most: float = LOOK_MAX,
) -> _T | None:
    """Look until ``look`` answers something (a true value) or ``timeout`` passes.

    The last look is at the deadline, so a thing that appears just in time is
    seen.

    :param host: whose clock and sleep.
    :param look: what to look at; a false value (None, False, an empty list)
        means "not yet".
    :param timeout: seconds to look for at most.
    :param first_pause: the first pause between looks; they widen (:func:`pauses`).
    :param most: the longest pause between looks.
    :returns: the first true answer, or None when the time ran out.
    """
    deadline = Deadline.after(host, timeout)
    looks = pauses(first_pause, most)
    while not (found := look()):
        if deadline.passed():
            return None
        host.sleep(min(next(looks), deadline.left()))
    return found


class Backoff:
    """When to ask a busy daemon again: ``first`` seconds after the first ask,
    then twice as long after each ask, up to ``most``, or after a set time
    (:meth:`ask_after`). Not thread-safe: one per waiting task.

    :param host: whose clock.
    :param first: seconds between the first ask and the next.
    :param most: the longest time between two asks.
    :ivar pause: the time the next :meth:`asked` puts before the ask after it.
    """

    def __init__(self, host: Host, first: float, most: float) -> None:
        self._host = host
        self._most = max(first, most)
        self._next = host.monotonic()
        self.pause = first

    def due(self) -> bool:
        """Whether it is time to ask."""
        return self._host.monotonic() >= self._next

    def asked(self) -> None:
        """An ask was made: the next is due after :attr:`pause`, which then doubles."""
        self._next = self._host.monotonic() + self.pause
        self.pause = min(self.pause * 2, self._most)

    def ask_after(self, seconds: float) -> None:
        """Ask again only ``seconds`` from now (:attr:`pause` does not change)."""
        self._next = self._host.monotonic() + seconds
