"""Guest CPU of one measured window, by program, without a sampler.

Used by ``lab_floor.py``; runs inside the lab guest as root. Two sources, both
read outside the window, so nothing polls while the work runs:

* ``/proc/<pid>/stat`` of every process at the start and at the end of the
  window: the CPU of every process alive at the end (daemons, udev workers,
  kernel threads, the caller, the privsep daemon) is its own time then minus
  its own time at the start;
* the kernel's process accounting (``acct(2)``, ``CONFIG_BSD_PROCESS_ACCT_V3``):
  one record per process that exits, with its name, parent and CPU time. Every
  short-lived command (each ``iscsiadm``, ``multipath``, udev's ``scsi_id``...)
  is counted whole, by name, whoever started it: a sampler looking every half
  second (``guest_cpu.py``) misses most of them and can only charge them to
  their parent.

Children's time (``cutime``) is never used, so nothing is counted twice. What
no process holds (interrupts, soft interrupts outside ksoftirqd) is the total
busy time of ``/proc/stat`` minus the sum, reported as its own line. The lab's
target (tgtd) runs in the same guest: its CPU is reported apart and left out
of ``host_cpu_s``, the initiator host's share.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import dataclasses
import os
import struct
from typing import Any

# struct acct_v3 (include/uapi/linux/acct.h): 64 bytes, times as comp_t in AHZ (100) ticks.
_ACCT_V3 = struct.Struct("<BBHIIIIIIfHHHHHHHH16s")
_AHZ = 100
_HZ = os.sysconf("SC_CLK_TCK")
_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

#: Program groups of the breakdown (see :func:`group`).
UDEV = "udev (udevd, workers, their programs)"
ISCSIADM = "iscsiadm"
MP_TOOLS = "multipath / multipathd commands"
MULTIPATHD = "multipathd (daemon)"
ISCSID = "iscsid"
KERNEL = "kernel threads"
CALLER = "caller process (python: in-process library + bench harness)"
SCRIPT = "floor.sh (bash)"
PRIVSEP = "privsep daemon"
TARGET = "target (tgtd: the array's side, not the host's)"
OTHER = "other programs"
UNATTRIBUTED = "irq / unattributed"


def _comp_t(value: int) -> int:
    """The kernel's 16-bit float: 13-bit mantissa, 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (3 * (value >> 13))


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    ticks: int  # user + system, in clock ticks (own time only)


def processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = Proc(int(entry), int(rest[1]), name, int(rest[11]) + int(rest[12]))
    return found


def cpu_totals() -> list[int]:
    with open("/proc/stat", encoding="ascii") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def busy_ticks(totals: list[int]) -> int:
    return sum(totals) - totals[3] - totals[4]


