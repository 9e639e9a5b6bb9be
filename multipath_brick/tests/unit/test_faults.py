"""Fault injection at every host call of an attach and of a detach (FaultyHost).

For each N up to the number of calls a clean attach (or detach) makes, counted
at run time: the Nth call fails (a command exits 1, a write or read raises
OSError), or the "process" dies there (every later call of that connector
raises ProcessDied). Then the same connector (after a failure) or a new one on
the same FakeHost (after a death) attaches and detaches again, and nothing may
be left: no session, node record, disk, map or wwids entry.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector, verbs
from multipath_brick.attach import AttachSettings
from multipath_brick.exception import InvalidSettings, MultipathBrickError
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost
from multipath_brick.testing.faults import INJECTED, FaultyHost, ProcessDied

IQN = "iqn.2024-01.test.mpb:faults"
PORTALS = ["10.0.1.2:3260", "10.0.2.2:3260"]
#: Small and fast: two portals, simulated seconds 100x faster. The waits are
#: real seconds: long enough for a loaded test machine, used only when stuck.
SETTINGS = AttachSettings(
    grace=0.3,
    timeouts=LoginTimeouts(login_timeout=2, retries=1),
    scan_attempts=2,
    scan_timeout=2.0,
    ready_timeout=3.0,
    command_timeout=2.0,
    flush_busy_for=0.05,
    poll=0.005,
)
PROPS = {
    "target_portals": PORTALS,
    "target_iqns": [IQN] * len(PORTALS),
    "target_luns": [1] * len(PORTALS),
    "auth_method": "CHAP",
    "auth_username": "user",
    "auth_password": "Secret-Passw0rd",
}


def new_host() -> FakeHost:
    host = FakeHost(time_scale=0.01)
    host.add_target(IQN, PORTALS, luns={1: 1 << 30}, chap=("user", "Secret-Passw0rd"))
    return host


def connector(host: Any, locks: pathlib.Path) -> ISCSIMultipathConnector:
    return ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=SETTINGS, lock_path=str(locks)
    )


def attach_detach(host: FakeHost, locks: pathlib.Path) -> None:
    """What the next process does: attach and detach the same volume."""
    fresh = connector(host, locks)
    info = fresh.connect_volume(PROPS)
    assert fresh.wait_for_pending(10)
    fresh.disconnect_volume(PROPS, info)


def calls_of_a_clean_run(kinds: tuple[str, ...], tmp_path: pathlib.Path) -> tuple[int, int]:
    """(host calls of an attach, of a detach) of the given kinds, on a clean host."""
    host = new_host()
    try:
        faulty = FaultyHost(host, kinds=kinds)
        conn = connector(faulty, tmp_path)
        info = conn.connect_volume(PROPS)
        assert conn.wait_for_pending(10)
        attach = faulty.calls
        faulty.arm()
        conn.disconnect_volume(PROPS, info)
        assert host.leftovers() == {}
        return attach, faulty.calls
    finally:
        host.close()


def run_cases(
    count: int, case: Callable[[int, FakeHost, pathlib.Path], None], tmp_path: pathlib.Path
) -> list[str]:
    """Run ``case(n, host, locks)`` for n in 1..count on fresh hosts; the failures."""
    problems = []
    for n in range(1, count + 1):
        host = new_host()
        try:
            case(n, host, tmp_path / f"locks-{n}")
            left = host.leftovers()
            if left:
                problems.append(f"N={n}: left {left}")
        except BaseException as error:  # noqa: BLE001 - every N is reported
            problems.append(f"N={n}: {type(error).__name__}: {error}")
        finally:
            host.close()
    return problems


def attach_fault(
    mode: str, kinds: tuple[str, ...], seen: list[tuple[str | None, list[str]]] | None = None
) -> Callable[..., None]:
    """A case that faults the Nth call of an attach. ``seen`` collects, per case,
    what was injected and what the attach told: its error, each path's reason."""

    def case(n: int, host: FakeHost, locks: pathlib.Path) -> None:
        faulty = FaultyHost(host, kinds=kinds)
        faulty.arm(**{f"{mode}_at": n})
        conn = connector(faulty, locks)
        told: list[str] = []
        if seen is not None:
            seen.append((None, told))
        try:
            info = conn.connect_volume(PROPS)
        except MultipathBrickError as error:
            told.append(str(error))
            if seen is not None:
                seen[-1] = (faulty.injected, told)
            if mode == "fail":
                # connect_volume leaves nothing it made.
                assert host.leftovers() == {}, (faulty.injected, host.leftovers())
            attach_detach(host, locks)
            return
        except ProcessDied:
            attach_detach(host, locks)
            return
        report = conn.wait_for_pending(10)
        told += [p["reason"] or "" for p in info["paths"]]
        told += [r.reason or "" for r in report.failed]
        if seen is not None:
            seen[-1] = (faulty.injected, told)
        assert faulty.dead or report
        if faulty.dead:
            # Died in a background path after the return: the next process
            # attaches the volume again and detaches it.
            attach_detach(host, locks)
            return
        # The attach this time made fewer counted calls than N (their number
        # varies with timing): the fault is not the detach's to take.
        faulty.arm()
        conn.disconnect_volume(PROPS, info)

    return case


