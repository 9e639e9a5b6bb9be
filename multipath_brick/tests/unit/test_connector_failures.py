"""ISCSIMultipathConnector on the FakeHost: what fails, or comes late.

Dead, slow and refusing portals, a map that never gets ready, multipathd down.
"""

from __future__ import annotations

import logging

import pytest
from os_brick import exception as brick_exception

from multipath_brick.exception import (
    AuthenticationError,
    DeviceNotReadyTimeout,
    MultipathUnavailableError,
    NoUsablePathError,
)
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.tests.unit.conftest import PORTALS, connector_with, plural
from multipath_brick.tests.unit.connector_helpers import (
    assert_nothing_left,
    late_path_joins,
    patient,
)


def test_map_never_ready_raises_and_cleans_up_when_multipath_is_enforced(host, tmp_path):
    host.set_map_ready_delay(10_000)
    connector = connector_with(host, tmp_path, ready_timeout=0.5)
    with pytest.raises(DeviceNotReadyTimeout):
        connector.connect_volume(plural(enforce_multipath=True))
    assert_nothing_left(host)


def test_map_never_ready_gives_one_disk_with_a_warning_as_os_brick(host, tmp_path, caplog):
    # os-brick returns the sdX when no dm forms ("connection to volume is probably
    # bad"); here the failed map is undone first, then one path is attached.
    host.set_map_ready_delay(10_000)
    connector = connector_with(host, tmp_path, ready_timeout=0.5)
    with caplog.at_level(logging.WARNING):
        info = connector.connect_volume(plural())
    assert info["path"].startswith("/dev/sd")
    assert "multipath_id" not in info
    assert "attaching one path" in caplog.text
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_dead_portal_does_not_hold_the_attach(host, tmp_path):
    # The dead login lasts 30 simulated seconds (1.5 s real); the grace is 0.6 s.
    # Returning with that path still pending proves we did not wait for it.
    connector = patient(host, tmp_path)
    host.set_unreachable(PORTALS[3], True)
    info = connector.connect_volume(plural())
    states = {p["portal"]: p["state"] for p in info["paths"]}
    assert [states[p] for p in PORTALS[:3]] == ["active"] * 3
    assert states[PORTALS[3]] == "pending"
    assert len(host.maps()[info["multipath_id"]]) == 3
    assert connector.wait_for_pending(10)
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_slow_portal_joins_the_map_in_the_background(host, tmp_path):
    # The slow portal holds back neither the map (gather: 0.1 s) nor the
    # return (grace: 0.6 s): the attach returns well before its login ends.
    # The login lasts 2.5 s real, so that a loaded machine's slower attach
    # (grace included) still has room below it.
    connector = connector_with(host, tmp_path, timeouts=LoginTimeouts(login_timeout=60, retries=1))
    host.set_latency(PORTALS[3], 50.0)  # 2.5 s real
    assert late_path_joins(connector, host, PORTALS[3]) < 2.4


def test_detach_while_a_path_is_pending_leaves_nothing(host, tmp_path):
    connector = patient(host, tmp_path)
    host.set_latency(PORTALS[3], 10.0)
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    assert connector.wait_for_pending(10)
    assert_nothing_left(host)


def test_all_portals_dead(connector, host):
    for portal in PORTALS:
        host.set_unreachable(portal, True)
    with pytest.raises(NoUsablePathError) as info:
        connector.connect_volume(plural())
    assert isinstance(info.value, brick_exception.VolumeDeviceNotFound)
    assert not isinstance(info.value, AuthenticationError)
    assert len(info.value.failures) == 4
    assert all("TRANS_TIMEOUT" in reason for _, reason in info.value.failures)
    assert_nothing_left(host)


def test_wrong_chap_is_an_authentication_error(connector, host):
    with pytest.raises(AuthenticationError) as info:
        connector.connect_volume(plural(auth_password="not-the-password"))
    assert "not-the-password" not in str(info.value)
    assert all("LOGIN_AUTH_FAILED" in reason for _, reason in info.value.failures)
    assert_nothing_left(host)


def test_multipathd_down_and_enforced_is_a_clear_error(connector, host):
    host.set_multipathd_running(False)
    with pytest.raises(MultipathUnavailableError) as info:
        connector.connect_volume(plural(enforce_multipath=True))
    assert "enforce_multipath" in str(info.value)
    assert isinstance(info.value, brick_exception.BrickException)
    assert_nothing_left(host)


def test_multipathd_down_not_enforced_attaches_one_path_with_a_warning(connector, host, caplog):
    # cinder's image transfer relies on this (os-brick's check_multipath).
    host.set_multipathd_running(False)
    with caplog.at_level(logging.WARNING):
        info = connector.connect_volume(plural())
    assert "doesn't support multipathing" in caplog.text
    assert info["path"].startswith("/dev/sd")
    assert len(host.sessions()) == 1
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)
