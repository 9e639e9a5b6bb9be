"""Lab attach benchmark: multipath-brick vs os-brick 7.1's ISCSIConnector, real kernel.

Runs inside the QEMU lab guest (tgt behind 4 portals with CHAP, iscsid, multipathd):

    python -m multipath_brick.tests.lab bench [-- --repeat 3 ...]

Every scenario runs the same workload with both libraries, interleaved run by
run, each run on a fresh LUN (new WWID), attach then detach, then a check that
nothing is left (sessions, node/discovery records, sdX, maps) and a lab reset:

* 1, 2 and 4 portals, ``--latency-ms`` netem delay on every portal;
* 4 portals, one dead (iptables DROP before attach): multipath-brick with its
  default grace and login timeouts, os-brick with the lab's stock iscsid.conf
  login timeouts (15 s x 8 = ~120 s), so os-brick runs it ``--osbrick-dead-repeat``
  times only;
* ``--volumes`` volumes attached at once from as many threads (one connector per
  library, shared by the threads), over 4 portals: LUNs of one target
  (``luns``) and/or one target per volume (``targets``).

Reported: median attach seconds (os-brick/ours = how many times faster we
are), throughput of the concurrent attaches, the issue's targets, the detach
times, and per-step breakdowns: every privileged call of multipath-brick timed
through a wrapping Host (every command of os-brick through its ``execute``),
when each map appeared in sysfs, and the guest's CPU load. A detach that raises
is diagnosed (who holds the map open) and retried every second; the attach
time of that run still counts, the detach failure is reported on its own. One
uncounted 1-portal warm-up run per library comes first (``--warmup``). Raw
numbers, with every call's timeline, go to ``--json``. With ``--cpu-breakdown``
the concurrent rows also say where the guest's CPU went during the attaches, by
program, and which block uevents udev finished (:mod:`.guest_cpu`; its sampler
costs some CPU itself, so leave it off for the timings that count).

Both libraries run as root with a forked privsep daemon (no sudo, no
privsep-helper); os-brick's daemon gets the same thread pool size as ours
(``--osbrick-pool``, 0 keeps oslo.privsep's default: the CPU count) so that
the guest's 2 vCPUs do not cap os-brick's parallel logins.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from multipath_brick.host.base import CommandResult
from multipath_brick.multipath.control import usable_wwids
from multipath_brick.verbs import (
    Command,
    MultipathdShowPaths,
    RecordWrite,
    SysfsWrite,
)

from .. import in_lab_guest
from ..api import Lab
from ..demo import format_table, lab_props
from ..vm import REPO_ROOT
from .guest_cpu import GuestCpu, format_breakdown

LUN_MB = 64
OURS = "multipath-brick"
OSB = "os-brick"


# --- timing of every privileged call ------------------------------------------------
@dataclasses.dataclass
class Call:
    label: str
    start: float
    end: float
    thread: str
    rc: int | None = None
    argv: str = ""
    out: str = ""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    @contextmanager
    def timed(self, label: str) -> Iterator[dict[str, Any]]:
        """Time the block; it may fill the yielded dict with rc, argv and out."""
        note: dict[str, Any] = {}
        start = time.monotonic()
        try:
            yield note
        finally:
            self.calls.append(
                Call(
                    label,
                    start,
                    time.monotonic(),
                    threading.current_thread().name,
                    note.get("rc"),
                    str(note.get("argv", ""))[:160],
                    str(note.get("out", ""))[:160],
                )
            )

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


class TimingHost:
    """A Host that times every privileged call of the real one it wraps."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._rec = recorder

    def run(self, command: Command | RecordWrite, *, timeout: float) -> CommandResult:
        with self._rec.timed(type(command).__name__) as note:
            note["argv"] = " ".join(command.display())  # secrets masked
            result: CommandResult = self._inner.run(command, timeout=timeout)
            note["rc"] = result.exit_code
            note["out"] = (result.stderr.strip() or result.stdout.strip()).replace("\n", " | ")
            if isinstance(command, MultipathdShowPaths):
                # The whole table is too long to keep: what usable_s needs of it.
                note["out"] = "usable: " + " ".join(sorted(usable_wwids(result.stdout)))
            return result

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        with self._rec.timed(type(write).__name__) as note:
            note["argv"] = f"{write.path()} <- {write.value()}"
            self._inner.write(write, timeout=timeout)
            note["rc"] = 0

    def read_text(self, path: str) -> str:
        text: str = self._inner.read_text(path)
        return text

    def list_dir(self, path: str) -> list[str]:
        names: list[str] = self._inner.list_dir(path)
        return names

    def exists(self, path: str) -> bool:
        return bool(self._inner.exists(path))

    def realpath(self, path: str) -> str:
        real: str = self._inner.realpath(path)
        return real

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def osbrick_label(cmd: Sequence[str]) -> str:
    """A short name for a command os-brick ran: 'iscsiadm update', 'tee .../scan'."""
    if not cmd:
        return "?"
    prog = os.path.basename(cmd[0])
    args = list(cmd[1:])
    if prog == "iscsiadm":
        for flag in ("--op", "-o"):
            if flag in args and args.index(flag) + 1 < len(args):
                return f"iscsiadm {args[args.index(flag) + 1]}"
        for word in ("--login", "--logout", "--rescan", "-R"):
            if word in args:
                return f"iscsiadm {word.lstrip('-')}"
        mode = (
            args[args.index("-m") + 1] if "-m" in args and args.index("-m") + 1 < len(args) else ""
        )
        return f"iscsiadm -m {mode}".strip()
    if prog == "tee" and args:
        return "tee " + "/".join(args[-1].split("/")[-1:])
    return " ".join([prog, *args[:1]])


