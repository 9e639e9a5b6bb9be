"""ISCSIMultipathConnector on the real stack when things go wrong: dead
portals (before and during I/O), all portals dead, wrong CHAP, and detaching
what is already gone. Every test ends with the autouse no-leftovers check.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from multipath_brick.exception import AuthenticationError, NoUsablePathError
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.tests.lab.api import Lab

from .conftest import (
    BackgroundWrite,
    ConnectorFactory,
    Note,
    attach_every_path,
    dm_name,
    host_state,
    read_sha256,
    volume_props,
    wait_slaves,
)

# Dead-portal cases: a login to a dead portal costs login_timeout * retries.
FAST = LoginTimeouts(login_timeout=3, retries=1)


def _states(info: dict[str, Any]) -> dict[str, str]:
    return {p["portal"]: p["state"] for p in info["paths"]}


def test_all_portals_unreachable(lab: Lab, make_connector: ConnectorFactory, note: Note) -> None:
    """Scenario 5: every portal dead: NoUsablePathError (not an authentication
    error) naming every path; nothing left on the host."""
    lab.add_lun(1, 64)
    for k in range(len(lab.portals)):
        lab.portal_down(k)
    connector = make_connector(grace=2, login_timeouts=FAST)

    t0 = time.monotonic()
    with pytest.raises(NoUsablePathError) as caught:
        connector.connect_volume(volume_props(lab, 1))
    note("attach_seconds", round(time.monotonic() - t0, 2))

    assert not isinstance(caught.value, AuthenticationError), caught.value
    assert sorted(p.split()[0] for p, _ in caught.value.failures) == sorted(lab.portals)
    assert all(reason for _, reason in caught.value.failures), caught.value.failures


def test_wrong_chap_password(lab: Lab, make_connector: ConnectorFactory) -> None:
    """Scenario 6: the target refuses our CHAP secret on every portal:
    AuthenticationError, nothing left."""
    lab.add_lun(1, 64)
    connector = make_connector(grace=2, login_timeouts=FAST)
    props = volume_props(lab, 1, chap=(lab.chap.user, "wrong-secret-12"))

    with pytest.raises(AuthenticationError) as caught:
        connector.connect_volume(props)

    assert len(caught.value.failures) == len(lab.portals)
    assert not lab.target_sessions()


class MapWatcher:
    """Notes when the WWID's map first appears, from a side thread: the
    reference point of "attach returns within the grace of a usable map"."""

    def __init__(self, lab: Lab, wwid: str) -> None:
        self.appeared: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(lab, wwid), daemon=True)
        self._thread.start()

    def _run(self, lab: Lab, wwid: str) -> None:
        while not self._stop.is_set():
            if lab.dm_for_wwid(wwid) is not None:
                self.appeared = time.monotonic()
                return
            time.sleep(0.1)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.appeared


def test_one_portal_down_then_back(lab: Lab, make_connector: ConnectorFactory, note: Note) -> None:
    """Scenario 3: portal 3 dead before the attach: the attach returns with
    the 3 live paths within the grace of the map becoming usable, not after
    the dead portal's login timeouts; once the portal is back the pending path
    joins the map."""
    wwid = lab.add_lun(1, 64)
    lab.portal_down(3)
    # A dead portal costs 5 s x 8 = 40 s of login retries: still retrying
    # when the portal comes back right after the attach.
    timeouts = LoginTimeouts(login_timeout=5, retries=8)
    # TCG: the library writes each path's node record with ~8 iscsiadm calls
    # serialised across paths (0.15-1 s each depending on the host's load),
    # so the third live path can come ~15 s after the map; a real host needs
    # well under a second.
    grace = 15.0
    connector = make_connector(grace=grace, login_timeouts=timeouts)
    props = volume_props(lab, 1)

    watcher = MapWatcher(lab, wwid)
    t0 = time.monotonic()
    info = connector.connect_volume(props)
    returned = time.monotonic()
    appeared = watcher.stop()
    note("attach_seconds", round(returned - t0, 2))
    note("path_states", _states(info))
    assert appeared is not None, "the map never appeared while attaching"
    note("returned_after_map_seconds", round(returned - appeared, 2))

    states = _states(info)
    dead = lab.portals[3]
    assert states[dead] == "pending", info["paths"]
    assert [states[p] for p in lab.portals[:3]] == ["active"] * 3, info["paths"]
    # Returned within the grace of the usable map (+ margin for TCG: the
    # usability check itself takes a few iscsiadm/multipath calls)...
    assert returned - appeared < grace + 10, info["paths"]
    # ... and long before the dead portal's login gave up.
    assert returned - t0 < timeouts.worst_case + 10
    dm = dm_name(info["path"])
    assert info["multipath_id"] == wwid
    assert len(lab.dm_slaves(dm)) == 3, host_state()

    lab.portal_up(3)
    assert connector.wait_for_pending(timeout=120)
    slaves = wait_slaves(lab, dm, 4)
    assert slaves == sorted(lab.disks_for_wwid(wwid))
    note("joined_after_seconds", round(time.monotonic() - t0, 2))

    connector.disconnect_volume(props, info)


def test_portal_dies_during_io(
    lab: Lab, make_connector: ConnectorFactory, tmp_path, note: Note
) -> None:
    """Scenario 4: a portal is cut while 32 MiB go through the map: the write
    completes (multipath fails over) and the data reads back intact."""
    mib = 32
    lab.add_lun(1, 64)
    connector = make_connector(grace=10)
    props = volume_props(lab, 1)
    info, dm = attach_every_path(lab, connector, props)

    # One 64 KiB direct write at a time, each a round trip delayed by 10 ms on
    # every portal: 512 writes take several seconds, so the cut lands mid-I/O.
    for k in range(len(lab.portals)):
        lab.set_latency(k, 10)
    t0 = time.monotonic()
    writer = BackgroundWrite(info["path"], str(tmp_path), mib)
    time.sleep(1.5)
    lab.portal_down(1)
    t_cut = time.monotonic()
    still_running = writer.running()
    writer.wait()
    done = time.monotonic()
    note("io_before_cut_seconds", round(t_cut - t0, 2))
    note("io_after_cut_seconds", round(done - t_cut, 2))
    assert still_running, "dd finished before the portal was cut; make the I/O longer"
    assert read_sha256(info["path"], mib) == writer.sha256
    # The cut path is failed in the map; the other three carry the I/O.
    for k in range(len(lab.portals)):
        lab.set_latency(k, 0)

    t0 = time.monotonic()
    connector.disconnect_volume(props, info)
    note("detach_seconds", round(time.monotonic() - t0, 2))


def test_disconnect_twice(lab: Lab, make_connector: ConnectorFactory) -> None:
    """Scenario 10a: a second detach of the same volume is a no-op."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector(grace=10)
    props = volume_props(lab, 1)
    info = connector.connect_volume(props)
    assert connector.wait_for_pending(timeout=120)

    connector.disconnect_volume(props, info)
    assert lab.dm_for_wwid(wwid) is None
    connector.disconnect_volume(props, info)
    connector.disconnect_volume(props, None)


def test_disconnect_after_target_vanished(
    lab: Lab, make_connector: ConnectorFactory, note: Note
) -> None:
    """Scenario 10b: the array vanished (target deleted, sessions dropped):
    disconnect with force and ignore_errors raises nothing and leaves nothing."""
    iqn = "iqn.2024-01.org.multipath-brick.lab:vanishing"
    wwids = lab.add_target(iqn, {1: 64}, chap=lab.chap)
    connector = make_connector(grace=10, login_timeouts=FAST)
    props = volume_props(lab, 1, iqn=iqn)
    info = connector.connect_volume(props)
    assert connector.wait_for_pending(timeout=120)
    assert info["multipath_id"] == wwids[1]

    lab.remove_target(iqn)
    t0 = time.monotonic()
    connector.disconnect_volume(props, info, force=True, ignore_errors=True)
    note("detach_seconds", round(time.monotonic() - t0, 2))
    assert lab.dm_for_wwid(wwids[1]) is None
