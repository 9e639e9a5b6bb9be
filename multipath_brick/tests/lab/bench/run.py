"""One benchmark run: attach every volume (one thread each when several), then detach.

Between the two, the run waits (at most ``settle`` seconds) until every map has
all its live paths: "attach returned" and "all paths in the map" are both
measured, and the detach does not race paths still joining. A detach that
raises is diagnosed (who holds the map open) and retried every second, up to
:data:`DETACH_ATTEMPTS`: the attach time stays valid, the detach failure is
reported on its own.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..api import Lab
from .guest_cpu import GuestCpu
from .libraries import Library
from .timing import profile, timeline
from .watch import MapWatcher, calibrate, cpu_jiffies, dm_openers, full_at

DETACH_ATTEMPTS = 10


@dataclasses.dataclass
class BenchVolume:
    """What one benchmarked volume is: its connection properties and its WWID."""

    props: dict[str, Any]
    wwid: str


def in_threads(n: int, target: Callable[[int], None], prefix: str) -> None:
    """``target(i)`` for every i < n: in this thread when n is 1, else one thread each."""
    if n == 1:
        target(0)
        return
    threads = [threading.Thread(target=target, args=(i,), name=f"{prefix}{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@dataclasses.dataclass
class Attaches:
    """The attach phase's answers, per volume."""

    infos: list[dict[str, Any] | None]
    errors: list[str | None]
    seconds: list[float]

    def path_states(self, volumes: Sequence[BenchVolume]) -> list[str]:
        """Every path's state; a wrong WWID or a non-multipath device becomes an error."""
        states: list[str] = []
        for i, info in enumerate(self.infos):
            if info is None:
                continue
            got = info.get("multipath_id") or info.get("scsi_wwn")
            if got != volumes[i].wwid:
                self.errors[i] = self.errors[i] or f"WWID {got} != {volumes[i].wwid}"
            if not str(info.get("path", "")).startswith("/dev/dm-"):
                self.errors[i] = self.errors[i] or f"not a multipath device: {info.get('path')}"
            states += [p["state"] for p in info.get("paths") or ()]
        return states


def attach_all(lib: Library, volumes: Sequence[BenchVolume]) -> Attaches:
    """Attach every volume at once (a barrier lines the threads up)."""
    n = len(volumes)
    done = Attaches([None] * n, [None] * n, [0.0] * n)
    barrier = threading.Barrier(n) if n > 1 else None

    def attach(i: int) -> None:
        if barrier is not None:
            barrier.wait()
        start = time.monotonic()
        try:
            done.infos[i] = lib.connect(volumes[i].props)
        except Exception as error:  # noqa: BLE001 - recorded per volume
            done.errors[i] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        done.seconds[i] = time.monotonic() - start

    in_threads(n, attach, "vol")
    return done


@dataclasses.dataclass
class Detaches:
    """The detach phase's answers, per volume."""

    errors: list[list[str]]
    attempts: list[int]
    first: list[float]
    diagnosis: list[dict[str, Any] | None]


def detach_all(
    lib: Library, volumes: Sequence[BenchVolume], infos: Sequence[dict[str, Any] | None]
) -> Detaches:
    """Detach every attached volume at once, each retried as the module docstring says."""
    n = len(volumes)
    done = Detaches([[] for _ in range(n)], [0] * n, [0.0] * n, [None] * n)

    def detach(i: int) -> None:
        info = infos[i]
        if info is None:
            return
        start = time.monotonic()
        for attempt in range(1, DETACH_ATTEMPTS + 1):
            done.attempts[i] = attempt
            try:
                lib.disconnect(volumes[i].props, info)
            except Exception as error:  # noqa: BLE001
                if attempt == 1:
                    done.first[i] = time.monotonic() - start
                    done.diagnosis[i] = dm_openers(str(info.get("path")))
                done.errors[i].append(
                    f"attempt {attempt} at {time.monotonic() - start:.2f}s: "
                    f"{type(error).__name__}: {error}"
                )
                time.sleep(1.0)
                continue
            if attempt == 1:
                done.first[i] = time.monotonic() - start
            return

    in_threads(n, detach, "det")
    return done


def run_once(
    lib: Library,
    lab: Lab,
    volumes: Sequence[BenchVolume],
    live_paths: int,
    settle: float,
    cpu_breakdown: bool = False,
) -> dict[str, Any]:
    """Attach every volume, wait for their maps to fill, detach them; the run's figures."""
    lib.recorder.take()
    speed = calibrate()
    wall = time.time()
    cpu0, proc0 = cpu_jiffies(), time.process_time()
    t0 = time.monotonic()
    watcher = MapWatcher([v.wwid for v in volumes], t0)
    watcher.start()
    sampler = GuestCpu(tempfile.gettempdir()) if cpu_breakdown else None
    attaches = attach_all(lib, volumes)
    attach_s = time.monotonic() - t0
    cpu1, proc1 = cpu_jiffies(), time.process_time()
    # udev finishes a few seconds after the kernel's events: count those too.
    guest_cpu = sampler.stop(udev_settle=10.0) if sampler else None
    deadline = time.monotonic() + settle
    while not watcher.complete(live_paths) and time.monotonic() < deadline:
        time.sleep(0.2)
    map_events = watcher.stop()
    all_paths_s = full_at(map_events, [v.wwid for v in volumes], live_paths)
    attach_calls = lib.recorder.take()
    states = attaches.path_states(volumes)

    t1 = time.monotonic()
    detaches = detach_all(lib, volumes, attaches.infos)
    detach_s = time.monotonic() - t1
    detach_calls = lib.recorder.take()
    left = {k: v for k, v in lab.leftovers().items() if v}
    busy = cpu1[0] - cpu0[0]
    total = max(cpu1[1] - cpu0[1], 1)
    return {
        "attach_s": round(attach_s, 3),
        "started_at": round(wall, 1),
        "speed_index_s": speed,
        "per_volume_attach_s": [round(s, 3) for s in attaches.seconds],
        "attach_errors": [e for e in attaches.errors if e],
        "path_states": {s: states.count(s) for s in sorted(set(states))},
        "guest_cpu_busy_pct": round(100.0 * busy / total, 1),
        "bench_process_cpu_s": round(proc1 - proc0, 2),
        "all_paths_in_map_s": all_paths_s,
        "map_events": map_events,
        "detach_s": round(detach_s, 3),
        "first_detach_attempt_s": [round(s, 3) for s in detaches.first],
        "detach_attempts": detaches.attempts,
        "detach_errors": [e for errs in detaches.errors for e in errs],
        "detach_diagnosis": [d for d in detaches.diagnosis if d],
        "leftovers": left,
        "profile": profile(attach_calls, t0),
        "detach_profile": profile(detach_calls, t1),
        "timeline": timeline(attach_calls, t0),
        "detach_timeline": timeline(detach_calls, t1),
        "guest_cpu": guest_cpu,
    }