def detach_fault(
    mode: str, kinds: tuple[str, ...], seen: list[tuple[str | None, list[str]]] | None = None
) -> Callable[..., None]:
    """A case that faults the Nth call of a detach; ``seen`` as for :func:`attach_fault`."""

    def case(n: int, host: FakeHost, locks: pathlib.Path) -> None:
        faulty = FaultyHost(host, kinds=kinds)
        conn = connector(faulty, locks)
        info = conn.connect_volume(PROPS)
        assert conn.wait_for_pending(10)
        faulty.arm(**{f"{mode}_at": n})
        try:
            conn.disconnect_volume(PROPS, info)
        except MultipathBrickError as error:
            if seen is not None:
                seen.append((faulty.injected, [str(error)]))
            assert mode == "fail", faulty.injected
            conn.disconnect_volume(PROPS, info)  # the next detach finishes it
            return
        except ProcessDied:
            attach_detach(host, locks)
            return
        if seen is not None:
            seen.append((faulty.injected, []))

    return case


@pytest.mark.parametrize("mode", ["fail", "crash"])
@pytest.mark.parametrize("phase", ["attach", "detach"])
def test_a_fault_at_every_command_and_write(phase: str, mode: str, tmp_path: pathlib.Path) -> None:
    kinds = ("run", "write")
    attach_calls, detach_calls = calls_of_a_clean_run(kinds, tmp_path / "count")
    count = attach_calls if phase == "attach" else detach_calls
    assert count >= 10, count  # the fault really moves through the whole flow
    make = attach_fault if phase == "attach" else detach_fault
    assert run_cases(count, make(mode, kinds), tmp_path) == []


