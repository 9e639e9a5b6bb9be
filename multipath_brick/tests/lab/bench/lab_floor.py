"""Lab bench: the floor (``floor.sh``) beside multipath-brick and os-brick, time and CPU.

Runs inside the QEMU lab guest::

    python -m multipath_brick.tests.lab shell-cmd \\
        'python -m multipath_brick.tests.lab.bench.lab_floor \\
            --json /run/mpb-lab-out/lab_floor.json'

(``python`` is the interpreter that booted the lab), or ``tox -e bench-lab-floor``.
The floor is :mod:`.floor` (``floor.sh``), the CPU count :mod:`.cpu_account`.
Workloads, one fresh LUN (new WWID) each run, attach then detach, the
libraries interleaved run by run:

* ``p1``: 1 portal; ``p4``: the lab's 4 portals (``default`` iface);
* ``bond1``: the bond portal 192.168.210.1 through ``default`` (1 path);
* ``bond4``: 2 NICs x 2 bond portals (4 paths; ifaces bound to ``mpbn0`` and
  ``mpbn1``: ``floor-mpbnJ`` for the floor, the bond's for multipath-brick).
  os-brick has no ifaces: it sits out both bond rows (its 1-path row is p1).

Per run: *returned* (the attach call, or the script, returned), *usable* (the
map is in sysfs with a path), *full* (the map holds every path), all seconds
from the call; the host's CPU from the call until the map is full and udev's
queue is empty (every process, by program, but the lab's target tgtd), minus
the idle guest's background rate measured before the runs, per attached path.
The caller's polling of sysfs (0.2 s) is in every row: in the floor rows the
caller's process does nothing else, which sizes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from .. import in_lab_guest
from ..api import Lab
from ..table import format_table, problems, ratio
from ..table import run_median as med
from .cpu_account import CALLER, Accounting, Window
from .floor import FLOOR, Floor
from .lab_bond import BondedOurs
from .libraries import OSB, Library, OsBrick, Ours
from .probe import git_describe
from .scenarios import LUN_MB
from .timing import profile
from .watch import MapWatcher, calibrate, full_at

LUN = 1
WORKLOADS = {
    "p1": "1 portal",
    "p4": "4 portals",
    "bond1": "bond portal, 1 path (default iface)",
    "bond4": "bond: 2 NICs x 2 portals",
}
UDEV_QUEUE = "/run/udev/queue"


def paths_of(key: str) -> int:
    return 1 if key in ("p1", "bond1") else 4


def props(lab: Lab, key: str) -> dict[str, Any]:
    """Connection properties; bond4's 2 portals are 4 paths through 2 ifaces."""
    portals = {
        "p1": lab.portals[:1],
        "p4": lab.portals,
        "bond1": lab.bond_portals[:1],
        "bond4": lab.bond_portals,
    }[key]
    return {
        "target_discovered": False,
        "target_portals": portals,
        "target_iqns": [lab.iqn] * len(portals),
        "target_luns": [LUN] * len(portals),
        "auth_method": "CHAP",
        "auth_username": lab.chap.user,
        "auth_password": lab.chap.password,
    }


def settle(limit: float = 10.0) -> None:
    """Until udev's queue is empty (it finishes the map's and disks' events), then 1 s."""
    deadline = time.monotonic() + limit
    while os.path.exists(UDEV_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)


def idle_rate(acct: Accounting, seconds: float) -> float:
    """Host CPU-s per second of the idle guest (multipathd's checker, kernel threads)."""
    window = Window.start(acct, os.getpid())
    time.sleep(seconds)
    return float(window.stop()["host_cpu_s"]) / seconds


