"""Helpers of the connector's unit tests (``test_connector*.py``).

What ran, what is left behind, when logins ran, a late path joining.
"""

from __future__ import annotations

import time

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import IQN, connector_with, plural


def argvs(host: FakeHost) -> list[str]:
    return [" ".join(call[0]) for call in host.calls]


def assert_nothing_left(host: FakeHost) -> None:
    assert host.leftovers() == {}


def patient(host: FakeHost, tmp_path) -> ISCSIMultipathConnector:
    """A connector whose login timeout (30 s simulated) outlasts slow portals."""
    return connector_with(host, tmp_path, timeouts=LoginTimeouts(login_timeout=30, retries=1))


def login_intervals(host: FakeHost, iqn: str = IQN) -> list[tuple[float, float]]:
    return [(call[2], call[3]) for call in host.calls if "--login" in call[0] and iqn in call[0]]


def overlapping(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Every interval of ``a`` overlaps every interval of ``b``: they ran at once."""
    return all(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def late_path_joins(connector: ISCSIMultipathConnector, host: FakeHost, portal: str) -> float:
    """Attach with one path late: it is pending at return, then joins the map.
    Returns the attach's duration (real seconds)."""
    t0 = time.monotonic()
    info = connector.connect_volume(plural())
    took = time.monotonic() - t0
    states = {p["portal"]: p["state"] for p in info["paths"]}
    assert states[portal] == "pending", states
    assert len(host.maps()[info["multipath_id"]]) == 3
    assert connector.wait_for_pending(10)
    assert len(host.maps()[info["multipath_id"]]) == 4
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)
    return took
