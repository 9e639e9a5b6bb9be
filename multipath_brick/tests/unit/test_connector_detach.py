"""ISCSIMultipathConnector on the FakeHost: detach.

Sessions shared with other LUNs, flush failures and timeouts, repeats.
"""

from __future__ import annotations

import threading

import pytest

from multipath_brick.exception import DetachError, FlushError
from multipath_brick.tests.unit.conftest import FAST, connector_with, plural
from multipath_brick.tests.unit.connector_helpers import assert_nothing_left


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


def test_flush_waits_out_udev_probing_a_new_map(host, tmp_path):
    # Found in the lab: right after attach, udev's probes hold the new map open and
    # "multipath -f" answers "map in use". The detach then lets udev finish,
    # and the next flush goes through (no retry every 0.5 s meanwhile).
    connector = connector_with(host, tmp_path, flush_busy_for=2.0)
    host.set_map_probe_hold(10.0)  # 0.5 s real
    info = connector.connect_volume(plural())
    connector.disconnect_volume(plural(), info)
    flushes = [c for c in host.calls if c[0][:2] == ("multipath", "-f")]
    assert [f[1] for f in flushes] == [1, 0]
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


def test_sessions_are_released_while_the_wwid_is_forgotten(connector, host):
    # Forgetting the WWID may wait for the file's lock (multipath holds it while it
    # edits); the logouts, which no longer have a disk of ours under them, do not
    # wait for it.
    info = connector.connect_volume(plural())
    host.set_wwids_edit_delay(4.0)  # 0.2 s real, within the command timeout
    connector.disconnect_volume(plural(), info)
    assert_nothing_left(host)
    forget = next(c for c in host.calls if c[0][:2] == ("write-wwids", "remove"))
    logouts = [c for c in host.calls if "--logout" in c[0]]
    assert len(logouts) == 4
    assert all(start < forget[3] for _, _, start, _ in logouts)  # begun before it ended


def test_luns_detached_at_once_delete_each_record_once(connector, host):
    # The LUNs of one target share its sessions: the last detach to find no disk
    # on a session logs it out and deletes its record; the others find the record
    # gone (21). The daemon deletes records itself: no iscsiadm process.
    infos = [connector.connect_volume(plural(lun=lun)) for lun in (1, 2)]
    threads = [
        threading.Thread(target=connector.disconnect_volume, args=(plural(lun=lun), info))
        for lun, info in zip((1, 2), infos, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_nothing_left(host)
    deletes = [c for c in host.calls if c[0][:2] == ("delete-record", "node")]
    assert sorted(code for _, code, _, _ in deletes if code != 21) == [0] * 4
    assert not [c for c in host.calls if c[0][0] == "iscsiadm" and "delete" in c[0]]
    connector.disconnect_volume(plural(lun=1), infos[0])  # again: nothing to delete
    again = [c for c in host.calls if c[0][:2] == ("delete-record", "node")][len(deletes) :]
    assert {code for _, code, _, _ in again} <= {21}
