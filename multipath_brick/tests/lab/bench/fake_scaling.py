"""Scaling benchmark on the FakeHost: does one attach cost more on a full host?

    python -m multipath_brick.tests.lab.bench.fake_scaling [--present 0,64,256,1024] [--repeat 5]

For each count N, a FakeHost gets N volumes attached first; then one more
volume is attached and detached ``--repeat`` times on each host, the hosts
taking turns round by round. Two layouts:

* ``own target``: every volume is the LUN of a target of its own on 2 portals
  (one session per portal per volume, as arrays that export a target per volume);
* ``shared target``: every volume is a LUN of one target on 2 portals (the
  sessions exist already; an attach is a scan and a map).

Printed per row: the median attach and detach time in seconds, their ratio to
the empty host, and the host calls one attach and one detach make (commands,
sysfs writes, file reads and directory listings): a lookup that walks every
session or disk of the host shows as calls growing with N. Assert nothing: a
table to read (issue 15's target: attach with 256 present within 1.2x of empty).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
from functools import partial
from typing import Any

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.attach import AttachSettings
from multipath_brick.testing import FakeHost
from multipath_brick.testing.faults import FaultyHost

from .fakehost import GIB, plural_props, timed

PORTALS = ["10.9.1.2:3260", "10.9.2.2:3260"]
# No simulated latency: what grows is our own work, not the fake's delays.
SETTINGS = AttachSettings(grace=0.5, poll=0.005)
# The fake's tree in memory, as sysfs is: on a disk file system the fake's own
# file creations (tens of thousands with 1,024 volumes) slow down as the tree
# grows, which would be the fake's cost, not the library's.
TREE = "/dev/shm" if os.path.isdir("/dev/shm") else None


class Layout:
    """Where volume ``i`` lives."""

    def __init__(self, host: FakeHost, shared: bool) -> None:
        self.host, self.shared = host, shared
        if shared:
            host.add_target("iqn.2024-01.bench:shared", PORTALS, luns={})

    def volume(self, i: int) -> dict[str, Any]:
        if self.shared:
            self.host.add_lun("iqn.2024-01.bench:shared", i + 1, GIB)
            return plural_props("iqn.2024-01.bench:shared", PORTALS, i + 1)
        iqn = f"iqn.2024-01.bench:v{i}"
        self.host.add_target(iqn, PORTALS, luns={1: GIB})
        return plural_props(iqn, PORTALS, 1)


class Filled:
    """A FakeHost with ``present`` volumes attached, and one more to attach and detach."""

    def __init__(self, present: int, shared: bool, stack: contextlib.ExitStack) -> None:
        locks = tempfile.mkdtemp(prefix="mpb-bench-")
        root = tempfile.mkdtemp(prefix="fakehost-", dir=TREE)
        # A FakeHost leaves a root it was given: the bench removes its own, or
        # every run would leave about 140,000 files (1,024 volumes) in tmpfs,
        # whose number of files is limited.
        for made in (locks, root):
            stack.callback(shutil.rmtree, made, ignore_errors=True)
        host = stack.enter_context(FakeHost(time_scale=0, root=root))
        layout = Layout(host, shared)
        filler = ISCSIMultipathConnector(
            use_multipath=True, host=host, settings=SETTINGS, lock_path=locks
        )
        for i in range(present):
            filler.connect_volume(layout.volume(i))
        self.counted = FaultyHost(host, kinds=("run", "write", "read"))
        self.conn = ISCSIMultipathConnector(
            use_multipath=True, host=self.counted, settings=SETTINGS, lock_path=locks
        )
        self.data = layout.volume(present)
        self.attach_s: list[float] = []
        self.detach_s: list[float] = []
        self.attach_calls: list[int] = []
        self.detach_calls: list[int] = []

    def once(self) -> None:
        self.counted.arm()
        seconds, info = timed(lambda: self.conn.connect_volume(self.data))
        self.attach_s.append(seconds)
        self.attach_calls.append(self.counted.calls)
        self.counted.arm()
        seconds, _ = timed(partial(self.conn.disconnect_volume, self.data, info))
        self.detach_s.append(seconds)
        self.detach_calls.append(self.counted.calls)

    def medians(self) -> tuple[float, float, int, int]:
        """(attach s, detach s, host calls per attach, per detach)."""
        return (
            statistics.median(self.attach_s),
            statistics.median(self.detach_s),
            int(statistics.median(self.attach_calls)),
            int(statistics.median(self.detach_calls)),
        )


def rows(counts: list[int], shared: bool, repeat: int) -> list[tuple[float, float, int, int]]:
    """One row per count: every host filled first, then the rounds interleaved
    (one attach and detach on each host per round), so that a change in the
    machine's load slows every count alike."""
    with contextlib.ExitStack() as stack:
        hosts = [Filled(n, shared, stack) for n in counts]
        for _ in range(repeat):
            for filled in hosts:
                filled.once()
        return [filled.medians() for filled in hosts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--present", default="0,64,256,1024", help="volumes attached first")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    counts = [int(n) for n in args.present.split(",")]

    print("FakeHost scaling: one volume (2 portals) attached and detached beside N others")
    print(f"medians of {args.repeat}; host calls = commands + sysfs writes + reads/listings\n")
    head = f"{'layout':<14} {'N':>5} {'attach s':>9} {'x empty':>8} {'detach s':>9}"
    print(f"{head} {'x empty':>8} {'calls/attach':>13} {'calls/detach':>13}")
    print("-" * 84)
    for shared in (False, True):
        base: tuple[float, float] | None = None
        for n, (attach, detach, a_calls, d_calls) in zip(
            counts, rows(counts, shared, args.repeat), strict=True
        ):
            base = base or (attach, detach)
            name = "shared target" if shared else "own target"
            print(
                f"{name:<14} {n:>5} {attach:>9.3f} {attach / base[0]:>7.2f}x {detach:>9.3f}"
                f" {detach / base[1]:>7.2f}x {a_calls:>13} {d_calls:>13}"
            )


if __name__ == "__main__":
    main()
