"""Where a guest's CPU went during a benchmark run, by program, and what udev was sent.

Used by ``lab_attach --cpu-breakdown``; runs inside the lab guest. A sampler
process reads ``/proc/*/stat`` every ``interval`` seconds. A program seen alive is
charged its own CPU time; the CPU of children that came and went between two looks
(most ``iscsiadm``, ``sg_inq`` or ``scsi_id`` runs) reaches their parent's
``cutime`` when it reaps them, and is charged to the parent as "short-lived
children". The sampler charges itself too, so its cost is visible. Kernel threads
and soft interrupts are in the totals, not per program.

Alongside, ``udevadm monitor`` counts the block uevents udev finished, by action
and device kind (``sd``, ``dm``).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from typing import Any

from .cpu_account import is_privsep_daemon

_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _processes() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (name, ppid, own ticks, reaped children's ticks)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        user, system, cuser, csystem = (int(x) for x in rest[11:15])
        found[int(entry)] = (name, int(rest[1]), user + system, cuser + csystem)
    return found


def _label(pid: int, name: str, bench: int) -> str:
    """Python processes by role: the bench, a privsep daemon, this sampler."""
    if pid == bench:
        return "bench (library and harness)"
    if pid == os.getpid():
        return "cpu sampler (this script)"
    if name.startswith("python"):
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as f:
                ppid = next(int(ln.split()[1]) for ln in f if ln.startswith("PPid:"))
        except (OSError, StopIteration):
            return name
        return "privsep daemon" if ppid == bench or is_privsep_daemon(pid) else name
    return name


def _cpu_totals() -> list[int]:
    with open("/proc/stat", encoding="utf-8") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def sample(out: str, bench: int, interval: float) -> None:
    """Sample until ``out + '.stop'`` exists, then write the breakdown to ``out`` (JSON)."""
    hz = os.sysconf("SC_CLK_TCK")
    totals0, started = _cpu_totals(), time.monotonic()
    first = {pid: (own, kids) for pid, (_, _, own, kids) in _processes().items()}
    last: dict[int, tuple[str, int, int, int]] = {}
    labels: dict[int, str] = {}
    alive: set[int] = set()
    while not os.path.exists(out + ".stop"):
        now = _processes()
        alive = set(now)
        for pid, info in now.items():
            first.setdefault(pid, (0, 0))
            last[pid] = info
            if pid not in labels:
                labels[pid] = _label(pid, info[0], bench)
        time.sleep(interval)
    totals1 = _cpu_totals()
    own: collections.Counter[str] = collections.Counter()
    reaped: collections.Counter[str] = collections.Counter()
    seen_children: collections.Counter[int] = collections.Counter()
    for pid, (_, ppid, own_ticks, kid_ticks) in last.items():
        spent = own_ticks - first[pid][0]
        own[labels[pid]] += spent
        if pid not in alive:  # reaped: its time is in its parent's cutime too
            seen_children[ppid] += spent + kid_ticks - first[pid][1]
    for pid, (_, _, _, kid_ticks) in last.items():
        # Children seen alive were charged themselves; the rest is short-lived ones.
        unseen = kid_ticks - first[pid][1] - seen_children.get(pid, 0)
        if unseen > 0:
            reaped[labels[pid]] += unseen
    result = {
        "elapsed_s": round(time.monotonic() - started, 1),
        "cpu_s": {
            k: round((b - a) / hz, 1)
            for k, a, b in zip(_STAT_FIELDS, totals0, totals1, strict=True)
        },
        "own_s": {k: round(v / hz, 2) for k, v in own.most_common() if v},
        "short_lived_children_s": {k: round(v / hz, 2) for k, v in reaped.most_common() if v},
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


def count_udev_events(text: str) -> dict[str, int]:
    """``udevadm monitor --udev -p`` output -> {"sd add": n, "dm change": n, ...}."""
    counts: collections.Counter[str] = collections.Counter()
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines or not lines[0].startswith("UDEV"):
            continue
        props = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        name = props.get("DEVNAME", "").rsplit("/", 1)[-1]
        kind = "dm" if name.startswith("dm-") else "sd" if name.startswith("sd") else "other"
        counts[f"{kind} {props.get('ACTION', '?')}"] += 1
    return dict(sorted(counts.items()))


class GuestCpu:
    """Start before the measured phase, :meth:`stop` after it: the breakdown, or None."""

    def __init__(self, workdir: str, interval: float = 0.5) -> None:
        self._out = os.path.join(workdir, f"guest-cpu-{os.getpid()}-{time.monotonic_ns()}")
        self._sampler = subprocess.Popen(
            [sys.executable, "-m", __name__, self._out, str(os.getpid()), str(interval)]
        )
        self._udev_log = open(self._out + ".udev", "w", encoding="utf-8")  # noqa: SIM115
        self._monitor = subprocess.Popen(
            ["udevadm", "monitor", "--udev", "-p", "-s", "block"], stdout=self._udev_log
        )

    def stop(self, udev_settle: float = 0.0) -> dict[str, Any] | None:
        """End the sampling now; count udev's events ``udev_settle`` seconds later."""
        with open(self._out + ".stop", "w", encoding="utf-8"):
            pass
        self._sampler.wait(timeout=120)
        time.sleep(udev_settle)
        self._monitor.terminate()
        self._monitor.wait(timeout=30)
        self._udev_log.close()
        try:
            with open(self._out, encoding="utf-8") as f:
                result: dict[str, Any] = json.load(f)
            with open(self._out + ".udev", encoding="utf-8") as f:
                result["udev_events"] = count_udev_events(f.read())
        except (OSError, ValueError):
            return None
        finally:
            for suffix in ("", ".stop", ".udev"):
                try:
                    os.unlink(self._out + suffix)
                except OSError:
                    pass
        return result


def format_breakdown(result: dict[str, Any], top: int = 8) -> list[str]:
    """A few lines for the benchmark's report."""
    cpu = result["cpu_s"]
    busy = sum(v for k, v in cpu.items() if k not in ("idle", "iowait"))
    lines = [
        f"guest CPU during the attaches: {busy:.1f} CPU-s busy in {result['elapsed_s']} s "
        f"(user {cpu['user']}, system {cpu['system']}, softirq {cpu['softirq']}; "
        f"idle {cpu['idle']}, iowait {cpu['iowait']})"
    ]
    own = list(result["own_s"].items())[:top]
    lines.append("  own CPU-s: " + ", ".join(f"{k} {v}" for k, v in own))
    reaped = list(result["short_lived_children_s"].items())[:top]
    lines.append(
        "  short-lived children CPU-s, by parent: " + ", ".join(f"{k} {v}" for k, v in reaped)
    )
    if "udev_events" in result:
        events = ", ".join(f"{k} {v}" for k, v in result["udev_events"].items())
        lines.append(f"  block uevents udev finished: {events}")
    return lines


if __name__ == "__main__":
    sample(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
