"""Failure and recovery on the real stack.

* A process attaching a volume is killed (SIGKILL) at several points: a new
  attach and a detach from another process then leave nothing behind
  (sessions, node records, disks, maps, the WWID in /etc/multipath/wwids,
  open-iscsi's node database lock).
* A process is killed while its privsep daemon waits for open-iscsi's node
  database lock: the daemon finishes that call before it exits, and leaves
  the lock as it found it.
* 100 ms on every portal: attach over 4 portals, then at once a plain (not
  forced) detach while late paths are still joining the map; five times in a
  row, every detach succeeds and nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.initiator import LOCK_WRITE
from multipath_brick.tests.lab.shell import run, wait_for

from .conftest import ConnectorFactory, Note, nothing_left, volume_props

#: The attach a killed process was running: its connector, as a program.
CHILD = """
import json, sys
from multipath_brick import ISCSIMultipathConnector
props = json.load(open(sys.argv[1]))
connector = ISCSIMultipathConnector(use_multipath=True, lock_path=sys.argv[2], grace=2.0)
print("start", flush=True)
connector.connect_volume(props)
print("attached", flush=True)
connector.wait_for_pending(120)
print("settled", flush=True)
"""


@contextlib.contextmanager
def attaching(path: str, locks: str) -> Iterator[subprocess.Popen[str]]:
    """A process attaching the volume of ``path`` (CHILD), once it has started;
    killed and reaped at the end if the test did not kill it."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, path, locks],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "start", child.stderr
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)


def sessions_exist() -> bool:
    return bool(os.listdir("/sys/class/iscsi_session"))


@pytest.fixture
def props_file(lab: Lab, tmp_path: Any) -> Iterator[tuple[dict[str, Any], str]]:
    props = volume_props(lab, 1)
    path = tmp_path / "props.json"
    path.write_text(json.dumps(props))
    yield props, str(path)


# When the attaching process is killed, after it printed "start".
KILL_POINTS: dict[str, Callable[[Lab, str], bool]] = {
    "after-0.5s": lambda lab, wwid: False,
    "after-2s": lambda lab, wwid: False,
    "first-session": lambda lab, wwid: sessions_exist(),
    "map-appears": lambda lab, wwid: lab.dm_for_wwid(wwid) is not None,
}
DELAYS = {"after-0.5s": 0.5, "after-2s": 2.0}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_an_attach_killed_midway_is_undone_by_the_next_calls(
    lab: Lab,
    make_connector: ConnectorFactory,
    props_file: tuple[dict[str, Any], str],
    tmp_path: Any,
    note: Note,
    point: str,
) -> None:
    wwid = lab.add_lun(1, 64)
    props, path = props_file
    locks = str(tmp_path / "locks")
    with attaching(path, locks) as child:
        t0 = time.monotonic()
        if point in DELAYS:
            time.sleep(DELAYS[point])
        else:
            reached = KILL_POINTS[point]
            wait_for(point, lambda: reached(lab, wwid), timeout=120, interval=0.05)
        os.kill(child.pid, signal.SIGKILL)
        note("killed_after_seconds", round(time.monotonic() - t0, 2))
    note("left_by_the_kill", {k: len(v) for k, v in lab.leftovers().items() if v})

    # The next process attaches the same volume, then detaches it.
    connector = make_connector(lock_path=locks, grace=2.0)
    t0 = time.monotonic()
    info = connector.connect_volume(props)
    note("reattach_seconds", round(time.monotonic() - t0, 2))
    assert info["multipath_id"] == wwid
    assert connector.wait_for_pending(timeout=120)
    connector.disconnect_volume(props, info)
    nothing_left(lab, wwid)


def privsep_daemons() -> set[int]:
    """The pids of the library's privsep daemons running now, whoever started them."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"multipath_brick.privsep_daemon" in argv and b"--privsep_sock_path" in argv:
            found.add(int(entry))
    return found


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_daemon_whose_caller_is_killed_finishes_its_call_and_leaves_the_lock_alone(
    lab: Lab,
    make_connector: ConnectorFactory,
    props_file: tuple[dict[str, Any], str],
    tmp_path: Any,
    note: Note,
) -> None:
    wwid = lab.add_lun(1, 64)
    props, path = props_file
    locks = str(tmp_path / "locks")
    lock_dir = os.path.dirname(LOCK_WRITE)
    os.makedirs(lock_dir, exist_ok=True)
    with open(f"{lock_dir}/lock", "a", encoding="ascii"):
        pass
    before = privsep_daemons()
    # Hold open-iscsi's lock as a slow iscsiadm would: the attach's first record
    # write waits for it inside the daemon.
    os.link(f"{lock_dir}/lock", LOCK_WRITE)
    try:
        with attaching(path, locks) as child:
            wait_for("the child's privsep daemon", lambda: privsep_daemons() - before, timeout=120)
            time.sleep(3)  # its calls reach the daemon and wait there for the lock
            assert not sessions_exist()  # no login without a record
            os.kill(child.pid, signal.SIGKILL)
        (daemon,) = privsep_daemons() - before
        time.sleep(1)
        # The old way (a forked daemon, os._exit when its caller's socket closed)
        # left here, cutting every call short, and a call holding the lock left it.
        assert running(daemon), "the daemon left with its caller, in the middle of a call"
    finally:
        os.unlink(LOCK_WRITE)
    t0 = time.monotonic()
    wait_for("the daemon to finish its calls and exit", lambda: not running(daemon), timeout=120)
    note("daemon_exited_after_seconds", round(time.monotonic() - t0, 2))
    assert not os.path.lexists(LOCK_WRITE)
    note("left_by_the_kill", {k: len(v) for k, v in lab.leftovers().items() if v})

    connector = make_connector(lock_path=locks, grace=2.0)
    info = connector.connect_volume(props)
    assert info["multipath_id"] == wwid
    assert connector.wait_for_pending(timeout=120)
    connector.disconnect_volume(props, info)
    nothing_left(lab, wwid)


def test_a_plain_detach_right_after_attach_with_100ms_on_every_portal(
    lab: Lab, make_connector: ConnectorFactory, note: Note, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="multipath_brick.detach")
    wwid = lab.add_lun(1, 64)
    for k in range(len(lab.portals)):
        lab.set_latency(k, 100)
    props = volume_props(lab, 1)
    connector = make_connector(grace=1.0)
    rounds = []
    try:
        for _ in range(5):
            t0 = time.monotonic()
            info = connector.connect_volume(props)
            attached = time.monotonic()
            pending = [p["portal"] for p in info["paths"] if p["state"] == "pending"]
            caplog.clear()
            connector.disconnect_volume(props, info)  # plain: no force, no ignore_errors
            rounds.append(
                {
                    "attach_s": round(attached - t0, 2),
                    "detach_s": round(time.monotonic() - attached, 2),
                    "pending_at_return": len(pending),
                    "waited_for_udev": any("waited for udev" in m for m in caplog.messages),
                }
            )
            nothing_left(lab, wwid)
    finally:
        note("rounds", rounds)
        for k in range(len(lab.portals)):
            lab.set_latency(k, 0)


def test_udev_queue_file_marks_pending_events() -> None:
    """What the detach relies on: systemd-udevd keeps /run/udev/queue while it
    has events queued or running, and removes it when idle."""
    run(["udevadm", "settle", "--timeout=60"])
    assert not os.path.exists("/run/udev/queue")