def one_run(lab: Lab, acct: Accounting, lib: Library, key: str, idle: float) -> dict[str, Any]:
    """Attach (measured), wait for every path, detach (timed); never raises."""
    errors = lab.reset()
    if errors:
        print(f"  lab reset errors: {errors}", flush=True)
    wwid = lab.add_lun(LUN, LUN_MB)
    n = paths_of(key)
    run: dict[str, Any] = {"paths": n, "error": None}
    info: dict[str, Any] | None = None
    lib.recorder.take()
    run["speed_index_s"] = calibrate()  # larger: the host's other load slowed us
    window = Window.start(acct, os.getpid())
    t0 = time.monotonic()
    watcher = MapWatcher([wwid], t0)
    watcher.start()
    try:
        info = lib.connect(props(lab, key))
    except Exception as error:  # noqa: BLE001 - reported with the run
        run["error"] = f"{type(error).__name__}: {error}"
    run["returned_s"] = round(time.monotonic() - t0, 3)
    deadline = time.monotonic() + 60
    while not watcher.complete(n) and time.monotonic() < deadline and not run["error"]:
        time.sleep(0.2)
    run["full_window_s"] = round(time.monotonic() - t0, 3)
    settle()
    events = watcher.stop()
    cpu = window.stop()
    span = time.monotonic() - t0
    run["cpu"] = cpu
    run["window_s"] = round(span, 2)
    run["net_cpu_s"] = round(cpu["host_cpu_s"] - idle * span, 2)
    run["cpu_per_path_s"] = round(run["net_cpu_s"] / n, 3)
    run["usable_s"] = events[0][0] if events else None
    run["full_s"] = full_at(events, [wwid], n)
    run["map_events"] = events
    run["profile"] = profile(lib.recorder.take(), t0)
    t1 = time.monotonic()
    try:
        if info is not None:
            run["floor"] = info.get("floor")
            lib.disconnect(props(lab, key), info)
    except Exception as error:  # noqa: BLE001
        run["error"] = run["error"] or f"detach {type(error).__name__}: {error}"
    run["detach_s"] = round(time.monotonic() - t1, 3)
    # The bond's and the floor's ifaces stay between runs on purpose (host configuration).
    run["leftovers"] = {k: v for k, v in lab.leftovers().items() if v and k != "ifaces"}
    return run


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def report(results: dict[str, dict[str, list[dict[str, Any]]]], idle: float) -> None:
    rows = []
    for key, by_lib in results.items():
        for name, runs in by_lib.items():
            cells = [med(runs, k) for k in ("returned_s", "usable_s", "full_s", "cpu_per_path_s")]
            floor_runs, osb_runs = by_lib.get(FLOOR, []), by_lib.get(OSB, [])
            vs_floor = vs_osb = ""
            if name != FLOOR and floor_runs:
                vs_floor = " / ".join(
                    ratio(med(runs, k), med(floor_runs, k))
                    for k in ("returned_s", "full_s", "cpu_per_path_s")
                )
            if name != OSB and osb_runs:
                vs_osb = " / ".join(
                    ratio(med(runs, k), med(osb_runs, k))
                    for k in ("returned_s", "full_s", "cpu_per_path_s")
                )
            ok = sum(1 for r in runs if not r["error"])
            rows.append(
                (WORKLOADS[key], name, f"{ok}/{len(runs)}", *map(fmt, cells), vs_floor, vs_osb)
            )
    headers = (
        "WORKLOAD",
        "WHO",
        "OK",
        "RETURNED S",
        "USABLE S",
        "FULL S",
        "CPU-S/PATH",
        "/ FLOOR (ret/full/cpu)",
        "/ OS-BRICK (ret/full/cpu)",
    )
    print(f"\nMedians; CPU net of the idle guest's {idle:.3f} CPU-s/s")
    print(format_table(headers, rows, (2, 3, 4, 5, 6)))
    print("\n4 paths / 1 path (medians of full seconds, returned seconds):")
    for name in dict.fromkeys(n for by_lib in results.values() for n in by_lib):
        for four, one in (("p4", "p1"), ("bond4", "bond1")):
            a, b = results.get(four, {}).get(name), results.get(one, {}).get(name)
            if a and b:
                print(
                    f"  {name:<16} {four}/{one}: full {ratio(med(a, 'full_s'), med(b, 'full_s'))}"
                    f", returned {ratio(med(a, 'returned_s'), med(b, 'returned_s'))}"
                )
    print("\nCPU-s by program, median run of each (net of nothing; whole window):")
    for key, by_lib in results.items():
        for name, runs in by_lib.items():
            good = sorted((r for r in runs if not r["error"]), key=lambda r: r["net_cpu_s"])
            if good:
                mid = good[(len(good) - 1) // 2]
                groups = ", ".join(f"{g} {v}" for g, v in mid["cpu"]["by_group"].items() if v)
                names = ", ".join(f"{k} {v}" for k, v in mid["cpu"]["exited_by_name"].items())
                print(
                    f"  {key} {name}: busy {mid['cpu']['busy_cpu_s']} in {mid['window_s']} s: "
                    f"{groups}\n    processes that ran and exited: {names}"
                )
                if mid.get("profile"):
                    calls = ", ".join(f"{g['call']} {g['n']}" for g in mid["profile"])
                    print(f"    privileged calls: {calls}")


def gathers(text: str) -> list[float | None]:
    """``--gather``: the gather seconds of each multipath-brick column (None: the default)."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    return [None if v == "default" else float(v) for v in values] or [None]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--libs", default="floor,ours,osbrick")
    p.add_argument("--grace", type=float, default=5.0)
    p.add_argument(
        "--gather",
        default="default",
        help="multipath-brick columns, one per value: AttachSettings.gather seconds, or"
        " 'default' (the library's default); e.g. default,0,2",
    )
    p.add_argument("--idle", type=float, default=10.0, help="seconds of idle baseline")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    if not in_lab_guest():
        print("this benchmark runs inside the lab guest (see its docstring)", file=sys.stderr)
        return 2
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(levelname)s %(message)s")
    logging.getLogger("os_brick").setLevel(logging.ERROR)
    keys = [k for k in args.workloads.split(",") if k in WORKLOADS]
    wanted = args.libs.split(",")
    lab = Lab.from_state()
    lab.reset()
    # Both privsep daemons are forked now, before any thread exists.
    ours: dict[str, Ours] = {}
    if "ours" in wanted:
        for gather in gathers(args.gather):
            column = Ours(args.grace, gather)
            ours[column.name] = column
    osb = OsBrick("fork", 32) if "osbrick" in wanted else None
    # The bond's 4 paths, each column with its own settings, under the same column name.
    bonded = (
        {name: BondedOurs(args.grace, lab, column.gather) for name, column in ours.items()}
        if "bond4" in keys
        else {}
    )

    floor = Floor((lab.chap.user, lab.chap.password))
    floor_bond = Floor(floor.chap, tuple(f"floor-{nic}" for nic in lab.bond_nics))

    def libs_for(key: str) -> dict[str, Library]:
        out: dict[str, Library] = {}
        if "floor" in wanted:
            out[FLOOR] = floor_bond if key == "bond4" else floor
        for name, column in ours.items():
            out[name] = bonded[name] if key == "bond4" else column
        # os-brick has no ifaces (no bond), and its 1-path row is p1.
        if osb is not None and key not in ("bond1", "bond4"):
            out[OSB] = osb
        return out

    floor.ifaces_up(lab.bond_nics)
    acct = Accounting("/run/mpb-floor.acct")  # a tmpfs private to the guest
    meta = {
        "repeat": args.repeat,
        "library": git_describe(),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "osbrick_version": osb.version if osb else None,
        "ours": {name: dataclasses.asdict(column.settings) for name, column in ours.items()},
    }
    print(f"[floor] {json.dumps(meta)}", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    warmups = []
    try:
        idle = idle_rate(acct, args.idle)
        print(f"[floor] idle guest: {idle:.3f} CPU-s per s", flush=True)
        # Uncounted: cold caches, and the bond's ifaces made by its first attach.
        for key in dict.fromkeys(["p1", *(["bond4"] if "bond4" in keys else [])]):
            for name, lib in libs_for(key).items():
                run = one_run(lab, acct, lib, key, idle)
                warmups.append({"workload": key, "who": name, **run})
                print(f"[floor] warm-up {key} {name}: {run['returned_s']} s {run['error'] or ''}")
        t_start = time.monotonic()
        for rep in range(args.repeat):
            for key in keys:
                for name, lib in libs_for(key).items():
                    run = one_run(lab, acct, lib, key, idle)
                    results.setdefault(key, {}).setdefault(name, []).append(run)
                    print(
                        f"[floor] {rep + 1} {key:<5} {name:<16} returned {run['returned_s']:6.2f}"
                        f"  usable {fmt(run['usable_s'])}  full {fmt(run['full_s'])}  cpu "
                        f"{run['net_cpu_s']:5.2f} ({run['cpu_per_path_s']:.2f}/path, caller "
                        f"{run['cpu']['by_group'].get(CALLER, 0)})  detach {run['detach_s']:.2f}"
                        f"  speed {run['speed_index_s']}" + problems(run),
                        flush=True,
                    )
        elapsed = time.monotonic() - t_start
        idle_end = idle_rate(acct, args.idle)
    finally:
        acct.close()
        lab.reset()
        floor.ifaces_down(lab.bond_nics)
        for bond in bonded.values():
            bond.conn.collect_ifaces(())
    report(results, idle)
    print(f"\n[floor] {elapsed:.0f} s; idle guest after the runs: {idle_end:.3f} CPU-s per s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "meta": meta,
                    "idle_cpu_per_s": [idle, idle_end],
                    "warmups": warmups,
                    "results": results,
                },
                f,
                indent=1,
            )
        print(f"[floor] raw numbers: {args.json}")
    bad = [r for by in results.values() for runs in by.values() for r in runs if r["error"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
