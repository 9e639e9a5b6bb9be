"""Testing code that attaches volumes, without root: a FakeHost in place of Linux.

Run it with pytest. The code under test is ``attach_and_write``: it stands for
your driver or agent, which takes a connector and a connection-info dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.testing import FakeHost

IQN = "iqn.2024-01.com.example:volume-1"
PORTALS = ["10.0.1.2:3260", "10.0.2.2:3260"]
CHAP = ("user1", "example-not-a-real-secret")


def attach_and_write(connector: ISCSIMultipathConnector, info: dict[str, Any]) -> str:
    """The code under test: attach, and say where the volume is."""
    device = connector.connect_volume(info)
    return str(device["path"])


@pytest.fixture
def host() -> Any:
    # time_scale: a simulated second of login or udev work lasts 0.01 s.
    with FakeHost(time_scale=0.01) as fake:
        fake.add_target(IQN, PORTALS, luns={1: 1 << 30}, chap=CHAP)
        yield fake


def connection_info() -> dict[str, Any]:
    return {
        "target_portals": PORTALS,
        "target_iqns": [IQN, IQN],
        "target_luns": [1, 1],
        "auth_method": "CHAP",
        "auth_username": CHAP[0],
        "auth_password": CHAP[1],
    }


def test_attach_uses_every_portal(host: FakeHost, tmp_path: Path) -> None:
    connector = ISCSIMultipathConnector(host=host, use_multipath=True, lock_path=str(tmp_path))
    path = attach_and_write(connector, connection_info())
    assert path.startswith("/dev/dm-")
    assert len(host.sessions()) == 2  # one session per portal
    connector.disconnect_volume(connection_info(), None)
    assert host.leftovers() == {}  # no session, record, disk, map or wwid left


def test_a_dead_portal_degrades_but_attaches(host: FakeHost, tmp_path: Path) -> None:
    host.set_unreachable(PORTALS[1])
    connector = ISCSIMultipathConnector(
        host=host, use_multipath=True, lock_path=str(tmp_path), grace=0.5
    )
    device = connector.connect_volume(connection_info())
    states = {p["portal"]: p["state"] for p in device["paths"]}
    assert states[PORTALS[0]] == "active"
    assert states[PORTALS[1]] != "active"
    connector.disconnect_volume(connection_info(), device)
    connector.wait_for_pending()
    assert host.leftovers() == {}


def test_wrong_chap_is_an_authentication_error(host: FakeHost, tmp_path: Path) -> None:
    from multipath_brick.exception import AuthenticationError

    connector = ISCSIMultipathConnector(host=host, use_multipath=True, lock_path=str(tmp_path))
    info = dict(connection_info(), auth_password="wrong-password")
    with pytest.raises(AuthenticationError):
        connector.connect_volume(info)
    assert host.leftovers() == {}
