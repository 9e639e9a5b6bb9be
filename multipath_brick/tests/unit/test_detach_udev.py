"""Detach and udev: a map is probed by udev after each change of its table.

A flush while udev probes the map answers "map in use"; the detach then lets
udev finish (``/run/udev/queue``) before it flushes again, and still retries
briefly for an opener that is not udev. A map nobody holds is flushed at once,
however busy udev is with other devices.
"""

from __future__ import annotations

import threading

from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.tests.unit.conftest import PORTALS, connector_with, eventually, plural


def assert_nothing_left(host):
    assert host.leftovers() == {}


def test_a_plain_detach_right_after_attach_waits_for_udev_after_the_late_join(host, tmp_path):
    # Found in the lab with 100 ms on every portal: the detach waits for the late
    # path, whose joining reloads the map; udev then probes the map again and
    # holds it open for longer than the flush's short retry. The detach lets
    # udev finish after the first "map in use" (it has /run/udev/queue until then).
    connector = connector_with(
        host, tmp_path, ready_timeout=5.0, timeouts=LoginTimeouts(login_timeout=30, retries=1)
    )
    host.set_latency(PORTALS[3], 20.0)  # 1 s real: pending at return (grace 0.6 s)
    host.set_map_probe_hold(40.0)  # 2 s real after each change of the map
    for _ in range(2):
        info = connector.connect_volume(plural())
        assert [p["state"] for p in info["paths"]][3] == "pending"
        connector.disconnect_volume(plural(), info)
        assert_nothing_left(host)
        flushes = [c for c in host.calls if c[0][:2] == ("multipath", "-f")]
        assert flushes[-1][1] == 0


def test_a_flush_still_retries_a_map_in_use_without_udev_events(host, tmp_path):
    # A host without systemd-udevd's queue file (or an opener that is not udev):
    # the flush's own retry stays.
    connector = connector_with(host, tmp_path, flush_busy_for=2.0)
    info = connector.connect_volume(plural())
    host.fail_flush(info["multipath_id"])
    threading.Timer(0.3, host.fail_flush, args=(info["multipath_id"], False)).start()
    connector.disconnect_volume(plural(), info)
    flushes = [c for c in host.calls if c[0][:2] == ("multipath", "-f")]
    assert len(flushes) > 1 and flushes[-1][1] == 0
    assert_nothing_left(host)


def test_a_map_nobody_holds_is_flushed_while_udev_is_busy_elsewhere(host, tmp_path):
    # udev's queue is the whole host's: 8 volumes detached at once in the lab
    # kept it busy 4.5-6.3 s before each flush, while their maps were free.
    connector = connector_with(host, tmp_path, ready_timeout=30.0)
    info = connector.connect_volume(plural(1))
    host.set_udev_delay(40.0)  # 2 s real for each of the next volume's disks
    attached = []
    other = threading.Thread(target=lambda: attached.append(connector.connect_volume(plural(2))))
    other.start()
    try:
        assert eventually(lambda: host.exists("/run/udev/queue"))
        connector.disconnect_volume(plural(1), info)
        assert host.exists("/run/udev/queue")  # the detach did not wait for it
        assert info["multipath_id"] not in host.maps()
        flushes = [c for c in host.calls if c[0][:2] == ("multipath", "-f")]
        assert [code for _, code, *_ in flushes] == [0]
    finally:
        other.join()
    connector.disconnect_volume(plural(2), attached[0])
    assert_nothing_left(host)
