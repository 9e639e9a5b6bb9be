"""The agent killed at every host call of an attach or a detach, then the next call.

:class:`~multipath_brick.testing.faults.FaultyHost` stands for a process killed
with SIGKILL: the Nth host call happens, nothing after, no cleanup. A new
ManagedVolumes on the same FakeHost and store is the next agent process. Either
verb afterwards must leave one map with one session per path (attach) or
nothing at all (detach).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from multipath_brick.agent import ManagedVolumes, State
from multipath_brick.testing import FakeHost
from multipath_brick.testing.faults import FaultyHost, ProcessDied
from multipath_brick.tests.unit.agent_helpers import (
    VOL,
    agent,
    make_host,
    plural_info,
    sessions_of,
)
from multipath_brick.tests.unit.conftest import IQN, PORTALS

EVERY_PATH = sorted((p, "default") for p in PORTALS)


def host_calls(verb: str) -> int:
    """How many host calls a clean attach (or detach) makes."""
    with make_host() as host:
        counting = FaultyHost(host)
        if verb == "attach":
            agent(counting, _dir(host)).attach_volume(VOL, plural_info())
        else:
            agent(host, _dir(host)).attach_volume(VOL, plural_info())
            agent(counting, _dir(host)).detach_volume(VOL)
        return counting.calls


def _dir(host: FakeHost) -> str:
    path = os.path.join(host.root, "agent")
    os.makedirs(path, exist_ok=True)
    return path


def assert_attached_once(host: FakeHost, volumes: ManagedVolumes) -> None:
    wwid = host.targets[IQN].wwid(1)
    assert list(host.maps()) == [wwid]
    assert len(host.maps()[wwid]) == 4
    assert sessions_of(host) == EVERY_PATH
    [row] = volumes.volumes_info()
    assert row["state"] == "attached" and row["exists"] is True


def assert_nothing(host: FakeHost, volumes: ManagedVolumes) -> None:
    assert host.leftovers() == {}
    assert volumes.volumes_info() == []


def kill_during(host: FakeHost, crash_at: int, verb: str) -> bool:
    """Run the verb in a "process" that dies at its ``crash_at``-th host call.

    :returns: whether it died: the number of host calls varies with timing
        (how many looks a wait takes), so a run may end before ``crash_at``.
    """
    faulty = FaultyHost(host)
    faulty.arm(crash_at=crash_at)
    victim = agent(faulty, _dir(host))
    try:
        if verb == "attach":
            victim.attach_volume(VOL, plural_info())
        else:
            victim.detach_volume(VOL)
    except ProcessDied:
        pass
    # Late paths of the dead process die with it; give its threads a moment to end,
    # and let what the host was doing for it (a login, a scan) finish first.
    victim.connector.wait_for_pending(2.0)
    assert faulty.wait_quiet(10.0), "a host call of the dead process never ended"
    return faulty.dead


Recovery = Callable[[ManagedVolumes], None]


def attach_again(volumes: ManagedVolumes) -> None:
    volumes.attach_volume(VOL, plural_info())


def detach(volumes: ManagedVolumes) -> None:
    volumes.detach_volume(VOL)


@pytest.mark.parametrize("recovery", [attach_again, detach], ids=["attach", "detach"])
def test_killed_at_each_step_of_attach(recovery: Recovery) -> None:
    steps = host_calls("attach")
    assert steps > 10
    for crash_at in range(1, steps + 1):
        with make_host() as host:
            died = kill_during(host, crash_at, "attach")
            row = agent(host, _dir(host)).store.get(VOL)
            expected = State.ATTACHING if died else State.ATTACHED
            assert row is not None and row.state is expected, crash_at
            volumes = agent(host, _dir(host))
            recovery(volumes)
            if recovery is attach_again:
                assert_attached_once(host, volumes)
                volumes.detach_volume(VOL)
            assert_nothing(host, volumes)


@pytest.mark.parametrize("recovery", [attach_again, detach], ids=["attach", "detach"])
def test_killed_at_each_step_of_detach(recovery: Recovery) -> None:
    steps = host_calls("detach")
    assert steps > 5
    for crash_at in range(1, steps + 1):
        with make_host() as host:
            agent(host, _dir(host)).attach_volume(VOL, plural_info())
            if not kill_during(host, crash_at, "detach"):
                continue  # this detach made fewer calls and finished: nothing to recover
            row = agent(host, _dir(host)).store.get(VOL)
            assert row is not None and row.state is State.DETACHING, crash_at
            volumes = agent(host, _dir(host))
            recovery(volumes)
            if recovery is attach_again:
                assert_attached_once(host, volumes)
                volumes.detach_volume(VOL)
            assert_nothing(host, volumes)


def test_killed_after_the_host_work_before_the_result_was_stored() -> None:
    # No host call lies between connect_volume returning and the result being
    # committed: the state is "intent stored, volume fully attached".
    with make_host() as host:
        first = agent(host, _dir(host))
        redacted = first.store.redact(plural_info())
        first.store.intend(VOL, State.ATTACHING, redacted)
        first.connector.connect_volume(plural_info()["data"])
        volumes = agent(host, _dir(host))
        [row] = volumes.volumes_info()
        assert row["state"] == "attaching" and row["exists"] is False
        attach_again(volumes)
        assert_attached_once(host, volumes)
        detach(volumes)
        assert_nothing(host, volumes)
