"""Test helpers shipped with multipath-brick, for our tests and for yours.

:class:`FakeHost` simulates a Linux host with iscsid, multipathd and iSCSI
targets behind it; pass it as ``host=`` to the connector and script trouble
with its control methods (``set_latency``, ``set_unreachable``...).
"""

from multipath_brick.testing.fake_host import FakeHost
from multipath_brick.testing.state import FakeTarget

__all__ = ["FakeHost", "FakeTarget"]
