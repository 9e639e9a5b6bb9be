"""ISCSIMultipathConnector on the FakeHost: udev and multipathd taking their time.

Disks that udev or multipathd hold back, and gathering disks into one map.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from multipath_brick.exception import NoUsablePathError
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.tests.unit.conftest import PORTALS, connector_with, plural
from multipath_brick.tests.unit.connector_helpers import assert_nothing_left, late_path_joins


def add_path_asks(host: Any) -> list[Any]:
    """The ``multipathd add path`` calls the host has seen."""
    return [c for c in host.calls if c[0][:3] == ("multipathd", "add", "path")]


def attach_makes_the_map_once(connector: Any, host: Any) -> None:
    """Attach over the 4 portals: every path active, and the map made with all
    four disks by one ``add path``; then detach, leaving nothing."""
    info = connector.connect_volume(plural())
    assert [p["state"] for p in info["paths"]] == ["active"] * 4
    assert len(host.maps()[info["multipath_id"]]) == 4
    asks = add_path_asks(host)
    assert len(asks) == 1, asks
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
    assert not add_path_asks(host)
    assert_nothing_left(host)


def test_paths_multipathd_holds_aside_do_not_hold_the_attach(host, tmp_path):
    # Found in the lab: multipathd adds no path to a new map until udev has
    # processed the map (~6 s with 100 ms portals); "add path" answers ok and
    # the disk joins later by itself. The attach returns as soon as the map is
    # usable, not after the grace, and asks multipathd once per disk, not in a loop.
    # gather=0: the WWID is whitelisted before udev is done with the disks.
    # The wait for udev is 2.4 s real (so the ready_timeout is 4 s), leaving a
    # loaded machine's slower attach room below it.
    connector = connector_with(host, tmp_path, grace=30.0, gather=0.0, ready_timeout=4.0)
    host.set_new_map_udev_wait(48.0)  # 2.4 s real
    # As in the lab, udev finishes with the disks after the WWID is whitelisted,
    # so multipathd makes the map from the first disk's event alone.
    host.set_udev_delay(6.0)
    t0 = time.monotonic()
    info = connector.connect_volume(plural())
    took = time.monotonic() - t0
    states = [p["state"] for p in info["paths"]]
    assert took < 2.0, (took, states)  # neither the 30 s grace nor the 2.4 s wait
    assert "failed" not in states and "active" in states and "pending" in states
    assert connector.wait_for_pending(10)
    assert len(host.maps()[info["multipath_id"]]) == 4
    asks = add_path_asks(host)
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
    attach_makes_the_map_once(connector, host)


def test_gathering_waits_for_udev_on_a_disk_that_exists(host, tmp_path):
    # One portal's disk reaches udev late (0.5 s real, beyond gather's 0.1 s):
    # it exists, so the whitelist waits for it and the map is made once. udev
    # takes a while for every disk (0.2 s real; about a second in the lab), so
    # every path is logged in by the time the first disk is ready.
    host.set_udev_delay(4.0)
    host.set_udev_delay(10.0, portal=PORTALS[2])
    connector = connector_with(host, tmp_path, ready_timeout=5.0)
    attach_makes_the_map_once(connector, host)


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
    asks = add_path_asks(host)
    assert len(asks) == 2, asks
    for lun, info in infos.items():
        connector.disconnect_volume(plural(lun), info)
    assert_nothing_left(host)


def test_gathering_does_not_wait_for_a_path_still_logging_in(host, tmp_path):
    # The floor's shape: the first ready disk waits for the disks of the paths
    # that are logged in, not for a login still under way (a slow or dead
    # portal takes its login timeouts). Here gather (5 s) would outlast the
    # slow login (2.5 s real); the map is made at once with the 3 other disks
    # and the attach returns after the grace (0.6 s), the late disk joining later.
    connector = connector_with(
        host, tmp_path, gather=5.0, timeouts=LoginTimeouts(login_timeout=60, retries=1)
    )
    host.set_latency(PORTALS[3], 50.0)  # 2.5 s real
    host.set_udev_delay(4.0)  # 0.2 s real: the other paths log in meanwhile
    assert late_path_joins(connector, host, PORTALS[3]) < 2.0
    asks = add_path_asks(host)
    assert len(asks) == 1, asks  # the map with 3 disks; the late one by its uevent


def test_gathering_waits_for_the_disk_of_a_logged_in_path(host, tmp_path):
    # A path logged in with its disk still being probed (sd's READ CAPACITY
    # over a slow link, 0.5 s real) is waited for: the map is made once, by
    # one "add path", with all four disks.
    connector = connector_with(host, tmp_path, gather=5.0, ready_timeout=5.0)
    host.set_udev_delay(4.0)  # 0.2 s real: every path logs in meanwhile
    host.set_sd_probe_delay(10.0, portal=PORTALS[1])
    attach_makes_the_map_once(connector, host)
