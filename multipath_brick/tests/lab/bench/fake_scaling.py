"""Scaling benchmark on the FakeHost: does one attach cost more on a full host?

    python -m multipath_brick.tests.lab.bench.fake_scaling [--present 0,64,256,1024] [--repeat 5]

For each count N, a FakeHost gets N volumes attached first; then one more
volume is attached and detached ``--repeat`` times on each host, the hosts
taking turns round by round. Two layouts:

* ``own target``: every volume is the LUN of a target of its own on 2 portals
  (one session per portal per volume, as arrays that export a target per volume);
* ``shared target``: every volume is a LUN of one target on 2 portals (the
  sessions exist already; an attach is a scan and a map).

Printed per row: the median attach and detach time in seconds and the
median CPU time the process spent on them in milliseconds (every thread's:
the library's and the FakeHost's), each with its ratio to the empty host, and
the host calls one attach and one detach make (commands, sysfs writes, file
reads and directory listings): a lookup that walks every session or disk of
the host shows as calls growing with N. On a shared machine the elapsed
times follow its other load; the CPU times much less. Assert nothing: a table
to read (issue 15's target: attach with 256 present within 1.2x of empty).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from functools import partial
from typing import Any, NamedTuple

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
        self.attach_cpu: list[float] = []
        self.detach_cpu: list[float] = []
        self.attach_calls: list[int] = []
        self.detach_calls: list[int] = []

    def once(self) -> None:
        self.counted.arm()
        cpu = time.process_time()
        seconds, info = timed(lambda: self.conn.connect_volume(self.data))
        self.attach_cpu.append(time.process_time() - cpu)
        self.attach_s.append(seconds)
        self.attach_calls.append(self.counted.calls)
        self.counted.arm()
        cpu = time.process_time()
        seconds, _ = timed(partial(self.conn.disconnect_volume, self.data, info))
        self.detach_cpu.append(time.process_time() - cpu)
        self.detach_s.append(seconds)
        self.detach_calls.append(self.counted.calls)

    def medians(self) -> Row:
        """Medians of the rounds."""
        return Row(
            statistics.median(self.attach_s),
            statistics.median(self.attach_cpu),
            statistics.median(self.detach_s),
            statistics.median(self.detach_cpu),
            int(statistics.median(self.attach_calls)),
            int(statistics.median(self.detach_calls)),
        )


class Row(NamedTuple):
    """One host's medians: seconds elapsed and of the process's CPU, host calls."""

    attach: float
    attach_cpu: float
    detach: float
    detach_cpu: float
    attach_calls: int
    detach_calls: int


def rows(counts: list[int], shared: bool, repeat: int) -> list[Row]:
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
    print(f"medians of {args.repeat}; host calls = commands + sysfs writes + reads/listings")
    print("s: elapsed seconds; cpu ms: the process's CPU time (all threads)\n")
    head = f"{'layout':<14} {'N':>5} {'attach s':>9} {'x empty':>8} {'cpu ms':>7} {'x empty':>8}"
    head += f" {'detach s':>9} {'x empty':>8} {'cpu ms':>7} {'x empty':>8}"
    print(f"{head} {'calls/attach':>13} {'calls/detach':>13}")
    print("-" * len(f"{head} {'calls/attach':>13} {'calls/detach':>13}"))
    for shared in (False, True):
        base: Row | None = None
        for n, row in zip(counts, rows(counts, shared, args.repeat), strict=True):
            base = base or row
            name = "shared target" if shared else "own target"
            print(
                f"{name:<14} {n:>5} {row.attach:>9.3f} {row.attach / base.attach:>7.2f}x"
                f" {row.attach_cpu * 1e3:>7.2f} {row.attach_cpu / base.attach_cpu:>7.2f}x"
                f" {row.detach:>9.3f} {row.detach / base.detach:>7.2f}x"
                f" {row.detach_cpu * 1e3:>7.2f} {row.detach_cpu / base.detach_cpu:>7.2f}x"
                f" {row.attach_calls:>13} {row.detach_calls:>13}"
            )


if __name__ == "__main__":
    main()