class Accounting:
    """The kernel's process accounting, on while the object lives (root only)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "wb"):
            pass
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if self._libc.acct(path.encode()) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"acct({path}): {os.strerror(err)}")

    def offset(self) -> int:
        return os.path.getsize(self.path)

    def exited(self, start: int) -> list[Proc]:
        """Processes that exited since ``start`` (an :meth:`offset`)."""
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read()
        out = []
        for off in range(0, len(data) - _ACCT_V3.size + 1, _ACCT_V3.size):
            rec = _ACCT_V3.unpack_from(data, off)
            if rec[1] != 3:  # ac_version
                continue
            ticks = (_comp_t(rec[10]) + _comp_t(rec[11])) * _HZ // _AHZ
            name = rec[18].split(b"\0", 1)[0].decode(errors="replace")
            out.append(Proc(rec[6], rec[7], name, ticks))
        return out

    def close(self) -> None:
        self._libc.acct(None)


@dataclasses.dataclass
class Window:
    """Start of a measured window: :meth:`stop` gives the breakdown."""

    acct: Accounting
    caller: int
    before: dict[int, Proc] = dataclasses.field(default_factory=dict)
    totals: list[int] = dataclasses.field(default_factory=list)
    offset: int = 0

    @classmethod
    def start(cls, acct: Accounting, caller: int) -> Window:
        w = cls(acct, caller)
        w.offset = acct.offset()
        w.before = processes()
        w.totals = cpu_totals()
        return w

    def stop(self) -> dict[str, Any]:
        totals = cpu_totals()
        after = processes()
        exited = self.acct.exited(self.offset)
        busy = (busy_ticks(totals) - busy_ticks(self.totals)) / _HZ
        known: dict[int, Proc] = {**self.before, **{p.pid: p for p in exited}, **after}
        spent: collections.Counter[str] = collections.Counter()
        programs: collections.Counter[str] = collections.Counter()
        runs: collections.Counter[str] = collections.Counter()
        for p in after.values():
            own = p.ticks - (self.before[p.pid].ticks if p.pid in self.before else 0)
            if own > 0:
                g = group(p, known, self.caller, alive=True)
                spent[g] += own
                programs[f"{g}: {p.name}"] += own
        for p in exited:
            if p.pid in after:  # pid reused within the window; its record is older
                continue
            runs[p.name] += 1
            own = p.ticks - (self.before[p.pid].ticks if p.pid in self.before else 0)
            if own > 0:
                g = group(p, known, self.caller, alive=False)
                spent[g] += own
                programs[f"{g}: {p.name}"] += own
        attributed = sum(spent.values()) / _HZ
        by_group = {k: round(v / _HZ, 2) for k, v in spent.most_common()}
        by_group[UNATTRIBUTED] = round(max(busy - attributed, 0.0), 2)
        return {
            "busy_cpu_s": round(busy, 2),
            "host_cpu_s": round(busy - spent[TARGET] / _HZ, 2),
            "cpu_s": {
                k: round((b - a) / _HZ, 2)
                for k, a, b in zip(_STAT_FIELDS, self.totals, totals, strict=True)
            },
            "by_group": by_group,
            "by_program": {k: round(v / _HZ, 2) for k, v in programs.most_common(20)},
            "exited_processes": len(exited),
            "exited_by_name": dict(runs.most_common(15)),
        }


def _ancestors(p: Proc, known: dict[int, Proc]) -> list[Proc]:
    chain: list[Proc] = []
    seen = {p.pid}
    while p.ppid in known and p.ppid not in seen and len(chain) < 32:
        p = known[p.ppid]
        seen.add(p.pid)
        chain.append(p)
    return chain


def is_privsep_daemon(pid: int) -> bool:
    """A privsep daemon: forked by its caller (os-brick's here), or a program of its
    own that privsep-helper or ``multipath_brick.privsep_daemon`` started (ours),
    whose parent is then init. Either way its command line names its socket."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--privsep_sock_path" in f.read().split(b"\0")
    except OSError:
        return False


def _is_udev(p: Proc) -> bool:
    return p.name in ("systemd-udevd", "udevd", "(udev-worker)") or p.name.startswith("udev")


def group(p: Proc, known: dict[int, Proc], caller: int, *, alive: bool) -> str:
    """Which part of the stack a process's CPU belongs to."""
    chain = _ancestors(p, known)
    if p.pid == 2 or p.ppid == 2:
        return KERNEL
    if _is_udev(p) or any(_is_udev(a) for a in chain):
        return UDEV
    if p.name == "iscsiadm":
        return ISCSIADM
    if p.name in ("multipath", "multipathd") and not alive:
        return MP_TOOLS
    if p.name == "multipathd":
        return MULTIPATHD
    if p.name == "iscsid":
        return ISCSID
    if p.name == "tgtd":
        return TARGET
    if p.pid == caller:
        return CALLER
    if p.name.startswith("python") and (p.ppid == caller or is_privsep_daemon(p.pid)):
        return PRIVSEP
    if p.name in ("bash", "sh") and any(a.pid == caller for a in chain):
        return SCRIPT
    return OTHER
