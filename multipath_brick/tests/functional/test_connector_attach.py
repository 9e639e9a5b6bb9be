"""ISCSIMultipathConnector on the real stack: attach, I/O, extend, detach.

Every test runs in the lab guest (real kernel, open-iscsi, multipathd, tgt
behind 4 portals with CHAP) and ends with the autouse no-leftovers check (no
session, node or discovery record, sdX or multipath map).

Timing under TCG: each iscsiadm call costs ~0.15 s in the guest and the
library writes a path's node record with ~10 of them, serialised across the
paths of a process, so a path is ready every ~2.5 s. With the default grace
(5 s) an attach of 4 healthy paths therefore returns with the last one or two
still pending; the tests accept "pending" at return and wait for the
background paths (``wait_for_pending``) before checking the full map.
"""

from __future__ import annotations

import os
import time
from typing import Any

from multipath_brick.tests.lab.api import Lab

from .conftest import (
    ConnectorFactory,
    Note,
    attach_every_path,
    dev_size_bytes,
    dm_name,
    dm_uuid,
    host_state,
    read_sha256,
    volume_props,
    wait_slaves,
    write_random,
)

IO_MIB = 32


def _states(info: dict[str, Any]) -> dict[str, str]:
    return {p["portal"]: p["state"] for p in info["paths"]}


def _active_devices(info: dict[str, Any]) -> list[str]:
    return sorted(os.path.basename(p["device"]) for p in info["paths"] if p["state"] == "active")


def test_plural_four_portals_chap_io(
    lab: Lab, make_connector: ConnectorFactory, tmp_path, note: Note
) -> None:
    """Scenario 1: plural properties, 4 portals, CHAP, default connector settings:
    /dev/dm-N over 4 sdX, multipath_id = WWID, 32 MiB round trip, clean detach."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector()  # defaults: grace 5 s, LoginTimeouts()
    props = volume_props(lab, 1)

    t0 = time.monotonic()
    info = connector.connect_volume(props)
    note("attach_seconds", round(time.monotonic() - t0, 2))
    note("path_states", _states(info))

    dm = dm_name(info["path"])
    assert info["path"] == f"/dev/{dm}"
    assert info["multipath_id"] == wwid
    assert info["scsi_wwn"] == wwid
    assert dm_uuid(dm) == f"mpath-{wwid}"
    assert sorted(_states(info)) == sorted(lab.portals)
    # No path failed; the ones still logging in (TCG slowness) are pending.
    assert set(_states(info).values()) <= {"active", "pending"}, info["paths"]
    active = _active_devices(info)
    assert active, info["paths"]
    assert set(active) <= set(lab.dm_slaves(dm)), (active, host_state())

    assert connector.wait_for_pending(timeout=120)
    slaves = wait_slaves(lab, dm, 4)
    assert all(s.startswith("sd") for s in slaves), slaves
    assert slaves == sorted(lab.disks_for_wwid(wwid))
    tgt_side = [s for s in lab.target_sessions() if s["target"] == lab.iqn]
    assert len(tgt_side) == 4

    t0 = time.monotonic()
    expected = write_random(info["path"], str(tmp_path), IO_MIB)
    assert read_sha256(info["path"], IO_MIB) == expected
    note("io_seconds", round(time.monotonic() - t0, 2))

    t0 = time.monotonic()
    connector.disconnect_volume(props, info)
    note("detach_seconds", round(time.monotonic() - t0, 2))
    assert lab.dm_for_wwid(wwid) is None
    assert lab.disks_for_wwid(wwid) == []
    assert not lab.target_sessions()


def test_two_luns_same_target_detach_one(
    lab: Lab, make_connector: ConnectorFactory, tmp_path
) -> None:
    """Scenario 7: two LUNs share the target's 4 sessions; detaching one keeps
    the other's sessions, disks, map and data."""
    wwid1 = lab.add_lun(1, 64)
    wwid2 = lab.add_lun(2, 64)
    connector = make_connector(grace=10)
    props1, props2 = volume_props(lab, 1), volume_props(lab, 2)

    info1 = connector.connect_volume(props1)
    info2 = connector.connect_volume(props2)
    assert connector.wait_for_pending(timeout=120)
    assert info1["multipath_id"] == wwid1 and info2["multipath_id"] == wwid2
    dm1, dm2 = dm_name(info1["path"]), dm_name(info2["path"])
    assert dm1 != dm2
    wait_slaves(lab, dm1, 4)
    slaves2 = wait_slaves(lab, dm2, 4)
    # The second volume re-used the first one's sessions: still 4, not 8.
    assert len(lab.leftovers()["sessions"]) == 4

    sum1 = write_random(info1["path"], str(tmp_path), 8)
    sum2 = write_random(info2["path"], str(tmp_path), IO_MIB)

    connector.disconnect_volume(props1, info1)

    assert lab.dm_for_wwid(wwid1) is None
    assert lab.disks_for_wwid(wwid1) == []
    left = lab.leftovers()
    assert len(left["sessions"]) == 4, left
    assert len(left["node_records"]) == 4, left
    assert lab.dm_for_wwid(wwid2) == dm2
    assert lab.dm_slaves(dm2) == slaves2
    assert read_sha256(info2["path"], IO_MIB) == sum2
    assert sum1 != sum2

    connector.disconnect_volume(props2, info2)
    assert lab.dm_for_wwid(wwid2) is None


def test_extend_volume(lab: Lab, make_connector: ConnectorFactory, tmp_path) -> None:
    """Scenario 8: the LUN grows on the target; extend_volume returns the new
    size and the map shows it."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector(grace=10)
    props = volume_props(lab, 1)
    info, dm = attach_every_path(lab, connector, props)
    assert dev_size_bytes(dm) == 64 << 20
    expected = write_random(info["path"], str(tmp_path), 8)

    lab.resize_lun(1, 160)
    new_size = connector.extend_volume(props)

    assert new_size == 160 << 20
    assert dev_size_bytes(dm) == 160 << 20
    assert lab.dm_for_wwid(wwid) == dm
    assert all(dev_size_bytes(d) == 160 << 20 for d in lab.dm_slaves(dm))
    assert read_sha256(info["path"], 8) == expected
    # The new space is usable: write at the end of the grown map.
    with open(info["path"], "r+b", buffering=0) as f:
        f.seek((160 << 20) - 4096)
        f.write(b"x" * 4096)
        os.fsync(f.fileno())

    connector.disconnect_volume(props, info)
