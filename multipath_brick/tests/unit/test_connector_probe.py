"""sd's probe: a scanned LUN's SCSI device exists at once, its block device later.

An attach holds the path's node-record lock only until its LUN's SCSI device
exists. These tests give the fake host a probe delay (about 1 s per LUN in the
lab, over 100 ms links) and check what that must and must not change.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.exception import NoUsablePathError
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import connector_with, eventually, plural

PROBE = 40.0  # simulated seconds: 2 s real at the fixture's time scale


def connector_for(host: FakeHost, tmp_path, scan_timeout: float) -> ISCSIMultipathConnector:
    return connector_with(host, tmp_path, scan_timeout=scan_timeout, ready_timeout=scan_timeout)


def disks_of(host: FakeHost, lun: int) -> list[str]:
    return [name for name, (hctl, _) in host.disks().items() if hctl.endswith(f":{lun}")]


def probed(host: FakeHost, name: str) -> bool:
    return host.exists(f"/sys/block/{name}")


def test_the_next_luns_scan_does_not_wait_for_the_previous_block_device(host, tmp_path):
    host.set_sd_probe_delay(PROBE)
    connector = connector_for(host, tmp_path, scan_timeout=3 * PROBE)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(connector.connect_volume, plural(lun=1))
        assert eventually(lambda: len(disks_of(host, 1)) == 4, within=5.0)
        second = pool.submit(connector.connect_volume, plural(lun=2))
        # LUN 2 is scanned on the same 4 sessions while sd still probes LUN 1.
        assert eventually(lambda: len(disks_of(host, 2)) == 4, within=1.5)
        assert not any(probed(host, name) for name in disks_of(host, 1))
        infos = [first.result(timeout=30), second.result(timeout=30)]
    assert [len(host.maps()[info["multipath_id"]]) for info in infos] == [4, 4]
    for lun, info in zip((1, 2), infos, strict=True):
        connector.disconnect_volume(plural(lun=lun), info)
    assert host.leftovers() == {}


def test_a_detach_keeps_the_sessions_of_a_lun_still_being_probed(host, tmp_path):
    connector = connector_for(host, tmp_path, scan_timeout=3 * PROBE)
    info1 = connector.connect_volume(plural(lun=1))
    host.set_sd_probe_delay(PROBE)
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(connector.connect_volume, plural(lun=2))
        assert eventually(lambda: len(disks_of(host, 2)) == 4, within=1.5)
        assert not any(probed(host, name) for name in disks_of(host, 2))
        # LUN 1 was the only LUN with a block device on these sessions.
        connector.disconnect_volume(plural(lun=1), info1)
        assert len(host.sessions()) == 4
        info2 = second.result(timeout=30)
    assert [p["state"] for p in info2["paths"]].count("failed") == 0
    assert len(host.maps()[info2["multipath_id"]]) == 4
    connector.disconnect_volume(plural(lun=2), info2)
    assert host.leftovers() == {}


def test_a_lun_that_gets_no_block_device_is_removed_again(host, tmp_path):
    host.set_sd_probe_delay(1000.0)  # sd never finishes within the scan timeout
    connector = connector_for(host, tmp_path, scan_timeout=4.0)
    with pytest.raises(NoUsablePathError, match="got no block device"):
        connector.connect_volume(plural(lun=1))
    assert host.leftovers() == {}
