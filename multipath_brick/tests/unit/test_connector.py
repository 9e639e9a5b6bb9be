"""ISCSIMultipathConnector on the FakeHost: attach, detach, extend, failures."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from os_brick import exception as brick_exception
from os_brick.initiator import initiator_connector

from multipath_brick import ISCSIMultipathConnector, verbs
from multipath_brick.exception import (
    AuthenticationError,
    DetachError,
    DeviceNotReadyTimeout,
    FlushError,
    MultipathUnavailableError,
    NoUsablePathError,
)
from multipath_brick.iscsi.iscsiadm import IscsiadmExit, LoginTimeouts, node_settings
from multipath_brick.iscsi.login import PathBringUp
from multipath_brick.iscsi.paths import Path
from multipath_brick.iscsi.properties import Chap, Target
from multipath_brick.locks import Locks
from multipath_brick.scsi.sysfs import SessionInfo
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import (
    CHAP,
    FAST,
    GIB,
    IQN,
    PORTALS,
    connector_with,
    plural,
    singular,
)


def argvs(host: FakeHost) -> list[str]:
    return [" ".join(call[0]) for call in host.calls]


def assert_nothing_left(host: FakeHost) -> None:
    assert host.leftovers() == {}


def test_is_an_os_brick_connector(connector):
    assert isinstance(connector, initiator_connector.InitiatorConnector)
    assert connector.get_search_path() == "/dev/disk/by-path"


def test_plural_connect_returns_the_map_with_every_path(connector, host):
    info = connector.connect_volume(plural())
    wwid = host.targets[IQN].wwid(1) if hasattr(host, "targets") else info["multipath_id"]
    assert info["type"] == "block"
    assert info["path"].startswith("/dev/dm-")
    assert info["multipath_id"] == info["scsi_wwn"] == wwid
    assert [p["state"] for p in info["paths"]] == ["active"] * 4
    assert [p["portal"] for p in info["paths"]] == PORTALS
    assert all(p["iface"] == "default" for p in info["paths"])
    map_name = info["path"].rsplit("/", 1)[1]
    assert len(host.maps()[wwid] if wwid in host.maps() else host.maps()[map_name]) == 4
    assert connector.check_valid_device(info["path"])
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def patient(host: FakeHost, tmp_path) -> ISCSIMultipathConnector:
    """A connector whose login timeout (30 s simulated) outlasts slow portals."""
    return connector_with(host, tmp_path, timeouts=LoginTimeouts(login_timeout=30, retries=1))


def login_intervals(host: FakeHost, iqn: str = IQN) -> list[tuple[float, float]]:
    return [(call[2], call[3]) for call in host.calls if "--login" in call[0] and iqn in call[0]]


def overlapping(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """Every interval of ``a`` overlaps every interval of ``b``: they ran at once."""
    return all(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def test_logins_run_in_parallel(connector, host):
    # Structure, not timing (speed is measured by bench/attach.py): all four
    # logins are in flight at the same moment, each path's as soon as its own
    # record is written.
    for portal in PORTALS:
        host.set_latency(portal, 2.0)
    info = connector.connect_volume(plural())
    assert host.max_concurrent_logins == 4
    intervals = login_intervals(host)
    assert len(intervals) == 4 and overlapping(intervals, intervals)
    connector.disconnect_volume(plural(), info)


def test_chap_and_manual_scan_written_on_every_portal_with_iface(connector, host):
    info = connector.connect_volume(plural())
    for portal in PORTALS:
        settings = host.node_settings(portal, IQN, "default")
        assert settings["node.session.auth.authmethod"] == "CHAP"
        assert settings["node.session.auth.username"] == CHAP[0]
        assert settings["node.session.auth.password"] == CHAP[1]
        assert settings["node.session.scan"] == "manual"
        assert settings["node.conn[0].timeo.login_timeout"] == "4"
    for argv in argvs(host):
        if argv.startswith("iscsiadm -m node -T"):
            assert " -I default " in argv
    assert CHAP[1] not in "\n".join(argvs(host))
    # One update per record: every call takes iscsiadm's node database lock.
    updates = [a for a in argvs(host) if a.startswith("iscsiadm -m node") and "-o update" in a]
    assert len(updates) == len(PORTALS)
    connector.disconnect_volume(plural(), info)


def test_manual_scan_creates_only_the_wanted_lun(connector, host):
    info = connector.connect_volume(plural(lun=2))
    luns = {hctl.rsplit(":", 1)[1] for hctl, _ in host.disks().values()}
    assert luns == {"2"}
    connector.disconnect_volume(plural(lun=2), info)
    assert_nothing_left(host)


def test_singular_properties_discover_the_other_portals(connector, host):
    info = connector.connect_volume(singular())
    assert sorted(p["portal"] for p in info["paths"]) == sorted(PORTALS)
    assert info["paths"][0]["portal"] == PORTALS[0]
    assert "--discover" in "\n".join(argvs(host))
    # Discovery leaves no records of its own behind.
    connector.disconnect_volume(singular(), info)
    assert_nothing_left(host)


def test_singular_detach_without_device_info_finds_discovered_paths(connector, host):
    connector.connect_volume(singular())
    connector.disconnect_volume(singular(), None)
    assert_nothing_left(host)


def test_map_is_made_only_after_multipath_a(connector, host):
    # find_multipaths strict: multipathd ignores a WWID it has not been told of.
    # The library whitelists it once, before any map exists, and tells multipathd
    # about a disk only when no map holds it yet.
    info = connector.connect_volume(plural())
    calls = argvs(host)
    whitelists = [i for i, a in enumerate(calls) if a.startswith("multipath -a")]
    adds = [i for i, a in enumerate(calls) if a.startswith("multipathd add path")]
    assert len(whitelists) == 1
    assert all(whitelists[0] < i for i in adds)
    assert len(adds) <= 1
    assert host.wwids() == [info["multipath_id"]]
    connector.disconnect_volume(plural(), info)


def test_waits_for_the_map_to_be_ready(connector, host):
    host.set_map_ready_delay(6.0)  # 0.3 s real
    start = time.monotonic()
    info = connector.connect_volume(plural())
    assert time.monotonic() - start >= 0.25
    assert connector.check_valid_device(info["path"])
    connector.disconnect_volume(plural(), info)


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


def test_slow_portal_joins_the_map_in_the_background(host, tmp_path):
    # The slow portal holds back neither the map (gather: 0.1 s) nor the
    # return (grace: 0.6 s).
    host.set_latency(PORTALS[3], 25.0)  # 1.25 s real
    assert late_path_joins(patient(host, tmp_path), host, PORTALS[3]) < 1.2


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


def test_without_multipath_the_first_working_disk(host, tmp_path):
    connector = ISCSIMultipathConnector(
        host=host, use_multipath=False, settings=FAST, lock_path=str(tmp_path)
    )
    host.set_unreachable(PORTALS[0], True)
    info = connector.connect_volume(plural())
    assert info["path"].startswith("/dev/sd")
    assert "multipath_id" not in info
    assert len(host.sessions()) == 1
    assert host.maps() == {}
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_detach_keeps_sessions_used_by_another_lun(connector, host):
    one = connector.connect_volume(plural(lun=1))
    two = connector.connect_volume(plural(lun=2))
    assert len(host.sessions()) == 4  # the second volume reused the sessions
    connector.disconnect_volume(plural(lun=1), one)
    assert len(host.sessions()) == 4
    assert one["multipath_id"] not in host.maps()
    assert len(host.maps()[two["multipath_id"]]) == 4
    connector.disconnect_volume(plural(lun=2), two)
    assert_nothing_left(host)


def test_flush_failure_stops_detach_unless_forced(connector, host):
    info = connector.connect_volume(plural())
    host.fail_flush(None, True)
    with pytest.raises(FlushError):
        connector.disconnect_volume(plural(), info)
    assert len(host.disks()) == 4 and len(host.sessions()) == 4  # nothing removed under it
    connector.disconnect_volume(plural(), info, ignore_errors=True)  # stops, does not raise
    assert len(host.disks()) == 4
    with pytest.raises(DetachError) as error:
        connector.disconnect_volume(plural(), info, force=True)
    assert "flush" in str(error.value)
    assert host.disks() == {} and host.sessions() == []
    host.fail_flush(None, False)
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_a_flush_slower_than_the_command_timeout_is_waited_for(connector, host):
    info = connector.connect_volume(plural())
    host.set_flush_delay(2 * FAST.command_timeout)  # multipath waiting for a busy udev
    connector.disconnect_volume(plural(), info)
    flushes = [code for argv, code, *_ in host.calls if argv[:2] == ("multipath", "-f")]
    assert flushes == [0]  # not killed: a kill can leave a suspended map
    assert_nothing_left(host)


def test_a_flush_killed_after_removing_the_map_does_not_stop_the_detach(host, tmp_path):
    connector = connector_with(host, tmp_path, command_timeout=1.0)  # flush killed at 10 s
    info = connector.connect_volume(plural())
    host.set_flush_delay(60.0)
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_a_flush_killed_before_removing_the_map_stops_the_detach_and_says_so(host, tmp_path):
    connector = connector_with(host, tmp_path, command_timeout=1.0)
    info = connector.connect_volume(plural())
    host.set_flush_delay(60.0, removes_first=False)
    with pytest.raises(FlushError, match=r"multipath -f \S+ timed out after \d+ s"):
        connector.disconnect_volume(plural(), info)
    assert len(host.maps()) == 1 and len(host.disks()) == 4  # nothing removed under it
    host.set_flush_delay(0.0)
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_disconnect_twice_and_never_attached(connector, host):
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    connector.disconnect_volume(plural(), info)
    connector.disconnect_volume(plural(lun=2), None)
    assert_nothing_left(host)


def test_extend_returns_the_new_size(connector, host):
    info = connector.connect_volume(plural())
    host.resize_lun(IQN, 1, 3 * GIB)
    assert connector.extend_volume(plural()) == 3 * GIB
    connector.disconnect_volume(plural(), info)


def test_two_volumes_attach_concurrently(host, tmp_path):
    other = "iqn.2024-01.test.mpb:target2"
    host.add_target(other, PORTALS, luns={7: GIB}, chap=CHAP)
    for portal in PORTALS:
        host.set_latency(portal, 10.0)  # 0.5 s real per login
    connector = patient(host, tmp_path)
    results: dict[str, dict[str, Any]] = {}

    def attach(name: str, props: dict[str, Any]) -> None:
        results[name] = connector.connect_volume(props)

    threads = [
        threading.Thread(target=attach, args=("a", plural(lun=1))),
        threading.Thread(target=attach, args=("b", plural(lun=7, iqn=other))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One host-wide lock would run one volume's logins after the other's.
    assert overlapping(login_intervals(host, IQN), login_intervals(host, other))
    assert host.max_concurrent_logins == 8
    assert results["a"]["multipath_id"] != results["b"]["multipath_id"]
    connector.disconnect_volume(plural(lun=1), results["a"])
    connector.disconnect_volume(plural(lun=7, iqn=other), results["b"])
    assert_nothing_left(host)


def test_one_info_line_per_attach_and_no_password_anywhere(connector, host, caplog):
    caplog.set_level(logging.DEBUG, logger="multipath_brick")
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    attach_lines = [r for r in caplog.records if r.getMessage().startswith("attached ")]
    assert len(attach_lines) == 1 and attach_lines[0].levelno == logging.INFO
    assert "active" in attach_lines[0].getMessage()
    assert all(CHAP[1] not in r.getMessage() for r in caplog.records)
    assert CHAP[1] not in repr(host.calls)


def test_connector_properties(host):
    props = ISCSIMultipathConnector.get_connector_properties(None, system=host)
    assert props["multipath"] is True
    assert props["initiator"].startswith("iqn.")


def test_volume_paths_and_available_volumes(connector, host):
    info = connector.connect_volume(plural())
    paths = connector.get_volume_paths(plural())
    assert len(paths) == 4 and all(p.startswith("/dev/disk/by-path/ip-") for p in paths)
    assert sorted(connector.get_all_available_volumes()) == sorted(paths)
    connector.disconnect_volume(plural(), info)
    assert connector.get_volume_paths(plural()) == []


def test_session_exists_exit_15_is_success(host, tmp_path):
    # Another process (not using our locks) logs in between our look at sysfs and
    # our own login: iscsiadm answers 15, which must count as success.
    path = Path(Target(PORTALS[0], IQN, 1))
    login = verbs.NodeLogin(PORTALS[0], IQN, "default")
    host.run(verbs.NodeNew(PORTALS[0], IQN, "default"), timeout=5)
    setup = node_settings(Chap(*CHAP), LoginTimeouts())
    host.run(verbs.NodeUpdate(PORTALS[0], IQN, "default", setup.settings), timeout=5)
    secrets = setup.secrets(Target(PORTALS[0], IQN, 1), "default")
    assert secrets is not None and host.run(secrets, timeout=5).ok
    assert host.run(login, timeout=5).exit_code == 0
    assert host.run(login, timeout=5).exit_code == IscsiadmExit.SESS_EXISTS
    bring_up = PathBringUp(
        host,
        Locks(str(tmp_path)),
        chap=Chap(*CHAP),
        timeouts=LoginTimeouts(),
        scan_attempts=1,
        scan_timeout=1.0,
        poll=0.01,
        command_timeout=5.0,
    )
    session = bring_up._login(path)  # our login: answered 15
    assert isinstance(session, SessionInfo) and session.portal == PORTALS[0]
    host.run(verbs.NodeLogout(PORTALS[0], IQN, "default"), timeout=5)
    host.run(verbs.NodeDelete(PORTALS[0], IQN, "default"), timeout=5)
    assert_nothing_left(host)


def test_flush_waits_out_udev_probing_a_new_map(host, tmp_path):
    # Found in the lab: right after attach, udev's probes hold the new map open and
    # "multipath -f" answers "map in use". The detach lets udev finish first.
    connector = connector_with(host, tmp_path, flush_busy_for=2.0)
    host.set_map_probe_hold(10.0)  # 0.5 s real
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    flushes = [c for c in host.calls if c[0][:2] == ("multipath", "-f")]
    assert [f[1] for f in flushes] == [0]
    assert_nothing_left(host)


def test_a_map_held_open_longer_than_the_retries_is_not_removed(connector, host):
    host.set_map_probe_hold(10_000)
    info = connector.connect_volume(plural())
    with pytest.raises(FlushError):
        connector.disconnect_volume(plural(), info)
    assert len(host.disks()) == 4
    host.set_map_probe_hold(0)
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_disks_join_the_map_even_when_udev_is_slower_than_us(connector, host):
    # Found in the lab: multipathd reads a disk's WWID from udev's database, so
    # "add path" for a disk udev has not processed leaves a path without WWID
    # (and answers fail). The library waits for udev before it asks; the path
    # is active only once a map holds its disk.
    host.set_udev_delay(20.0)  # 1 s real: far longer than a path takes to reach "add path"
    info = connector.connect_volume(plural())
    assert "failed" not in [p["state"] for p in info["paths"]]
    assert connector.wait_for_pending(10)
    assert len(host.maps()[info["multipath_id"]]) == 4
    refused = [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path") and c[1]]
    assert refused == []  # never asked before udev was done
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_a_disk_udev_never_processes_fails_with_udev_named(connector, host):
    # udev 10 s behind (real), ready_timeout 2 s: the library never asks
    # multipathd, and the error says what it waited for.
    host.set_udev_delay(200.0)
    with pytest.raises(NoUsablePathError) as caught:
        connector.connect_volume(plural())
    assert "udev had not processed sd" in str(caught.value)
    assert not [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]
    assert_nothing_left(host)


def test_paths_multipathd_holds_aside_do_not_hold_the_attach(host, tmp_path):
    # Found in the lab: multipathd adds no path to a new map until udev has
    # processed the map (~6 s with 100 ms portals); "add path" answers ok and
    # the disk joins later by itself. The attach returns as soon as the map is
    # usable, not after the grace, and asks multipathd once per disk, not in a loop.
    # gather=0: the WWID is whitelisted before udev is done with the disks.
    connector = connector_with(host, tmp_path, grace=30.0, gather=0.0)
    host.set_new_map_udev_wait(24.0)  # 1.2 s real (FAST.ready_timeout is 2 s)
    # As in the lab, udev finishes with the disks after the WWID is whitelisted,
    # so multipathd makes the map from the first disk's event alone.
    host.set_udev_delay(6.0)
    t0 = time.monotonic()
    info = connector.connect_volume(plural())
    took = time.monotonic() - t0
    states = [p["state"] for p in info["paths"]]
    assert took < 1.0, (took, states)  # neither the 30 s grace nor the 1.2 s wait
    assert "failed" not in states and "active" in states and "pending" in states
    assert connector.wait_for_pending(10)
    assert len(host.maps()[info["multipath_id"]]) == 4
    asks = [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]
    assert len(asks) <= 4, asks
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_gathered_disks_make_the_map_at_once(host, tmp_path):
    # Whitelisting once every disk is ready lets one "add path" make the map
    # with all four: multipathd never holds a disk aside for a map that udev
    # is still processing, and the attach needs no second ask.
    connector = connector_with(host, tmp_path, grace=30.0)
    host.set_new_map_udev_wait(24.0)
    host.set_udev_delay(6.0)
    info = connector.connect_volume(plural())
    assert [p["state"] for p in info["paths"]] == ["active"] * 4
    assert len(host.maps()[info["multipath_id"]]) == 4
    asks = [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]
    assert len(asks) == 1, asks
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_gathering_waits_for_udev_on_a_disk_that_exists(host, tmp_path):
    # One portal's disk reaches udev late (0.5 s real, beyond gather's 0.1 s):
    # it exists, so the whitelist waits for it and the map is made once.
    host.set_udev_delay(10.0, portal=PORTALS[2])
    connector = connector_with(host, tmp_path, ready_timeout=5.0)
    info = connector.connect_volume(plural())
    assert [p["state"] for p in info["paths"]] == ["active"] * 4
    asks = [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]
    assert len(asks) == 1, asks
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_gathering_waits_at_most_gather_udev_for_a_slow_udev(host, tmp_path):
    host.set_udev_delay(30.0, portal=PORTALS[2])  # 1.5 s real
    connector = connector_with(host, tmp_path, grace=0.2, gather_udev=0.3, ready_timeout=5.0)
    assert late_path_joins(connector, host, PORTALS[2]) < 1.2


def test_reattach_of_a_whitelisted_volume_does_not_wait_to_gather(host, tmp_path):
    # With the WWID already in /etc/multipath/wwids (os-brick leaves it there on
    # detach; we take it out), multipathd maps the first disk from its own
    # uevent and holds the others aside while udev processes the new map. The
    # disk already in the map needs no gathering, and the others must not wait for it.
    connector = connector_with(host, tmp_path, grace=30.0)
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    assert host.wwids() == []
    host.remember_wwid(info["multipath_id"])
    host.set_new_map_udev_wait(24.0)  # 1.2 s real
    host.set_udev_delay(2.0)  # the paths look at their disks before udev is done
    t0 = time.monotonic()
    info = connector.connect_volume(plural())
    took = time.monotonic() - t0
    assert took < 1.0, (took, info["paths"])
    assert connector.wait_for_pending(10)
    assert len(host.maps()[info["multipath_id"]]) == 4
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)


def test_concurrent_attaches_gather_their_disks(host, tmp_path):
    # Two volumes at once: each waits for its own disks before whitelisting,
    # so each map is made by one "add path" with all four disks.
    connector = connector_with(host, tmp_path, grace=30.0, ready_timeout=5.0)
    host.set_new_map_udev_wait(24.0)
    host.set_udev_delay(6.0)
    infos: dict[int, dict[str, Any]] = {}

    def attach(lun: int) -> None:
        infos[lun] = connector.connect_volume(plural(lun))

    threads = [threading.Thread(target=attach, args=(lun,)) for lun in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for lun, info in infos.items():
        assert [p["state"] for p in info["paths"]] == ["active"] * 4, (lun, info["paths"])
    asks = [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]
    assert len(asks) == 2, asks
    for lun, info in infos.items():
        connector.disconnect_volume(plural(lun), info)
    assert_nothing_left(host)


def test_extend_right_after_attach_waits_for_multipathd(host, tmp_path):
    # Found in the lab: with every disk gathered, the attach returns as soon as
    # the map exists, while multipathd still waits for udev to process it and
    # answers "fail" to "resize map" until then.
    connector = connector_with(host, tmp_path, grace=30.0)
    host.set_new_map_udev_wait(10.0)  # 0.5 s real
    info = connector.connect_volume(plural())
    host.resize_lun(IQN, 1, 3 * GIB)
    assert connector.extend_volume(plural()) == 3 * GIB
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)
