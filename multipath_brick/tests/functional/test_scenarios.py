"""The shared connector scenarios (``tests/scenarios.py``) on the real kernel.

The unit suite runs the same functions on the FakeHost: whatever the fake claims,
the real stack (tgt, iscsid, multipathd, the kernel) is asked to show here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.tests import scenarios
from multipath_brick.tests.lab.api import Lab

from .conftest import ConnectorFactory


class LabEnv:
    """:class:`scenarios.Env` on the QEMU lab: tgt behind 4 portals with CHAP."""

    def __init__(self, lab: Lab, make_connector: ConnectorFactory) -> None:
        self.lab = lab
        self.make_connector = make_connector
        self.portals = lab.portals

    def props(self, lun: int, *, password: str | None = None) -> dict[str, Any]:
        n = len(self.lab.portals)
        return {
            "target_portals": list(self.lab.portals),
            "target_iqns": [self.lab.iqn] * n,
            "target_luns": [lun] * n,
            "auth_method": "CHAP",
            "auth_username": self.lab.chap.user,
            "auth_password": password or self.lab.chap.password,
        }

    def add_lun(self, lun: int, size_mb: int) -> str:
        return self.lab.add_lun(lun, size_mb)

    def resize_lun(self, lun: int, size_mb: int) -> None:
        self.lab.resize_lun(lun, size_mb)

    def portal_down(self, index: int) -> None:
        self.lab.portal_down(index)

    def connector(
        self, *, grace: float = 5.0, timeouts: LoginTimeouts | None = None, multipath: bool = True
    ) -> ISCSIMultipathConnector:
        connector: ISCSIMultipathConnector = self.make_connector(
            grace=grace, login_timeouts=timeouts, use_multipath=multipath
        )
        return connector

    def leftovers(self) -> dict[str, Any]:
        return {kind: items for kind, items in self.lab.leftovers().items() if items}


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.__name__)
def test_scenario(
    scenario: Callable[[LabEnv], None], lab: Lab, make_connector: ConnectorFactory
) -> None:
    scenario(LabEnv(lab, make_connector))
