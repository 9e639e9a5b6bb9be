"""ISCSIMultipathConnector on the FakeHost: the attach and the os-brick API.

Failures, detach and udev's timing have their own modules
(``test_connector_failures.py``, ``test_connector_detach.py``,
``test_connector_udev.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from os_brick.initiator import initiator_connector

from multipath_brick import ISCSIMultipathConnector, verbs
from multipath_brick.inflight import node_records
from multipath_brick.iscsi.iscsiadm import IscsiadmExit, LoginTimeouts, node_settings
from multipath_brick.iscsi.login import PathBringUp
from multipath_brick.iscsi.paths import Path
from multipath_brick.iscsi.properties import Chap, Target
from multipath_brick.locks import Locks
from multipath_brick.scsi.sysfs import SessionInfo
from multipath_brick.tests.unit.conftest import (
    CHAP,
    FAST,
    GIB,
    IQN,
    PORTALS,
    connector_with,
    plural,
    singular,
    torn_down,
)
from multipath_brick.tests.unit.connector_helpers import (
    argvs,
    assert_nothing_left,
    login_intervals,
    overlapping,
    patient,
)


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


def test_logins_run_in_parallel(connector, host):
    # Structure, not timing (speed is measured by lab/bench/fake_attach.py): all four
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
    # One write per record, by the daemon: no iscsiadm -o update process at all.
    updates = [a for a in argvs(host) if a.startswith("iscsiadm -m node") and "-o update" in a]
    assert updates == []
    writes = [a for a in argvs(host) if a.startswith("write-record node")]
    assert len(writes) == len(PORTALS)
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


def test_map_is_made_only_after_the_wwid_is_listed(connector, host):
    # find_multipaths strict: multipathd ignores a WWID it has not been told of.
    # The library whitelists it once, before any map exists, and tells multipathd
    # about a disk only when no map holds it yet.
    info = connector.connect_volume(plural())
    calls = argvs(host)
    whitelists = [i for i, a in enumerate(calls) if a.startswith("write-wwids add")]
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
    assert host.run(setup.write(Target(PORTALS[0], IQN, 1), "default"), timeout=5).ok
    assert host.run(login, timeout=5).exit_code == 0
    assert host.run(login, timeout=5).exit_code == IscsiadmExit.SESS_EXISTS
    bring_up = PathBringUp(
        host,
        Locks(str(tmp_path)),
        records=node_records(host),
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
    assert torn_down(host)
    host.run(verbs.NodeDelete(PORTALS[0], IQN, "default"), timeout=5)
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
