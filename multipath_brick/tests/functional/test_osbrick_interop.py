"""Switching a host between os-brick and this connector, with volumes attached.

A nova or cinder host moved to this connector (or back) keeps the volumes the
other one attached: each must detach what the other made, from the
``device_info`` the other returned, and leave nothing. os-brick 7.1's own
ISCSIConnector runs here as nova runs it (multipath, CHAP, the plural
properties), its privileged calls in this process (we are root in the guest).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.initiator import dm_for_wwid, sessions

from .conftest import (
    ConnectorFactory,
    Note,
    nothing_left,
    read_sha256,
    volume_props,
    write_random,
    wwids_file,
)


@pytest.fixture
def osbrick(tmp_path: Path) -> Iterator[Any]:
    """os-brick's ISCSIConnector, multipath on, its locks in their own directory."""
    import os_brick
    from os_brick import privileged
    from os_brick.initiator.connectors.iscsi import ISCSIConnector
    from oslo_concurrency import lockutils  # noqa: F401 - registers [oslo_concurrency]
    from oslo_config import cfg

    cfg.CONF.set_override("lock_path", str(tmp_path / "osbrick-locks"), "oslo_concurrency")
    os_brick.setup(cfg.CONF)
    contexts = (privileged.default, privileged.brick_privsep_hide_output)
    for context in contexts:
        context.set_client_mode(False)  # root already: no daemon of its own
    try:
        yield ISCSIConnector(root_helper=None, use_multipath=True)
    finally:
        for context in contexts:
            context.set_client_mode(True)
        cfg.CONF.clear_override("lock_path", "oslo_concurrency")
        cfg.CONF.clear_default("lock_path", "os_brick")


def test_a_volume_attached_by_osbrick_is_detached_by_us(
    lab: Lab, osbrick: Any, make_connector: ConnectorFactory, tmp_path: Path
) -> None:
    lab.add_lun(5, 64)
    props = volume_props(lab, 5)
    info = osbrick.connect_volume(dict(props))
    wwid = info["multipath_id"]
    assert info["path"] == f"/dev/{dm_for_wwid(wwid)}"
    assert len(sessions()) == len(lab.portals)

    ours = make_connector(lock_path=str(tmp_path / "locks"))
    ours.disconnect_volume(props, info)

    nothing_left(lab, wwid)  # os-brick's records and the WWID too


def test_a_volume_attached_by_us_is_detached_by_osbrick(
    lab: Lab, osbrick: Any, make_connector: ConnectorFactory, tmp_path: Path, note: Note
) -> None:
    lab.add_lun(6, 64)
    props = volume_props(lab, 6)
    ours = make_connector(lock_path=str(tmp_path / "locks"))
    info = ours.connect_volume(props)
    assert ours.wait_for_pending(timeout=120)  # every path in the map, as os-brick expects
    wwid = info["multipath_id"]
    assert len(sessions()) == len(lab.portals)

    osbrick.disconnect_volume(dict(props), info)

    left = {kind: items for kind, items in lab.leftovers().items() if items}
    assert not left, f"left behind: {left}"
    # os-brick does not take a WWID out of /etc/multipath/wwids (multipathd
    # adds every WWID it maps there too): whether ours stays is noted, not judged.
    note("wwid_kept_by_osbrick_detach", wwid in wwids_file())


@pytest.mark.parametrize("first", ["ours", "osbrick"])
def test_one_volume_each_on_one_target_either_detached_first(
    lab: Lab, osbrick: Any, make_connector: ConnectorFactory, tmp_path: Path, first: str
) -> None:
    # The common case of a host in mid-switch: os-brick's volume and ours are
    # LUNs of one target, so they share its sessions and node records. Neither
    # takes the other's lock: each keeps a session while a disk of any LUN is on
    # it, so detaching one must leave the other working on every path.
    lab.add_lun(7, 64)
    lab.add_lun(8, 64)
    theirs_props, ours_props = volume_props(lab, 7), volume_props(lab, 8)
    theirs_info = osbrick.connect_volume(dict(theirs_props))
    ours = make_connector(lock_path=str(tmp_path / "locks"))
    ours_info = ours.connect_volume(ours_props)
    assert ours.wait_for_pending(timeout=120)
    assert len(sessions()) == len(lab.portals)  # shared, not doubled
    written = {
        "theirs": write_random(theirs_info["path"], str(tmp_path), 4),
        "ours": write_random(ours_info["path"], str(tmp_path), 4),
    }

    if first == "ours":
        ours.disconnect_volume(ours_props, ours_info)
        kept, kept_info = "theirs", theirs_info
    else:
        osbrick.disconnect_volume(dict(theirs_props), theirs_info)
        kept, kept_info = "ours", ours_info

    assert len(sessions()) == len(lab.portals)
    kept_dm = dm_for_wwid(kept_info["multipath_id"])
    assert kept_dm is not None and f"/dev/{kept_dm}" == kept_info["path"]
    assert len(os.listdir(f"/sys/block/{kept_dm}/slaves")) == len(lab.portals)
    assert read_sha256(kept_info["path"], 4) == written[kept]

    if kept == "ours":
        ours.disconnect_volume(ours_props, ours_info)
    else:
        osbrick.disconnect_volume(dict(theirs_props), theirs_info)
