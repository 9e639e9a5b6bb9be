"""The timing of attaches and detaches, checked when it is made.

Every wait of the library is bounded by one of these values, and every
command's timeout comes from them: an unbounded or absurd value (``inf``,
``1e300``, a negative number) is refused here, with the name of the setting,
rather than reaching a command (where ``1e300`` once started a command and
then raised ``OverflowError``) or a wait that never ends.
"""

from __future__ import annotations

import dataclasses
import math

from multipath_brick.exception import InvalidSettings
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.locks import DEFAULT_TIMEOUT
from multipath_brick.validate import MAX_TIMEOUT

__all__ = ["MAX_SECONDS", "AttachSettings"]

#: The longest any setting (and so any wait or command timeout, a flush's ten
#: command timeouts included) may be: the daemon's own bound on a command's
#: timeout (:data:`multipath_brick.validate.MAX_TIMEOUT`, a day), so that no
#: setting makes a command the daemon refuses.
MAX_SECONDS = MAX_TIMEOUT


@dataclasses.dataclass(frozen=True)
class AttachSettings:
    """Timing of an attach.

    :ivar grace: seconds to keep waiting for slow paths once the map is usable.
    :ivar gather: seconds the first disk udev has processed waits, at most,
        for the disk of another path that is logged in (its scan and sd's
        probe, about a second) before the WWID is whitelisted (``multipath
        -a``), so that multipathd creates the map once with every disk instead
        of creating it with one and reloading it for each later one: each
        reload is udev and multipathd work that every other attach waits
        behind (in the lab, 4 portals: 0.79x the floor's CPU per path with 2,
        0.98x with 0). A path still logging in is not waited for (a dead
        portal takes its login timeouts): its disk joins the map later. Until
        the whitelist the disks are plain disks to udev, as with os-brick. 0
        whitelists as soon as the first path knows the WWID: the map is
        usable sooner (a path at a time) and full later.
    :ivar gather_udev: seconds the gathering waits, at most, for udev to
        process a disk of the volume that already exists. Such a disk will be
        processed; whitelisting before it only makes multipathd build the map
        in several reloads, which is more udev work on a host that is already
        behind (the lab, with 32 disks at once).
    :ivar timeouts: per-node login timeouts written before login.
    :ivar scan_attempts: targeted scans per path before giving up on its LUN.
    :ivar scan_timeout: seconds a scan (and the disk's appearance) may take.
    :ivar ready_timeout: seconds a disk may take to join the map (udev and
        multipathd can lag minutes behind when many disks arrive at once on a
        slow host), and for the map to answer usable once every path has
        resolved.
    :ivar command_timeout: seconds any other command may take; a flush may
        take ten times as long, since killing one midway can leave its map
        suspended.
    :ivar flush_busy_for: seconds to keep retrying a flush that finds the map
        briefly in use (udev probing a new map holds it open).
    :ivar poll: seconds between looks at sysfs.
    :ivar lock_timeout: seconds any node-record or WWID lock is waited for
        before :class:`~multipath_brick.exception.LockTimeout`; longer than any
        hold with these defaults (see :data:`multipath_brick.locks.DEFAULT_TIMEOUT`).

    Every value is checked when the settings are made: a number of seconds
    must be finite, not negative (``grace``, ``gather``, ``gather_udev``) or
    positive (the others), and at most :data:`MAX_SECONDS`; a bad one raises
    :class:`~multipath_brick.exception.InvalidSettings` naming it, before any
    command can start with it.
    """

    grace: float = 5.0
    gather: float = 2.0
    gather_udev: float = 10.0
    timeouts: LoginTimeouts = LoginTimeouts()
    scan_attempts: int = 3
    scan_timeout: float = 10.0
    ready_timeout: float = 120.0
    command_timeout: float = 30.0
    flush_busy_for: float = 10.0
    poll: float = 0.05
    lock_timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("grace", "gather", "gather_udev"):
            _check_seconds(name, getattr(self, name), zero_ok=True)
        for name in (
            "scan_timeout",
            "ready_timeout",
            "command_timeout",
            "flush_busy_for",
            "poll",
            "lock_timeout",
        ):
            _check_seconds(name, getattr(self, name), zero_ok=False)
        # A flush may take ten command timeouts (multipath/control.py).
        _check_seconds("command_timeout", self.command_timeout * 10, zero_ok=False)
        _check_count("scan_attempts", self.scan_attempts, 1, 100)
        if not isinstance(self.timeouts, LoginTimeouts):
            raise InvalidSettings("timeouts", f"not LoginTimeouts: {self.timeouts!r}")
        _check_count("timeouts.login_timeout", self.timeouts.login_timeout, 1, 3600)
        _check_count("timeouts.retries", self.timeouts.retries, 1, 100)
        _check_seconds("timeouts", self.timeouts.worst_case + 15.0, zero_ok=False)


def _check_seconds(name: str, value: object, *, zero_ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSettings(name, f"not a number of seconds: {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        least = "0" if zero_ok else "more than 0"
        raise InvalidSettings(name, f"{value!r} s: must be finite and {least}")
    if value > MAX_SECONDS:
        raise InvalidSettings(name, f"{value!r} s: more than the {MAX_SECONDS:.0f} s allowed")


def _check_count(name: str, value: object, least: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidSettings(name, f"{value!r}: must be a whole number from {least} to {most}")
