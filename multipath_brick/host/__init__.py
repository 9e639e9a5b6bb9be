"""The host boundary: :class:`Host`, :class:`CommandResult` and the real :class:`LinuxHost`.

:class:`LinuxHost` is imported on first use: it brings in oslo.privsep (and
with it eventlet), which code running on :class:`~multipath_brick.testing.FakeHost`
never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multipath_brick.host.base import TIMED_OUT, CommandResult, Host

if TYPE_CHECKING:
    from multipath_brick.host.linux import LinuxHost

__all__ = ["TIMED_OUT", "CommandResult", "Host", "LinuxHost"]


def __getattr__(name: str) -> Any:
    if name == "LinuxHost":
        from multipath_brick.host.linux import LinuxHost

        return LinuxHost
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
