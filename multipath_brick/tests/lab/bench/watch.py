"""What the guest shows during a benchmark run: maps in sysfs, CPU, open devices."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any


class MapWatcher(threading.Thread):
    """Notes when each volume's multipath map appears in sysfs and its slave count changes.

    Polls every 0.2 s (cheap: one listdir and a few small reads), the same for both
    libraries; tells 'multipathd add path returned' apart from 'the map exists'.
    """

    def __init__(self, wwids: Sequence[str], t0: float, interval: float = 0.2) -> None:
        super().__init__(name="mapwatch", daemon=True)
        self.wwids = set(wwids)
        self.t0 = t0
        self.interval = interval
        self.events: list[list[Any]] = []
        self._stop_event = threading.Event()
        self._last: dict[str, int] = {}

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        try:
            names = [n for n in os.listdir("/sys/block") if n.startswith("dm-")]
        except OSError:
            return
        for dm in names:
            try:
                with open(f"/sys/block/{dm}/dm/uuid", encoding="ascii") as f:
                    uuid = f.read().strip()
                slaves = len(os.listdir(f"/sys/block/{dm}/slaves"))
            except OSError:
                continue
            wwid = uuid[len("mpath-") :]
            if wwid in self.wwids and self._last.get(wwid) != slaves:
                self._last[wwid] = slaves
                self.events.append([round(time.monotonic() - self.t0, 2), wwid, dm, slaves])

    def complete(self, paths: int) -> bool:
        """Whether every watched map has at least ``paths`` slaves now."""
        return len(self._last) == len(self.wwids) and all(k >= paths for k in self._last.values())

    def stop(self) -> list[list[Any]]:
        self._stop_event.set()
        self.join(5)
        return self.events


def full_at(events: Sequence[Sequence[Any]], wwids: Sequence[str], paths: int) -> float | None:
    """Seconds until the last of the volumes' maps had ``paths`` slaves (None: never)."""
    times = []
    for wwid in wwids:
        t = next((e[0] for e in events if e[1] == wwid and e[3] >= paths), None)
        if t is None:
            return None
        times.append(t)
    return max(times) if times else None


def calibrate() -> float:
    """Seconds for a fixed bit of pure-Python work: a speed index of the guest right now
    (another guest on the same host shows up as a larger value)."""
    start = time.monotonic()
    total = 0
    for i in range(300_000):
        total += i & 7
    return round(time.monotonic() - start, 3)


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs of the guest, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def dm_openers(device: str) -> dict[str, Any]:
    """Who holds a block device open right now: processes, holders, dm open count."""
    found: list[str] = []
    try:
        rdev = os.stat(device).st_rdev
    except OSError as error:
        return {"error": str(error)}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    cmd = "?"
                found.append(f"{pid} {cmd[:80]}")
    name = os.path.basename(device)
    try:
        holders = os.listdir(f"/sys/block/{name}/holders")
    except OSError:
        holders = []
    proc = subprocess.run(
        [
            "dmsetup",
            "info",
            "-c",
            "--noheadings",
            "-o",
            "name,open",
            "-j",
            str(os.major(rdev)),
            "-m",
            str(os.minor(rdev)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return {"processes": found, "holders": holders, "dm_name_open": proc.stdout.strip()}
