"""Unit-test fixtures: a FakeHost with one 4-portal CHAP target, and a connector on it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.attach import AttachSettings
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost

IQN = "iqn.2024-01.test.mpb:target1"
PORTALS = ["192.168.101.2:3260", "192.168.102.2:3260", "192.168.103.2:3260", "192.168.104.2:3260"]
CHAP = ("mpb-user", "Pa55-w0rd-S3CRET")
GIB = 1024**3

#: Fast timings: simulated iSCSI seconds run 20x faster, waits are short.
FAST = AttachSettings(
    grace=0.6,
    gather=0.1,
    timeouts=LoginTimeouts(login_timeout=4, retries=1),
    scan_attempts=2,
    scan_timeout=1.0,
    ready_timeout=2.0,
    command_timeout=5.0,
    flush_busy_for=0.05,
    poll=0.01,
)


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = FakeHost(time_scale=0.05)
    fake.add_target(IQN, PORTALS, luns={1: GIB, 2: 2 * GIB}, chap=CHAP)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def connector(host: FakeHost, tmp_path: Any) -> ISCSIMultipathConnector:
    return ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path / "locks")
    )


def connector_with(host: FakeHost, tmp_path: Any, **changes: Any) -> ISCSIMultipathConnector:
    """A connector on ``host`` whose settings are :data:`FAST` with ``changes``."""
    settings = dataclasses.replace(FAST, **changes)
    return ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=settings, lock_path=str(tmp_path)
    )


def plural(
    lun: int = 1, portals: list[str] = PORTALS, iqn: str = IQN, **extra: Any
) -> dict[str, Any]:
    """Plural-only properties, as Pure or 3PAR send them."""
    return {
        "target_portals": list(portals),
        "target_iqns": [iqn] * len(portals),
        "target_luns": [lun] * len(portals),
        "auth_method": "CHAP",
        "auth_username": CHAP[0],
        "auth_password": CHAP[1],
        **extra,
    }


def singular(lun: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "target_portal": PORTALS[0],
        "target_iqn": IQN,
        "target_lun": lun,
        "auth_method": "CHAP",
        "auth_username": CHAP[0],
        "auth_password": CHAP[1],
        **extra,
    }


def torn_down(host: FakeHost) -> bool:
    """Whether the kernel let every logged-out session go: its sysfs objects
    leave a moment after iscsid answers the logout, as on a real host."""
    alive = {f"session{s[0]}" for s in host.sessions()}
    return eventually(lambda: set(host.list_dir("/sys/class/iscsi_session")) == alive)


def eventually(predicate: Callable[[], bool], within: float = 2.0) -> bool:
    """Poll: background work (udev, iscsid, scans) runs on real timers."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
