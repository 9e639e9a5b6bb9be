"""Locks: the node database queue (TicketLock) and the named cross-process locks.

TicketLock serves waiters by ticket, not by wake-up order. NamedLock waits a
bounded time for a lock another thread or process holds, and never follows a
planted symlink.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from oslo_config import cfg

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.attach import AttachSettings
from multipath_brick.exception import LockPathError, LockTimeout
from multipath_brick.locks import DEFAULT_TIMEOUT, Locks, NamedLock, TicketLock
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import CHAP, FAST, IQN, PORTALS, connector_with, plural


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_waiters_are_served_lowest_ticket_first():
    lock = TicketLock()
    first, second, third = lock.ticket(), lock.ticket(), lock.ticket()
    served: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with lock.turn():
            release.wait(5)

    def waiter(name: str, ticket: int) -> None:
        with lock.turn(ticket):
            served.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    _wait_until(lambda: bool(lock._held))
    # Arrive in the reverse order of the tickets; two share the middle ticket.
    for name, ticket in [("third", third), ("second-a", second), ("second-b", second)]:
        threads.append(threading.Thread(target=waiter, args=(name, ticket)))
        threads[-1].start()
    threads.append(threading.Thread(target=waiter, args=("first", first)))
    threads[-1].start()
    _wait_until(lambda: len(lock._waiting) == 4)
    release.set()
    for t in threads:
        t.join(5)
    assert served[0] == "first"
    assert sorted(served[1:3]) == ["second-a", "second-b"]
    assert served[3] == "third"


def test_a_turn_without_a_ticket_goes_after_those_handed_out():
    lock = TicketLock()
    early = lock.ticket()
    served: list[str] = []
    with lock.turn():
        waiting = threading.Thread(target=lambda: _take(lock, None, "late", served))
        waiting.start()
        _wait_until(lambda: len(lock._waiting) == 1)
        early_t = threading.Thread(target=lambda: _take(lock, early, "early", served))
        early_t.start()
        _wait_until(lambda: len(lock._waiting) == 2)
    waiting.join(5)
    early_t.join(5)
    assert served == ["early", "late"]


def _take(lock: TicketLock, ticket: int | None, name: str, served: list[str]) -> None:
    with lock.turn(ticket):
        served.append(name)


def test_different_keys_go_side_by_side_the_same_key_waits():
    lock = TicketLock(holders=2)
    ticket = lock.ticket()
    inside: list[str] = []
    most = [0]
    release = threading.Event()

    def take(key: str, name: str) -> None:
        with lock.turn(ticket, key=key):
            inside.append(name)
            most[0] = max(most[0], len(inside))
            release.wait(5)
            inside.remove(name)

    threads = [
        threading.Thread(target=take, args=(key, name))
        for key, name in [("target-a", "a1"), ("target-a", "a2"), ("target-b", "b1")]
    ]
    for t in threads:
        t.start()
    _wait_until(lambda: len(inside) == 2)
    time.sleep(0.05)  # a1's twin must still be waiting, whatever the wake-up order
    assert sorted(inside) in (["a1", "b1"], ["a2", "b1"])
    release.set()
    for t in threads:
        t.join(5)
    assert most[0] == 2


def test_no_more_than_holders_at_once():
    lock = TicketLock(holders=2)
    inside = [0]
    most = [0]
    guard = threading.Lock()

    def take(key: str) -> None:
        with lock.turn(key=key):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=take, args=(f"target-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most[0] == 2


# --- NamedLock: thread lock, then a POSIX lock on a file in the checked directory ------

HOLD = """
import sys
from multipath_brick.locks import Locks
lock = Locks(sys.argv[1]).node(sys.argv[2], sys.argv[3], "default")
lock.acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


