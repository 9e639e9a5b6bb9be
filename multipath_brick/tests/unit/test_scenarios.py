"""The shared connector scenarios (``tests/scenarios.py``) on the FakeHost.

The functional suite runs the same functions on the real kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost
from multipath_brick.tests import scenarios
from multipath_brick.tests.unit.conftest import CHAP, FAST, IQN, PORTALS

MIB = 1024 * 1024


class FakeEnv:
    """:class:`scenarios.Env` on a FakeHost running 20x faster than real time."""

    portals = PORTALS

    def __init__(self, host: FakeHost, lock_path: str) -> None:
        self.host = host
        self.lock_path = lock_path
        self.target = host.add_target(IQN, PORTALS, luns={}, chap=CHAP)
        # Logins list the node database for a while, as real iscsiadm does.
        host.set_node_db_scan(0.5)

    def props(self, lun: int, *, password: str | None = None) -> dict[str, Any]:
        return {
            "target_portals": list(PORTALS),
            "target_iqns": [IQN] * len(PORTALS),
            "target_luns": [lun] * len(PORTALS),
            "auth_method": "CHAP",
            "auth_username": CHAP[0],
            "auth_password": password or CHAP[1],
        }

    def add_lun(self, lun: int, size_mb: int) -> str:
        self.host.add_lun(IQN, lun, size_mb * MIB)
        return self.target.wwid(lun)

    def resize_lun(self, lun: int, size_mb: int) -> None:
        self.host.resize_lun(IQN, lun, size_mb * MIB)

    def portal_down(self, index: int) -> None:
        self.host.set_unreachable(PORTALS[index], True)

    def connector(
        self, *, grace: float = 5.0, timeouts: LoginTimeouts | None = None, multipath: bool = True
    ) -> ISCSIMultipathConnector:
        settings = dataclasses.replace(FAST, grace=min(grace, FAST.grace))
        if timeouts is not None:
            settings = dataclasses.replace(settings, timeouts=timeouts)
        return ISCSIMultipathConnector(
            host=self.host, use_multipath=multipath, settings=settings, lock_path=self.lock_path
        )

    def leftovers(self) -> dict[str, Any]:
        return dict(self.host.leftovers())


@pytest.fixture
def env(tmp_path: Any) -> Iterator[FakeEnv]:
    with FakeHost(time_scale=0.05) as host:
        yield FakeEnv(host, str(tmp_path))


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.__name__)
def test_scenario(scenario: Callable[[FakeEnv], None], env: FakeEnv) -> None:
    scenario(env)