@pytest.mark.parametrize("phase", ["attach", "detach"])
def test_a_failing_read_of_sysfs_at_every_step(phase: str, tmp_path: pathlib.Path) -> None:
    # Only ENOENT and ENODEV say a sysfs object is gone. A read failing with
    # EIO must surface (the call's error, or the failed path's reason) and
    # never pass for a torn-down session or a removed disk, which would make
    # a detach skip a session that is still there. Reads are many (every look
    # of every wait): every third one is enough to land in every step.
    kinds = ("read",)
    attach_calls, detach_calls = calls_of_a_clean_run(kinds, tmp_path / "count")
    count = attach_calls if phase == "attach" else detach_calls
    make = attach_fault if phase == "attach" else detach_fault
    seen: list[tuple[str | None, list[str]]] = []
    case = make("fail", kinds, seen)
    assert run_cases(count // 3, lambda n, host, locks: case(n * 3, host, locks), tmp_path) == []
    injected = [(what, told) for what, told in seen if what is not None]
    assert len(injected) >= count // 3 - 2, seen  # the count varies a little with timing
    hidden = [what for what, told in injected if not any(INJECTED in t for t in told)]
    assert hidden == []


def test_a_background_path_error_is_logged_and_reported(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = new_host()
    try:
        # The second portal answers 30 simulated seconds late: pending at return.
        host.set_latency(PORTALS[1], 30.0)
        faulty = FaultyHost(host)
        settings = AttachSettings(
            grace=0.05,
            timeouts=LoginTimeouts(login_timeout=60, retries=1),
            scan_timeout=1.0,
            ready_timeout=1.0,
            command_timeout=2.0,
            poll=0.005,
        )
        conn = ISCSIMultipathConnector(
            use_multipath=True, host=faulty, settings=settings, lock_path=str(tmp_path)
        )
        info = conn.connect_volume(PROPS)
        assert [p["state"] for p in info["paths"]] == ["active", "pending"]
        # The late path's scan write fails.
        faulty.arm(fail_at=1)
        faulty.kinds = frozenset({"write"})
        with caplog.at_level(logging.WARNING, logger="multipath_brick"):
            report = conn.wait_for_pending(10)
        assert report, report
        assert [r.path.target.portal for r in report.failed] == [PORTALS[1]]
        assert "injected failure" in (report.failed[0].reason or "")
        assert any("late path" in m and "injected failure" in m for m in caplog.messages)
        assert not conn.wait_for_pending(0).failed  # reported once
        conn.disconnect_volume(PROPS, info)
        assert host.leftovers() == {}
    finally:
        host.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"command_timeout": 1e300}, "command_timeout"),
        ({"command_timeout": float("inf")}, "command_timeout"),
        ({"grace": -1}, "grace"),
        ({"poll": 0}, "poll"),
        ({"scan_timeout": float("nan")}, "scan_timeout"),
        ({"ready_timeout": "10"}, "ready_timeout"),
        ({"scan_attempts": 0}, "scan_attempts"),
        ({"timeouts": LoginTimeouts(login_timeout=10**9)}, "timeouts.login_timeout"),
        ({"command_timeout": 9000.0}, "command_timeout"),  # a flush: ten of them
    ],
)
def test_settings_are_checked_when_made(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSettings) as info:
        AttachSettings(**change)
    assert info.value.field == field
    assert field in str(info.value)


def test_records_left_with_iscsid_defaults_are_rewritten_and_owned(tmp_path: pathlib.Path) -> None:
    # A process killed between "iscsiadm -o new" and "-o update" leaves records
    # with iscsid.conf's defaults (node.session.scan = auto).
    host = new_host()
    try:
        for portal in PORTALS:
            host.run(verbs.NodeNew(portal, IQN, "default"), timeout=5.0)
            assert host.node_settings(portal, IQN)["node.session.scan"] == "auto"
        host.set_unreachable(PORTALS[1], True)
        conn = connector(host, tmp_path)
        info = conn.connect_volume(PROPS)
        assert conn.wait_for_pending(10)
        assert [p["state"] for p in info["paths"]] == ["active", "failed"]
        assert host.node_settings(PORTALS[0], IQN)["node.session.scan"] == "manual"
        assert host.node_settings(PORTALS[0], IQN)["node.startup"] == "manual"
        # The dead portal's stale record was taken as this attach's: it went with the path.
        assert (PORTALS[1], IQN, "default") not in host.node_records()
        conn.disconnect_volume(PROPS, info)
        assert host.leftovers() == {}
    finally:
        host.close()


def test_a_wwid_stays_listed_while_its_map_stays(tmp_path: pathlib.Path) -> None:
    host = new_host()
    try:
        conn = connector(host, tmp_path)
        info = conn.connect_volume(PROPS)
        assert conn.wait_for_pending(10)
        wwid = info["multipath_id"]
        host.fail_flush(wwid)
        conn.disconnect_volume(PROPS, info, force=True, ignore_errors=True)
        assert host.wwids() == [wwid]  # the map is still there: so is its WWID
        host.fail_flush(wwid, False)
        conn.disconnect_volume(PROPS, info)
        assert host.leftovers() == {}
    finally:
        host.close()