@contextlib.contextmanager
def _held_by_child(
    lock_path: str, portal: str = "192.0.2.1:3260", iqn: str = "iqn.2024-01.test.mpb:held"
) -> Iterator[subprocess.Popen[str]]:
    """Another process holding a node lock (iface ``default``) until the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, lock_path, portal, iqn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        yield child
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


def _node(locks: Locks) -> NamedLock:
    return locks.node("192.0.2.1:3260", "iqn.2024-01.test.mpb:held", "default")


def test_a_lock_held_by_another_process_is_waited_for_then_a_clear_error(tmp_path: Path) -> None:
    locks = Locks(str(tmp_path), timeout=0.3)
    with _held_by_child(str(tmp_path)):
        with pytest.raises(LockTimeout) as caught:
            _node(locks).acquire()
    error = caught.value
    assert error.purpose == "node record iqn.2024-01.test.mpb:held 192.0.2.1:3260 iface default"
    assert error.waited >= 0.3
    assert error.lock_file == _node(locks).path
    assert os.path.dirname(error.lock_file) == str(tmp_path)
    assert str(error).startswith(f"the lock of {error.purpose} was still held after ")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)  # noqa: S301 - from args
    # The holder gone, the lock is free again (and the failed wait left nothing held).
    with _node(locks):
        pass


def test_the_lock_is_free_again_once_the_holding_process_ends(tmp_path: Path) -> None:
    locks = Locks(str(tmp_path), timeout=30)
    with _held_by_child(str(tmp_path)) as child:
        waiter = threading.Thread(target=lambda: _node(locks).acquire())
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive()  # still waiting for the child
        assert child.stdin is not None
        child.stdin.close()
    waiter.join(10)
    assert not waiter.is_alive()
    _node(locks).release()


def test_a_forked_child_does_not_keep_the_lock(tmp_path: Path) -> None:
    """The privsep daemon is forked on first use, possibly while a lock is held."""
    locks = Locks(str(tmp_path), timeout=5)
    lock = _node(locks)
    lock.acquire()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: live on, doing nothing, until the test is done
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
    try:
        os.close(read_end)
        lock.release()
        with _held_by_child(str(tmp_path)):  # another process gets it at once
            pass
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def test_released_by_another_thread(tmp_path: Path) -> None:
    locks = Locks(str(tmp_path), timeout=1)
    _node(locks).acquire()
    other = threading.Thread(target=_node(locks).release)
    other.start()
    other.join(5)
    with _node(locks):  # neither the thread lock nor the file lock is left held
        pass
    with _held_by_child(str(tmp_path)):
        pass


def test_a_symlink_planted_as_a_lock_file_is_refused_not_followed(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    locks = Locks(str(directory), timeout=1)
    locks.prepare()
    victim = tmp_path / "victim"
    lock = _node(locks)
    os.symlink(victim, lock.path)
    with pytest.raises(LockPathError) as caught:
        lock.acquire()
    assert caught.value.path == lock.path
    assert caught.value.reason == "is a symlink; lock files are never followed"
    assert not victim.exists()
    os.unlink(lock.path)
    with lock:  # the refusal released the thread lock
        assert stat.S_IMODE(os.lstat(lock.path).st_mode) == 0o600


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    locks = Locks(str(tmp_path), timeout=1)
    lock = _node(locks)
    os.mkfifo(lock.path, 0o600)
    with pytest.raises(LockPathError, match="is not a regular file"):
        lock.acquire()


def test_a_directory_swapped_after_the_check_does_not_redirect_lock_files(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    locks = Locks(str(directory), timeout=1)
    locks.prepare()
    directory.rename(tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    directory.symlink_to(elsewhere)
    with _node(locks):
        pass
    assert os.listdir(elsewhere) == []
    assert [n.startswith("multipath-brick-node-") for n in os.listdir(tmp_path / "moved")] == [
        True
    ]


def test_two_lock_paths_are_two_locks(tmp_path: Path) -> None:
    """Two connectors with two lock paths: the second path is not ignored."""
    first, second = (
        Locks(str(tmp_path / "a"), timeout=0.2),
        Locks(str(tmp_path / "b"), timeout=0.2),
    )
    with _node(first), _node(second):  # would time out if both were one lock
        assert os.listdir(tmp_path / "a") == os.listdir(tmp_path / "b")
        assert len(os.listdir(tmp_path / "a")) == 1


def test_one_directory_by_two_paths_is_one_lock(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o755)
    (tmp_path / "var-run").symlink_to(tmp_path / "run")
    direct = Locks(str(tmp_path / "run" / "locks"), timeout=0.2)
    linked = Locks(str(tmp_path / "var-run" / "locks"), timeout=0.2)
    with _node(direct):
        with pytest.raises(LockTimeout):
            _node(linked).acquire()
    with _node(linked):
        pass


def test_node_and_wwid_locks_name_what_they_guard(tmp_path: Path) -> None:
    locks = Locks(str(tmp_path))
    assert locks.wwid("36001405abc").purpose == "map of WWID 36001405abc"
    node = locks.node("[fe80::1]:3260", "iqn.2024-01.x:y", "iface0")
    assert node.purpose == "node record iqn.2024-01.x:y [fe80::1]:3260 iface iface0"
    assert "/" not in node.name and node.name.startswith("multipath-brick-node-")


def test_the_default_timeout_outlasts_the_longest_hold() -> None:
    """A detach's WWID lock with every command at its timeout (flush: ten command
    timeouts; then four disks, three commands each)."""
    settings = AttachSettings()
    longest = (
        settings.command_timeout * 10 + settings.flush_busy_for + 4 * 3 * settings.command_timeout
    )
    assert settings.lock_timeout == DEFAULT_TIMEOUT > longest
    login_hold = settings.command_timeout * 3 + settings.timeouts.worst_case + 15
    assert DEFAULT_TIMEOUT > login_hold + settings.scan_attempts * settings.scan_timeout


# --- the connector's use of them (FakeHost) ------------------------------------------


def test_connect_refuses_an_unsafe_lock_directory_before_any_command(
    host: FakeHost, tmp_path: Path
) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks").chmod(0o777)
    connector = connector_with(host, tmp_path / "locks")
    with pytest.raises(LockPathError, match="has mode 0777"):
        connector.connect_volume(plural())
    with pytest.raises(LockPathError, match="has mode 0777"):
        connector.disconnect_volume(plural(), None)
    assert host.calls == [] and host.writes == []
    assert host.leftovers() == {}


def test_a_node_lock_held_elsewhere_fails_only_its_path(host: FakeHost, tmp_path: Path) -> None:
    connector = connector_with(host, tmp_path, lock_timeout=0.3)
    with _held_by_child(str(tmp_path), PORTALS[0], IQN):
        info = connector.connect_volume(plural())
        assert connector.wait_for_pending(10)
    states = {p["portal"]: (p["state"], p.get("reason") or "") for p in info["paths"]}
    state, reason = states.pop(PORTALS[0])
    assert state == "failed"
    assert reason.startswith(
        f"the lock of node record {IQN} {PORTALS[0]} iface default was still held"
    )
    assert CHAP[1] not in reason
    assert {s for s, _ in states.values()} == {"active"}
    connector.disconnect_volume(plural(), info)
    assert host.leftovers() == {}


def test_two_connectors_with_two_lock_paths_use_two_directories(
    host: FakeHost, tmp_path: Path
) -> None:
    first = connector_with(host, tmp_path / "a")
    second = connector_with(host, tmp_path / "b")
    one, two = first.connect_volume(plural(1)), second.connect_volume(plural(2))
    for directory in ("a", "b"):
        names = os.listdir(tmp_path / directory)
        assert sum(n.startswith("multipath-brick-node-") for n in names) == len(PORTALS)
        assert sum(n.startswith("multipath-brick-wwid-") for n in names) == 1
    first.disconnect_volume(plural(1), one)
    second.disconnect_volume(plural(2), two)
    assert host.leftovers() == {}


def test_a_connector_without_lock_path_uses_os_brick_lock_path(
    host: FakeHost, tmp_path: Path
) -> None:
    cfg.CONF.set_override("lock_path", str(tmp_path / "brick"), "os_brick")
    try:
        connector = ISCSIMultipathConnector(use_multipath=True, host=host, settings=FAST)
        info = connector.connect_volume(plural())
        connector.disconnect_volume(plural(), info)
    finally:
        cfg.CONF.clear_override("lock_path", "os_brick")
    assert connector.locks.lock_path == str(tmp_path / "brick")
    assert any(n.startswith("multipath-brick-node-") for n in os.listdir(tmp_path / "brick"))
    assert host.leftovers() == {}
