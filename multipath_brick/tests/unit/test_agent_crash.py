"""The agent killed at every host call of an attach or a detach, then the next call.

:class:`~multipath_brick.testing.crash.KilledHost` stands for a process killed
with SIGKILL: the first N host calls happen, nothing after, no cleanup. A new
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
from multipath_brick.testing.crash import KilledHost, ProcessKilled
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
        counting = KilledHost(host)
        if verb == "attach":
            agent(counting, _dir(host)).attach_volume(VOL, plural_info())
        else:
            agent(host, _dir(host)).attach_volume(VOL, plural_info())
            agent(counting, _dir(host)).detach_volume(VOL)
        return counting.count


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


def kill_during(host: FakeHost, after: int, verb: str) -> None:
    killed = KilledHost(host, after)
    victim = agent(killed, _dir(host))
    with pytest.raises(ProcessKilled):
        if verb == "attach":
            victim.attach_volume(VOL, plural_info())
        else:
            victim.detach_volume(VOL)
    # Late paths of the dead process die with it; give its threads a moment to end.
    victim.connector.wait_for_pending(2.0)


Recovery = Callable[[ManagedVolumes], None]


def attach_again(volumes: ManagedVolumes) -> None:
    volumes.attach_volume(VOL, plural_info())


def detach(volumes: ManagedVolumes) -> None:
    volumes.detach_volume(VOL)


@pytest.mark.parametrize("recovery", [attach_again, detach], ids=["attach", "detach"])
def test_killed_at_each_step_of_attach(recovery: Recovery) -> None:
    steps = host_calls("attach")
    assert steps > 10
    for after in range(steps):
        with make_host() as host:
            kill_during(host, after, "attach")
            row = agent(host, _dir(host)).store.get(VOL)
            assert row is not None and row.state is State.ATTACHING, after
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
    for after in range(steps):
        with make_host() as host:
            agent(host, _dir(host)).attach_volume(VOL, plural_info())
            kill_during(host, after, "detach")
            row = agent(host, _dir(host)).store.get(VOL)
            assert row is not None and row.state is State.DETACHING, after
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