# --- the two libraries ----------------------------------------------------------------
class Library:
    name = ""

    def __init__(self) -> None:
        self.recorder = Recorder()

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        raise NotImplementedError


class Ours(Library):
    name = OURS

    def __init__(self, grace: float) -> None:
        super().__init__()
        from multipath_brick import ISCSIMultipathConnector
        from multipath_brick.host.linux import LinuxHost
        from multipath_brick.privileged import start_daemon

        start_daemon(None)  # fork the privsep daemon now, outside any timing
        self.grace = grace
        self.conn = ISCSIMultipathConnector(
            use_multipath=True,
            root_helper=None,
            host=TimingHost(LinuxHost(), self.recorder),
            grace=grace,
            lock_path=tempfile.mkdtemp(prefix="mpb-bench-locks-"),
        )

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(props)
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(props, info)


class OsBrick(Library):
    name = OSB

    def __init__(self, privsep: str, pool: int) -> None:
        super().__init__()
        from oslo_concurrency import lockutils  # noqa: F401 - registers [oslo_concurrency]
        from oslo_config import cfg

        cfg.CONF(args=[], project="mpb-lab-bench", default_config_files=[])
        cfg.CONF.set_override(
            "lock_path", tempfile.mkdtemp(prefix="osbrick-locks-"), "oslo_concurrency"
        )
        import os_brick
        from os_brick import privileged
        from os_brick.initiator.connectors.iscsi import ISCSIConnector
        from os_brick.privileged import rootwrap
        from oslo_privsep import priv_context

        os_brick.setup(cfg.CONF)  # 7.x: sets [os_brick] lock_path from oslo_concurrency's
        if pool > 0:
            cfg.CONF.set_override("thread_pool_size", pool, "privsep_osbrick")
        self.pool = cfg.CONF.privsep_osbrick.thread_pool_size
        self.privsep = privsep
        for ctx in (privileged.default, privileged.brick_privsep_hide_output):
            if privsep == "inprocess":
                ctx.set_client_mode(False)
            else:
                # We are root: fork the daemon as oslo.privsep would after sudo
                # privsep-helper, without needing either.
                ctx.start(priv_context.Method.FORK)
        recorder = self.recorder

        from oslo_concurrency import processutils
        from oslo_utils import strutils

        def execute(*cmd: str, **kwargs: Any) -> Any:
            with recorder.timed(osbrick_label(cmd)) as note:
                note["argv"] = strutils.mask_password(" ".join(str(c) for c in cmd))
                try:
                    out = rootwrap.execute(*cmd, **kwargs)
                except processutils.ProcessExecutionError as error:
                    note["rc"] = error.exit_code
                    note["out"] = str(error.stderr or "").strip().replace("\n", " | ")
                    raise
                note["rc"] = 0
                if isinstance(out, tuple) and out:
                    note["out"] = str(out[0] or "").strip().replace("\n", " | ")
                return out

        self.conn = ISCSIConnector(root_helper=None, execute=execute, use_multipath=True)
        self.version = getattr(os_brick, "__version__", "")
        try:
            from importlib.metadata import version

            self.version = version("os-brick")
        except Exception:  # noqa: BLE001, S110 - cosmetic only
            pass

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(dict(props))
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(dict(props), info)


# --- one run ---------------------------------------------------------------------------
@dataclasses.dataclass
class Volume:
    props: dict[str, Any]
    wwid: str


