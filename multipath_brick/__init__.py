"""multipath-brick: attach iSCSI volumes to a Linux host over every path at once.

The public names: :class:`ConnectionProperties` (with :class:`Target` and
:class:`Chap`), :class:`ISCSIMultipathConnector`, and the :mod:`.exception`
module. :mod:`multipath_brick.testing` ships :class:`~.testing.FakeHost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multipath_brick.iscsi.properties import Chap, ConnectionProperties, Target

if TYPE_CHECKING:
    from multipath_brick.connector import ISCSIMultipathConnector

__all__ = ["Chap", "ConnectionProperties", "ISCSIMultipathConnector", "Target"]


def __getattr__(name: str) -> Any:
    # The connector pulls in os-brick's initiator and oslo.privsep: import it on use,
    # so that parsing properties stays cheap.
    if name == "ISCSIMultipathConnector":
        from multipath_brick.connector import ISCSIMultipathConnector

        return ISCSIMultipathConnector
    raise AttributeError(name)
