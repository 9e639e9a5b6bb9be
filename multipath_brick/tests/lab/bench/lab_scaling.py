"""Lab bench: one 4-portal attach and detach with 0, 16 and 64 volumes already attached.

Runs inside the QEMU lab guest::

    python -m multipath_brick.tests.lab shell-cmd \\
        'python -m multipath_brick.tests.lab.bench.lab_scaling \\
            --json /run/mpb-lab-out/lab_scaling.json'

(``python`` is the interpreter that booted the lab), or ``tox -e bench-lab-scaling``.
The host fills up step by step (``--counts``, ascending): the volumes already
present are LUNs of one target (``<lab iqn>-fill``) over the lab's 4 portals,
attached ``--batch`` at a time and left attached, so the guest carries 4
sessions, 4 disks per volume and one map each: by default with the plain tools
and no per-path deadline, or by multipath-brick (``--fill library``); see
:mod:`.fill`. At every count,
``--repeat`` runs per library (``--libs``: ours and the floor, interleaved run
by run) attach one fresh volume, a target of its own with one LUN over the 4
portals (its own 4 logins every run, whatever the count), wait until its map
holds the 4 paths, then detach it and check that nothing of it is left. At the
end the fill is torn down and the guest must be left with nothing at all.

Reported per count: the medians of *returned*, *full* (the map holds every
path) and the detach, their ratio to the empty host's (the issue's target:
within 1.2x with 64 present), how busy the idle guest is with that many paths
(multipathd checks every path every ``polling_interval``), and for ours the
privileged calls whose time grew most.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import in_lab_guest, initiator
from ..api import Lab
from ..props import volume_props
from ..table import format_table, problems, ratio, run_median
from .fill import Fill, FillStuck, LibraryFill, ToolsFill, udev_settle
from .floor import FLOOR, Floor
from .lab_attach import quiet_logs
from .libraries import OURS, Library, Ours
from .probe import git_describe
from .scenarios import LUN_MB
from .timing import profile
from .watch import MapWatcher, calibrate, cpu_jiffies, full_at

PATHS = 4
TARGET_RATIO = 1.2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--counts", default="0,16,64", help="volumes present, ascending")
    p.add_argument("--repeat", type=int, default=3, help="runs per count and library")
    p.add_argument("--libs", default="ours,floor", help="any of ours,floor")
    p.add_argument("--batch", type=int, default=8, help="fill volumes attached at once")
    p.add_argument(
        "--fill",
        choices=("tools", "library"),
        default="tools",
        help="who attaches the volumes present: the plain tools, or multipath-brick",
    )
    p.add_argument("--grace", type=float, default=5.0, help="multipath-brick's grace")
    p.add_argument("--settle", type=float, default=60.0, help="max wait for all 4 paths")
    p.add_argument("--json", default="", help="write raw results here")
    return p


def idle_busy(seconds: float = 3.0) -> float:
    """Percent of the guest's CPU busy while nothing is attaching (the daemons' checks)."""
    b0, t0 = cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = cpu_jiffies()
    return round(100.0 * (b1 - b0) / max(t1 - t0, 1), 1)


def leftovers_of(iqn: str, wwid: str) -> dict[str, list[str]]:
    """What the measured volume left (the fill volumes are not leftovers)."""
    left = {
        "sessions": [s for s in initiator.sessions() if iqn in s],
        "node_records": [r for r in initiator.node_records() if iqn in r],
        "scsi_disks": initiator.disks_for_wwid(wwid),
        "multipath_maps": [m for m in initiator.multipath_maps() if m == wwid],
    }
    return {k: v for k, v in left.items() if v}


def one_run(lab: Lab, lib: Library, count: int, r: int, settle: float) -> dict[str, Any]:
    """Attach a fresh volume (a target of its own), wait for 4 paths, detach; never raises."""
    iqn = f"{lab.iqn}-n{count}r{r}{lib.name[:5]}"
    wwid = lab.add_target(iqn, {1: LUN_MB}, chap=lab.chap)[1]
    props = volume_props(lab, 1, iqn=iqn, volume_id=None)
    udev_settle()
    run: dict[str, Any] = {"count": count, "error": None, "speed_index_s": calibrate()}
    lib.recorder.take()
    info: dict[str, Any] | None = None
    t0 = time.monotonic()
    watcher = MapWatcher([wwid], t0)
    watcher.start()
    try:
        info = lib.connect(props)
    except Exception as error:  # noqa: BLE001 - reported with the run
        run["error"] = f"{type(error).__name__}: {error}"
    run["returned_s"] = round(time.monotonic() - t0, 3)
    deadline = time.monotonic() + settle
    while not run["error"] and not watcher.complete(PATHS) and time.monotonic() < deadline:
        time.sleep(0.2)
    run["full_s"] = full_at(watcher.stop(), [wwid], PATHS)
    run["profile"] = profile(lib.recorder.take(), t0)
    t1 = time.monotonic()
    try:
        if info is not None:
            lib.disconnect(props, info)
    except Exception as error:  # noqa: BLE001
        run["error"] = run["error"] or f"detach {type(error).__name__}: {error}"
    run["detach_s"] = round(time.monotonic() - t1, 3)
    run["detach_profile"] = profile(lib.recorder.take(), t1)
    run["leftovers"] = leftovers_of(iqn, wwid)
    if not run["leftovers"]:
        lab.remove_target(iqn)
    print(
        f"[scaling] {count:3d} present  {lib.name:<15} run {r + 1}  "
        f"returned {run['returned_s']:6.2f} s  full {run['full_s']} s  "
        f"detach {run['detach_s']:6.2f} s  speed {run['speed_index_s']}" + problems(run),
        flush=True,
    )
    return run


def grown_calls(base: Sequence[dict[str, Any]], top: Sequence[dict[str, Any]]) -> list[str]:
    """Our privileged calls by summed seconds, median run of the emptiest and fullest host."""

    def sums(runs: Sequence[dict[str, Any]]) -> dict[str, float]:
        out: dict[str, list[float]] = {}
        for r in runs:
            for g in r["profile"] + r["detach_profile"]:
                out.setdefault(g["call"], []).append(g["sum_s"])
        return {k: statistics.median(v) for k, v in out.items()}

    a, b = sums(base), sums(top)
    rows = sorted(b, key=lambda k: b[k] - a.get(k, 0.0), reverse=True)
    return [f"{k}: {a.get(k, 0.0):.2f} -> {b[k]:.2f} s" for k in rows[:6]]


def report(results: dict[int, dict[str, Any]], libs: Sequence[str]) -> dict[str, Any]:
    counts = sorted(results)
    base = counts[0]
    rows = []
    verdicts: dict[str, Any] = {}
    for n in counts:
        for name in libs:
            runs = results[n]["runs"][name]
            b = results[base]["runs"][name]
            cells = [run_median(runs, k, 2) for k in ("returned_s", "full_s", "detach_s")]
            ratios = [
                ratio(c, run_median(b, k, 2))
                for c, k in zip(cells, ("returned_s", "full_s", "detach_s"), strict=True)
            ]
            ok = sum(1 for r in runs if not r["error"] and not r["leftovers"])
            rows.append(
                (
                    n,
                    name,
                    f"{ok}/{len(runs)}",
                    *("-" if c is None else f"{c:.2f}" for c in cells),
                    " / ".join(ratios),
                    f"{results[n]['idle_busy_pct']}%",
                )
            )
    headers = (
        "PRESENT",
        "WHO",
        "OK",
        "RETURNED",
        "FULL",
        "DETACH",
        f"/ {base} PRESENT (ret/full/det)",
        "IDLE BUSY",
    )
    print("\nOne 4-portal volume, medians, seconds; ratios to the emptiest host in this run")
    print(format_table(headers, rows, (0, 2, 3, 4, 5, 7)))
    top = counts[-1]
    for name in libs:
        a, b = results[base]["runs"][name], results[top]["runs"][name]
        for key in ("returned_s", "full_s", "detach_s"):
            x, y = run_median(a, key, 2), run_median(b, key, 2)
            verdicts[f"{name}_{key}_{top}_over_{base}"] = round(y / x, 3) if x and y else None
    r = verdicts.get(f"{OURS}_returned_s_{top}_over_{base}")
    verdicts["target_attach_within_1.2x"] = None if r is None else r <= TARGET_RATIO
    if OURS in libs:
        print(f"\n  ours, calls that grew most from {base} to {top} present (summed s, median):")
        for line in grown_calls(results[base]["runs"][OURS], results[top]["runs"][OURS]):
            print(f"    {line}")
    print(f"  verdicts: {json.dumps(verdicts)}", flush=True)
    return verdicts


def save(path: str, raw: dict[str, Any]) -> None:
    """Write the raw results to ``path`` (nothing when empty)."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(raw, f, indent=1)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not in_lab_guest():
        print("this benchmark runs inside the lab guest (see its docstring)", file=sys.stderr)
        return 2
    quiet_logs()
    lab = Lab.from_state()
    lab.reset()
    names = args.libs.split(",")
    ours = Ours(args.grace)
    floor = Floor((lab.chap.user, lab.chap.password))
    libs: list[Library] = [ours] if "ours" in names else []
    if FLOOR in names:
        libs.append(floor)
    meta = {
        "library": git_describe(),
        "counts": args.counts,
        "repeat": args.repeat,
        "batch": args.batch,
        "fill": args.fill,
    }
    print(f"[scaling] {json.dumps(meta)}", flush=True)
    fill: Fill = ToolsFill(lab, floor) if args.fill == "tools" else LibraryFill(lab, ours)
    raw: dict[str, Any] = {"meta": meta, "results": {}}
    t_start = time.monotonic()
    try:
        measure(lab, fill, libs, args, raw)
    except FillStuck as error:
        raw["fill_stuck"] = str(error)
        print(f"[scaling] fill stuck: {error}", flush=True)
    raw["fill_batches"] = fill.batches
    t_down = time.monotonic()
    raw["teardown_errors"] = fill.teardown()
    raw["teardown_s"] = round(time.monotonic() - t_down, 1)
    udev_settle()
    raw["left_at_end"] = {k: v for k, v in initiator.leftovers().items() if v}
    print(
        f"[scaling] fill torn down in {raw['teardown_s']} s; errors {raw['teardown_errors']}; "
        f"left on the guest: {raw['left_at_end'] or 'nothing'}",
        flush=True,
    )
    results = raw["results"]
    if results:
        raw["verdicts"] = report(results, [lib.name for lib in libs])
    raw["elapsed_s"] = round(time.monotonic() - t_start, 1)
    print(f"[scaling] done in {raw['elapsed_s']} s", flush=True)
    save(args.json, raw)
    left = [
        r["leftovers"]
        for e in results.values()
        for runs in e["runs"].values()
        for r in runs
        if r["leftovers"]
    ]
    errors = [r["error"] for e in results.values() for r in e["runs"].get(OURS, []) if r["error"]]
    bad = left or errors or raw["left_at_end"] or raw["teardown_errors"] or "fill_stuck" in raw
    return 1 if bad else 0


def measure(
    lab: Lab, fill: Fill, libs: Sequence[Library], args: argparse.Namespace, raw: dict[str, Any]
) -> None:
    """Every count: fill up to it, then the runs; ``raw`` saved after each count."""
    results: dict[int, dict[str, Any]] = raw["results"]
    for count in sorted(int(c) for c in args.counts.split(",")):
        fill_s = fill.fill_to(count, args.batch)
        print(f"[scaling] {len(fill.wwids)} volumes present (filled in {fill_s} s)", flush=True)
        entry: dict[str, Any] = {"fill_s": fill_s, "idle_busy_pct": idle_busy(), "runs": {}}
        for lib in libs:
            entry["runs"][lib.name] = []
        for r in range(args.repeat):
            for lib in libs:
                entry["runs"][lib.name].append(one_run(lab, lib, count, r, args.settle))
        results[count] = entry
        # Saved after every count: a fill that overwhelms the guest may never end.
        save(args.json, raw)


if __name__ == "__main__":
    sys.exit(main())