def profile(calls: Sequence[Call], t0: float) -> list[dict[str, Any]]:
    """Calls grouped by label: count, summed and max seconds, first start, last end."""
    groups: dict[str, list[Call]] = {}
    for c in calls:
        groups.setdefault(c.label, []).append(c)
    out = []
    for label, cs in groups.items():
        out.append(
            {
                "call": label,
                "n": len(cs),
                "sum_s": round(sum(c.end - c.start for c in cs), 3),
                "max_s": round(max(c.end - c.start for c in cs), 3),
                "first_start_s": round(min(c.start for c in cs) - t0, 3),
                "last_end_s": round(max(c.end for c in cs) - t0, 3),
                "failed": sum(1 for c in cs if c.rc not in (None, 0)),
            }
        )
    return sorted(out, key=lambda g: g["first_start_s"])


def timeline(calls: Sequence[Call], t0: float) -> list[list[Any]]:
    """Every call: [start s, seconds, thread, label, rc, argv (masked), output head]."""
    return [
        [round(c.start - t0, 3), round(c.end - c.start, 3), c.thread, c.label, c.rc, c.argv, c.out]
        for c in sorted(calls, key=lambda c: c.start)
    ]


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


DETACH_ATTEMPTS = 10


def run_once(
    lib: Library,
    lab: Lab,
    volumes: Sequence[Volume],
    live_paths: int,
    settle: float,
    cpu_breakdown: bool = False,
) -> dict[str, Any]:
    """Attach every volume (from one thread each when several), then detach them.

    Between the two, wait (at most ``settle`` seconds) until every map has all
    ``live_paths`` paths: "attach returned" and "all paths in the map" are both
    measured, and the detach does not race paths still joining.

    A detach that raises is diagnosed (who holds the map open) and retried every
    second, up to DETACH_ATTEMPTS: the attach time stays valid, the detach
    failure is reported on its own.
    """
    n = len(volumes)
    infos: list[dict[str, Any] | None] = [None] * n
    attach_errors: list[str | None] = [None] * n
    own: list[float] = [0.0] * n
    barrier = threading.Barrier(n) if n > 1 else None

    def attach(i: int) -> None:
        if barrier is not None:
            barrier.wait()
        start = time.monotonic()
        try:
            infos[i] = lib.connect(volumes[i].props)
        except Exception as error:  # noqa: BLE001 - recorded per volume
            attach_errors[i] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        own[i] = time.monotonic() - start

    def in_threads(target: Callable[[int], None], prefix: str) -> None:
        if n == 1:
            target(0)
            return
        threads = [
            threading.Thread(target=target, args=(i,), name=f"{prefix}{i}") for i in range(n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    lib.recorder.take()
    speed = calibrate()
    wall = time.time()
    cpu0, proc0 = cpu_jiffies(), time.process_time()
    t0 = time.monotonic()
    watcher = MapWatcher([v.wwid for v in volumes], t0)
    watcher.start()
    sampler = GuestCpu(tempfile.gettempdir()) if cpu_breakdown else None
    in_threads(attach, "vol")
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

    states: list[str] = []
    for i, info in enumerate(infos):
        if info is None:
            continue
        got = info.get("multipath_id") or info.get("scsi_wwn")
        if got != volumes[i].wwid:
            attach_errors[i] = attach_errors[i] or f"WWID {got} != {volumes[i].wwid}"
        if not str(info.get("path", "")).startswith("/dev/dm-"):
            attach_errors[i] = attach_errors[i] or f"not a multipath device: {info.get('path')}"
        states += [p["state"] for p in info.get("paths") or ()]

    detach_errors: list[list[str]] = [[] for _ in range(n)]
    detach_attempts = [0] * n
    first_detach = [0.0] * n
    diagnosis: list[dict[str, Any] | None] = [None] * n

    def detach(i: int) -> None:
        info = infos[i]
        if info is None:
            return
        start = time.monotonic()
        for attempt in range(1, DETACH_ATTEMPTS + 1):
            detach_attempts[i] = attempt
            try:
                lib.disconnect(volumes[i].props, info)
            except Exception as error:  # noqa: BLE001
                if attempt == 1:
                    first_detach[i] = time.monotonic() - start
                    diagnosis[i] = dm_openers(str(info.get("path")))
                detach_errors[i].append(
                    f"attempt {attempt} at {time.monotonic() - start:.2f}s: "
                    f"{type(error).__name__}: {error}"
                )
                time.sleep(1.0)
                continue
            if attempt == 1:
                first_detach[i] = time.monotonic() - start
            return

    t1 = time.monotonic()
    in_threads(detach, "det")
    detach_s = time.monotonic() - t1
    detach_calls = lib.recorder.take()
    left = {k: v for k, v in lab.leftovers().items() if v}
    busy = cpu1[0] - cpu0[0]
    total = max(cpu1[1] - cpu0[1], 1)
    return {
        "attach_s": round(attach_s, 3),
        "started_at": round(wall, 1),
        "speed_index_s": speed,
        "per_volume_attach_s": [round(s, 3) for s in own],
        "attach_errors": [e for e in attach_errors if e],
        "path_states": {s: states.count(s) for s in sorted(set(states))},
        "guest_cpu_busy_pct": round(100.0 * busy / total, 1),
        "bench_process_cpu_s": round(proc1 - proc0, 2),
        "all_paths_in_map_s": all_paths_s,
        "map_events": map_events,
        "detach_s": round(detach_s, 3),
        "first_detach_attempt_s": [round(s, 3) for s in first_detach],
        "detach_attempts": detach_attempts,
        "detach_errors": [e for errs in detach_errors for e in errs],
        "detach_diagnosis": [d for d in diagnosis if d],
        "leftovers": left,
        "profile": profile(attach_calls, t0),
        "detach_profile": profile(detach_calls, t1),
        "timeline": timeline(attach_calls, t0),
        "detach_timeline": timeline(detach_calls, t1),
        "guest_cpu": guest_cpu,
    }


# --- scenarios ----------------------------------------------------------------------------
@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    portals: int
    dead: int | None = None
    volumes: int = 1
    layout: str = "luns"  # several volumes: LUNs of one target, or one target each


def prepare(lab: Lab, sc: Scenario, latency_ms: int) -> list[Volume]:
    """Reset the lab, then build the scenario's target side; returns the volumes."""
    errors = lab.reset()
    if errors:
        print(f"  lab reset errors: {errors}", flush=True)
    for k in range(sc.portals):
        if latency_ms:
            lab.set_latency(k, latency_ms)
    if sc.dead is not None:
        lab.portal_down(sc.dead)
    volumes = []
    chosen = list(range(sc.portals))
    for v in range(sc.volumes):
        if sc.layout == "targets" and sc.volumes > 1:
            iqn = f"{lab.iqn}-v{v}"
            wwid = lab.add_target(iqn, {1: LUN_MB}, chap=lab.chap)[1]
            props = lab_props(lab, 1, chosen)
            props["target_iqns"] = [iqn] * len(chosen)
        else:
            wwid = lab.add_lun(v + 1, LUN_MB)
            props = lab_props(lab, v + 1, chosen)
        volumes.append(Volume(props, wwid))
    return volumes


def attached(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs whose attach worked (detach problems are reported separately)."""
    return [r for r in runs if not r["attach_errors"]]


def median(runs: Sequence[dict[str, Any]], key: str = "attach_s") -> float | None:
    ok = [r[key] for r in attached(runs)]
    return round(statistics.median(ok), 3) if ok else None


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    ok = sorted(attached(runs), key=lambda r: r["attach_s"])
    return ok[(len(ok) - 1) // 2] if ok else None


def fmt(x: float | None) -> str:
    return "ERR" if x is None else f"{x:.2f}"


def states_text(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    st = run["path_states"]
    text = "/".join(f"{st[k]}{k[0]}" for k in ("active", "pending", "failed") if st.get(k))
    return text or "-"


def full_text(runs: Sequence[dict[str, Any]]) -> str:
    done = [r["all_paths_in_map_s"] for r in attached(runs) if r["all_paths_in_map_s"]]
    if not runs:
        return "-"
    if not done:
        return "never"
    text = f"{statistics.median(done):.2f}"
    return text if len(done) == len(attached(runs)) else f"{text} ({len(done)} runs)"


def detach_text(runs: Sequence[dict[str, Any]]) -> str:
    if not runs:
        return "-"
    med = statistics.median(r["detach_s"] for r in runs)
    failed = sum(1 for r in runs if r["detach_errors"])
    left = sum(1 for r in runs if r["leftovers"])
    text = f"{med:.2f}"
    if failed:
        text += f", {failed}/{len(runs)} runs raised"
    if left:
        text += f", {left}/{len(runs)} LEFT STATE"
    return text


def print_profile(title: str, run: dict[str, Any]) -> None:
    print(
        f"\n  {title}: median run {run['attach_s']:.2f} s, guest CPU busy "
        f"{run['guest_cpu_busy_pct']}%, bench process CPU {run['bench_process_cpu_s']} s"
    )
    rows = [
        (
            g["call"],
            g["n"],
            g["failed"] or "",
            f"{g['sum_s']:.2f}",
            f"{g['max_s']:.2f}",
            f"{g['first_start_s']:.2f}",
            f"{g['last_end_s']:.2f}",
        )
        for g in run["profile"]
    ]
    headers = ("CALL", "N", "RC!=0", "SUM S", "MAX S", "FIRST START", "LAST END")
    table = format_table(headers, rows, (1, 2, 3, 4, 5, 6))
    print("\n".join("    " + ln for ln in table.splitlines()))
    events = run.get("map_events") or []
    if events:
        shown = ", ".join(f"{dm} {k} slave(s) at {t:.2f}" for t, _, dm, k in events[:8])
        more = f" (+{len(events) - 8} more)" if len(events) > 8 else ""
        print(f"    map in sysfs: {shown}{more}", flush=True)
    if run.get("guest_cpu"):
        print("\n".join("    " + ln for ln in format_breakdown(run["guest_cpu"])), flush=True)


def git_describe() -> str:
    """The library's commit (and whether the checkout has changes), for the record."""

    def git(*args: str) -> str:
        argv = ["git", "-C", REPO_ROOT, *args]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=60
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + local changes' if dirty else ''}" if head else "unknown"


def iscsiadm_probe(lab: Lab) -> dict[str, Any]:
    """What one iscsiadm costs here, and whether one update can carry every setting.

    On a scratch node record (an IQN no target has): 7 settings (no secret:
    a password never goes on a command line, not even a scratch one) written with
    one ``iscsiadm -o update`` each (as the library does) vs all 7 as repeated
    ``-n/-v`` pairs of a single update; both read back with ``-o show``.
    """
    iqn = "iqn.2024-01.org.multipath-brick.bench:probe"
    node = ["iscsiadm", "-m", "node", "-T", iqn, "-p", lab.portals[0], "-I", "default"]
    settings = [
        ("node.startup", "manual"),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", "7"),
        ("node.session.initial_login_retry_max", "3"),
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", "probeuser"),
        ("node.conn[0].timeo.noop_out_interval", "5"),
    ]

    def timed_run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        return time.monotonic() - start, proc

    def applied() -> bool:
        shown = timed_run([*node, "-o", "show"])[1].stdout
        return all(f"{k} = {v}" in shown for k, v in settings)

    out: dict[str, Any] = {}
    out["true_s"] = round(timed_run(["true"])[0], 3)
    timed_run([*node, "-o", "new"])
    t = time.monotonic()
    for k, v in settings:
        timed_run([*node, "-o", "update", "-n", k, "-v", v])
    out["seven_updates_s"] = round(time.monotonic() - t, 3)
    out["seven_updates_applied"] = applied()
    timed_run([*node, "-o", "delete"])
    timed_run([*node, "-o", "new"])
    pairs = [a for k, v in settings for a in ("-n", k, "-v", v)]
    seconds, proc = timed_run([*node, "-o", "update", *pairs])
    out["one_update_s"] = round(seconds, 3)
    out["one_update_rc"] = proc.returncode
    out["one_update_applied"] = applied()
    timed_run([*node, "-o", "delete"])
    return out


def usable_s(run: dict[str, Any]) -> float | None:
    """When the map was first seen usable (end of that check): a show-paths
    answer with a usable WWID, or (older runs) a successful 'multipath -C'."""
    for t in run.get("timeline") or ():
        seen = t[3] == "MultipathdShowPaths" and str(t[6]).strip() != "usable:"
        if seen or (t[3] in ("MultipathCheck", "multipath -C") and t[4] == 0):
            return round(float(t[0]) + float(t[1]), 2)
    return None


def throughput(run: dict[str, Any], volumes: int) -> float:
    """Volumes attached successfully per second of the concurrent attach."""
    ok = volumes - len(run["attach_errors"])
    return ok / run["attach_s"] if run["attach_s"] else 0.0


def report(
    meta: dict[str, Any],
    scenarios: Sequence[Scenario],
    results: dict[str, dict[str, list[dict[str, Any]]]],
    probe: dict[str, Any] | None,
) -> dict[str, Any]:
    """Print the tables and per-step breakdowns; return the verdicts on the targets."""
    grace = float(meta["grace_s"])

    def med(key: str, lib: str) -> float | None:
        return median(results.get(key, {}).get(lib, []))

    rows = []
    detach_rows = []
    verdicts: dict[str, Any] = {}
    for sc in scenarios:
        ours_runs = results.get(sc.key, {}).get(OURS, [])
        osb_runs = results.get(sc.key, {}).get(OSB, [])
        m_ours, m_osb = median(ours_runs), median(osb_runs)
        cell_ours = (
            f"{fmt(m_ours)} ({len(attached(ours_runs))}/{len(ours_runs)}, "
            f"{states_text(median_run(ours_runs))})"
        )
        cell_osb = f"{fmt(m_osb)} ({len(attached(osb_runs))}/{len(osb_runs)})"
        ratio = f"{m_osb / m_ours:.2f}x" if m_ours and m_osb else "-"
        target = ""
        if sc.key == "p4" and med("p1", OURS) and m_ours:
            r4 = m_ours / (med("p1", OURS) or 1)
            target = f"4p/1p = {r4:.2f}x (<= 1.3x): {'met' if r4 <= 1.3 else 'MISSED'}"
            verdicts["ours_4p_over_1p"] = round(r4, 3)
            if med("p1", OSB) and m_osb:
                verdicts["osbrick_4p_over_1p"] = round(m_osb / (med("p1", OSB) or 1), 3)
        if sc.key == "dead" and m_ours is not None:
            limit = (med("p4", OURS) or 0.0) + grace
            ok = m_ours <= limit
            after = [
                round(r["attach_s"] - u, 1) for r in attached(ours_runs) if (u := usable_s(r))
            ]
            target = (
                f"<= 4p + grace = {limit:.1f} s: {'met' if ok else 'MISSED'}; "
                f"returned {after} s after the map was usable"
            )
            verdicts["dead_within_grace"] = ok
            verdicts["dead_return_after_usable_s"] = after
        if sc.volumes > 1:
            # Concurrent rows: every run counts; throughput counts the volumes attached.
            def cell(
                runs: Sequence[dict[str, Any]], vols: int = sc.volumes
            ) -> tuple[str, float | None]:
                if not runs:
                    return "-", None
                mid = sorted(runs, key=lambda r: r["attach_s"])[(len(runs) - 1) // 2]
                ok = vols - len(mid["attach_errors"])
                tp = statistics.median(throughput(r, vols) for r in runs)
                return f"{mid['attach_s']:.2f} ({ok}/{vols} vol ok)", tp

            cell_ours, tp_ours = cell(ours_runs)
            cell_osb, tp_osb = cell(osb_runs)
            if tp_ours is not None and tp_osb:
                ratio = f"{tp_ours / tp_osb:.2f}x"
                target = (
                    f"{tp_ours:.3f} vs {tp_osb:.3f} vol/s = {tp_ours / tp_osb:.2f}x "
                    f"(>= 3x): {'met' if tp_ours / tp_osb >= 3 else 'MISSED'}"
                )
                verdicts[f"{sc.key}_throughput_ratio"] = round(tp_ours / tp_osb, 3)
        rows.append(
            (
                sc.title,
                cell_ours,
                full_text(ours_runs),
                cell_osb,
                full_text(osb_runs),
                ratio,
                target,
            )
        )
        detach_rows.append((sc.title, detach_text(ours_runs), detach_text(osb_runs)))
    osb_name = f"{OSB} {meta.get('osbrick_version') or ''}".strip()
    print()
    print(
        f"Attach seconds, median (ok runs/runs, paths a=active p=pending f=failed); "
        f"kernel {meta['kernel']} under TCG, {meta['cpus']} vCPU; {osb_name} "
        f"(privsep {meta.get('osbrick_privsep')}, pool {meta.get('osbrick_thread_pool')}); "
        f"multipath-brick {meta.get('library', '')}, grace {grace} s"
    )
    headers = ("SCENARIO", OURS, "all paths", osb_name, "all paths", "OS-BRICK/OURS", "TARGET")
    print(format_table(headers, rows, (2, 4, 5)))
    print(
        "  all paths = seconds from the attach call until every live path is in the map "
        f"(median; waited for at most {meta.get('settle_s', 60):.0f} s after the attach "
        "returned); concurrent rows: OS-BRICK/OURS is the throughput ratio"
    )
    print()
    print("Detach seconds, median (including retries of a detach that raised)")
    print(format_table(("SCENARIO", OURS, osb_name), detach_rows))
    for sc in scenarios:
        runs = results.get(sc.key, {}).get(OURS, [])
        mrun = median_run(runs) or (runs[0] if runs else None)
        if mrun is not None:
            print_profile(f"{OURS}, {sc.title}", mrun)
    for sc in scenarios:
        mrun = median_run(results.get(sc.key, {}).get(OSB, []))
        if mrun is not None and (sc.volumes > 1 or sc.key == "p4"):
            print_profile(f"{OSB}, {sc.title}", mrun)
    if probe:
        print(
            f"\n  iscsiadm cost in this guest: /bin/true {probe['true_s']:.2f} s; 7 settings "
            f"written with 7 'iscsiadm -o update' {probe['seven_updates_s']:.2f} s "
            f"(applied: {probe['seven_updates_applied']}); the same 7 as -n/-v pairs of ONE "
            f"update {probe['one_update_s']:.2f} s (rc {probe['one_update_rc']}, "
            f"applied: {probe['one_update_applied']})"
        )
    return verdicts


def scenarios_from(saved: dict[str, Any]) -> list[Scenario]:
    """The scenarios of a saved result file (stored since; rebuilt from keys before)."""
    if saved.get("scenarios"):
        return [Scenario(**sc) for sc in saved["scenarios"]]
    meta = saved["meta"]
    lat = f"{meta['latency_ms']} ms"
    out = []
    for key in saved["results"]:
        if key.startswith("p"):
            n = int(key[1:])
            out.append(Scenario(key, f"{n} portal{'s' if n > 1 else ''}, {lat} each", n))
        elif key == "dead":
            out.append(Scenario(key, f"4 portals, 1 dead, {lat}", 4, dead=3))
        elif key.startswith("conc-"):
            layout = key[5:]
            runs: list[dict[str, Any]] = next(iter(saved["results"][key].values()), [])
            vols = len(runs[0]["per_volume_attach_s"]) if runs else 8
            what = "LUNs, 1 target" if layout == "luns" else "targets"
            out.append(
                Scenario(
                    key,
                    f"{vols} concurrent ({vols} {what}), 4 portals, {lat}",
                    4,
                    volumes=vols,
                    layout=layout,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    p.add_argument("--latency-ms", type=int, default=100, help="netem delay on every portal")
    p.add_argument("--grace", type=float, default=5.0, help="multipath-brick's grace")
    p.add_argument("--osbrick-dead-repeat", type=int, default=1)
    p.add_argument("--concurrent-repeat", type=int, default=1)
    p.add_argument("--volumes", type=int, default=8)
    p.add_argument(
        "--layouts", default="luns", help="concurrent rows: luns and/or targets (comma list)"
    )
    p.add_argument(
        "--scenarios", default="p1,p2,p4,dead,conc", help="subset of p1,p2,p4,dead,conc"
    )
    p.add_argument("--warmup", type=int, default=1, help="uncounted 1-portal runs per library")
    p.add_argument(
        "--settle", type=float, default=60.0, help="max wait for all paths before detach"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the iscsiadm cost probe")
    p.add_argument(
        "--cpu-breakdown",
        action="store_true",
        help="concurrent rows: the guest's CPU by program and udev's events (costs CPU itself)",
    )
    p.add_argument("--libs", default="ours,osbrick")
    p.add_argument("--osbrick-privsep", choices=["fork", "inprocess"], default="fork")
    p.add_argument("--osbrick-pool", type=int, default=32, help="0 = oslo.privsep default")
    p.add_argument("--json", default="", help="write raw results here")
    p.add_argument("--report", default="", help="only print the tables of a saved --json file")
    args = p.parse_args(argv)

    if args.report:
        with open(args.report, encoding="utf-8") as f:
            saved = json.load(f)
        report(saved["meta"], scenarios_from(saved), saved["results"], saved.get("iscsiadm_probe"))
        return 0

    if not in_lab_guest():
        print(
            "this benchmark runs inside the lab guest: python -m multipath_brick.tests.lab bench",
            file=sys.stderr,
        )
        return 2
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(levelname)s %(message)s")
    # Late paths (joined or failed after attach returned) are worth seeing.
    logging.getLogger("multipath_brick.attach").setLevel(logging.INFO)
    # os-brick warns on every "iscsiadm -m session" that finds none: noise here.
    logging.getLogger("os_brick").setLevel(logging.ERROR)
    lab = Lab.from_state()
    lab.reset()
    if len(lab.portals) < 4:
        print("the lab needs 4 portals (--portals 4)", file=sys.stderr)
        return 2

    # Both privsep daemons are forked now, before any thread exists.
    libs: list[Library] = []
    wanted = args.libs.split(",")
    if "ours" in wanted:
        libs.append(Ours(args.grace))
    osb: OsBrick | None = None
    if "osbrick" in wanted:
        osb = OsBrick(args.osbrick_privsep, args.osbrick_pool)
        libs.append(osb)

    chosen = args.scenarios.split(",")
    scenarios: list[Scenario] = []
    lat = f"{args.latency_ms} ms" if args.latency_ms else "no delay"
    for n in (1, 2, 4):
        if f"p{n}" in chosen:
            title = f"{n} portal{'s' if n > 1 else ''}, {lat} each"
            scenarios.append(Scenario(f"p{n}", title, n))
    if "dead" in chosen:
        scenarios.append(Scenario("dead", f"4 portals, 1 dead, {lat}", 4, dead=3))
    if "conc" in chosen:
        for layout in args.layouts.split(","):
            what = "LUNs, 1 target" if layout == "luns" else "targets"
            title = f"{args.volumes} concurrent ({args.volumes} {what}), 4 portals, {lat}"
            scenarios.append(
                Scenario(f"conc-{layout}", title, 4, volumes=args.volumes, layout=layout)
            )

    meta = {
        "latency_ms": args.latency_ms,
        "grace_s": args.grace,
        "repeat": args.repeat,
        "portals": lab.portals,
        "osbrick_version": osb.version if osb else None,
        "osbrick_privsep": args.osbrick_privsep,
        "osbrick_thread_pool": osb.pool if osb else None,
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "library": git_describe(),
        "settle_s": args.settle,
    }
    print(f"[bench] lab attach benchmark: {json.dumps(meta)}", flush=True)
    probe = None if args.no_probe else iscsiadm_probe(lab)
    if probe:
        print(f"[bench] iscsiadm cost probe: {json.dumps(probe)}", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    warmups: dict[str, list[dict[str, Any]]] = {}
    t_start = time.monotonic()

    def one(sc: Scenario, lib: Library, label: str) -> dict[str, Any]:
        volumes = prepare(lab, sc, args.latency_ms)
        live = sc.portals - (1 if sc.dead is not None else 0)
        breakdown = args.cpu_breakdown and sc.volumes > 1
        run = run_once(lib, lab, volumes, live, args.settle, breakdown)
        print(
            f"[bench] {label:<20} {lib.name:<15} attach {run['attach_s']:7.2f} s  "
            f"all paths {fmt(run['all_paths_in_map_s'])} s  "
            f"detach {run['detach_s']:6.2f} s  paths {states_text(run)}  "
            f"cpu {run['guest_cpu_busy_pct']}%  speed {run['speed_index_s']}  "
            f"at {time.strftime('%H:%M:%S', time.gmtime(run['started_at']))}"
            + (f"  ATTACH ERRORS {run['attach_errors']}" if run["attach_errors"] else "")
            + (f"  DETACH ERRORS {run['detach_errors']}" if run["detach_errors"] else "")
            + (f"  diagnosis {run['detach_diagnosis']}" if run["detach_diagnosis"] else "")
            + (f"  LEFTOVERS {run['leftovers']}" if run["leftovers"] else ""),
            flush=True,
        )
        return run

    for w in range(args.warmup):
        for lib in libs:
            warmups.setdefault(lib.name, []).append(
                one(Scenario("warmup", "warm-up", 1), lib, f"warm-up {w + 1}")
            )
    for sc in scenarios:
        results[sc.key] = {lib.name: [] for lib in libs}
        for r in range(max(args.repeat, 1)):
            for lib in libs:
                if sc.volumes > 1:
                    runs_wanted = args.concurrent_repeat
                elif lib.name == OSB and sc.dead is not None:
                    runs_wanted = args.osbrick_dead_repeat
                else:
                    runs_wanted = args.repeat
                if r < runs_wanted:
                    results[sc.key][lib.name].append(one(sc, lib, f"{sc.key} run {r + 1}"))
    lab.reset()
    elapsed = time.monotonic() - t_start

    verdicts = report(meta, scenarios, results, probe)
    print(f"\n[bench] done in {elapsed:.0f} s", flush=True)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "meta": meta,
                    "scenarios": [dataclasses.asdict(sc) for sc in scenarios],
                    "verdicts": verdicts,
                    "results": results,
                    "warmups": warmups,
                    "iscsiadm_probe": probe,
                    "elapsed_s": round(elapsed, 1),
                },
                f,
                indent=1,
            )
        print(f"[bench] raw numbers in {args.json}", flush=True)
    # Our attach errors and leftovers fail the run; detach retries and os-brick's
    # problems are reported only.
    bad = [
        (sc.key, r["attach_errors"], r["leftovers"])
        for sc in scenarios
        for r in results[sc.key].get(OURS, [])
        if r["attach_errors"] or r["leftovers"]
    ]
    for key, errs, left in bad:
        print(f"[bench] {key} {OURS}: attach errors {errs} leftovers {left}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
