"""TicketLock: the node database queue serves waiters by ticket, not by wake-up order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from multipath_brick.locks import TicketLock


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
