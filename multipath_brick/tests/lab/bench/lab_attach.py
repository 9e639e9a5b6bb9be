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
  (``luns``) and/or one target per volume (``targets``);
* ``storm`` (only when named): the boot storm, ``--storm-volumes`` volumes at once
  the same way. The floor joins both concurrent rows in the ``targets`` layout
  (one ``floor.sh`` per volume, all at once; each has its own node records);
  with the LUNs of one target, several scripts would share sessions, which the
  floor does not handle. :mod:`.concurrent` reports these rows' full-redundancy
  times, per-volume medians, detaches and failures.

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

With ``--libs ours,osbrick,floor`` the table has the floor's columns too: the
least a shell script does for the same attach (:mod:`.floor`), in the rows of
one volume on live portals, with ours / floor beside os-brick / ours.

Both libraries run as root with a forked privsep daemon (:mod:`.libraries`).
The run is :mod:`.run`, the scenarios :mod:`.scenarios`, the tables :mod:`.report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import in_lab_guest
from ..api import Lab
from . import scenarios as scenario_rows
from .concurrent import concurrent_report
from .floor import FLOOR, Floor
from .libraries import OSB, OURS, Library, OsBrick, Ours
from .probe import git_describe, iscsiadm_probe
from .report import Results, fmt, report, states_text
from .run import run_once
from .scenarios import BenchScenario, prepare, scenarios_from


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    p.add_argument("--latency-ms", type=int, default=100, help="netem delay on every portal")
    p.add_argument("--grace", type=float, default=5.0, help="multipath-brick's grace")
    p.add_argument("--osbrick-dead-repeat", type=int, default=1)
    p.add_argument("--concurrent-repeat", type=int, default=1)
    p.add_argument("--volumes", type=int, default=8)
    p.add_argument("--storm-volumes", type=int, default=32, help="volumes of the storm row")
    p.add_argument(
        "--layouts", default="luns", help="concurrent rows: luns and/or targets (comma list)"
    )
    p.add_argument(
        "--scenarios",
        default=",".join(scenario_rows.DEFAULT_KEYS),
        help="subset of p1,p2,p4,dead,conc,storm (storm only when named)",
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
    p.add_argument("--libs", default="ours,osbrick", help="any of ours,osbrick,floor")
    p.add_argument("--osbrick-privsep", choices=["fork", "inprocess"], default="fork")
    p.add_argument("--osbrick-pool", type=int, default=32, help="0 = oslo.privsep default")
    p.add_argument("--json", default="", help="write raw results here")
    p.add_argument("--report", default="", help="only print the tables of a saved --json file")
    return p


def quiet_logs() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(levelname)s %(message)s")
    # Late paths (joined or failed after attach returned) are worth seeing.
    logging.getLogger("multipath_brick.attach").setLevel(logging.INFO)
    # os-brick warns on every "iscsiadm -m session" that finds none: noise here.
    logging.getLogger("os_brick").setLevel(logging.ERROR)


def libraries(args: argparse.Namespace, lab: Lab) -> list[Library]:
    """The libraries ``--libs`` names; both privsep daemons are forked now, before any
    thread exists. ``floor`` is :mod:`.floor`'s script."""
    libs: list[Library] = []
    wanted = args.libs.split(",")
    if "ours" in wanted:
        libs.append(Ours(args.grace))
    if "osbrick" in wanted:
        libs.append(OsBrick(args.osbrick_privsep, args.osbrick_pool))
    if "floor" in wanted:
        libs.append(Floor((lab.chap.user, lab.chap.password)))
    return libs


def run_meta(args: argparse.Namespace, lab: Lab, osb: OsBrick | None) -> dict[str, Any]:
    """What the raw file and the report's title record about the run."""
    return {
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


def print_run(label: str, lib: Library, run: dict[str, Any]) -> None:
    """The run's one line of progress."""
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


def runs_wanted(args: argparse.Namespace, sc: BenchScenario, lib: Library) -> int:
    """Counted runs of a library in a scenario: os-brick's dead portal costs ~2 minutes."""
    if lib.name == FLOOR and (sc.dead is not None or (sc.volumes > 1 and sc.layout != "targets")):
        # A dead portal would only time it out; LUNs of one target share sessions,
        # which floor.sh does not handle (each script logs in and out on its own).
        return 0
    if sc.volumes > 1:
        return int(args.concurrent_repeat)
    if lib.name == OSB and sc.dead is not None:
        return int(args.osbrick_dead_repeat)
    return int(args.repeat)


def measure(
    args: argparse.Namespace, lab: Lab, libs: Sequence[Library], scenarios: Sequence[BenchScenario]
) -> tuple[Results, dict[str, list[dict[str, Any]]]]:
    """The warm-up runs, then every scenario's runs, the libraries interleaved run by run."""

    def one(sc: BenchScenario, lib: Library, label: str) -> dict[str, Any]:
        volumes = prepare(lab, sc, args.latency_ms)
        live = sc.portals - (1 if sc.dead is not None else 0)
        breakdown = args.cpu_breakdown and sc.volumes > 1
        run = run_once(lib, lab, volumes, live, args.settle, breakdown)
        print_run(label, lib, run)
        return run

    results: Results = {}
    warmups: dict[str, list[dict[str, Any]]] = {}
    for w in range(args.warmup):
        for lib in libs:
            warmups.setdefault(lib.name, []).append(
                one(BenchScenario("warmup", "warm-up", 1), lib, f"warm-up {w + 1}")
            )
    for sc in scenarios:
        results[sc.key] = {lib.name: [] for lib in libs}
        for r in range(max(args.repeat, 1)):
            for lib in libs:
                if r < runs_wanted(args, sc, lib):
                    results[sc.key][lib.name].append(one(sc, lib, f"{sc.key} run {r + 1}"))
    return results, warmups


def failures(scenarios: Sequence[BenchScenario], results: Results) -> int:
    """Our attach errors and leftovers fail the run; detach retries and os-brick's
    problems are reported only."""
    bad = [
        (sc.key, r["attach_errors"], r["leftovers"])
        for sc in scenarios
        for r in results[sc.key].get(OURS, [])
        if r["attach_errors"] or r["leftovers"]
    ]
    for key, errs, left in bad:
        print(f"[bench] {key} {OURS}: attach errors {errs} leftovers {left}", flush=True)
    return len(bad)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.report:
        with open(args.report, encoding="utf-8") as f:
            saved = json.load(f)
        scenarios = scenarios_from(saved)
        report(saved["meta"], scenarios, saved["results"], saved.get("iscsiadm_probe"))
        concurrent_report(scenarios, saved["results"])
        return 0
    if not in_lab_guest():
        print(
            "this benchmark runs inside the lab guest: python -m multipath_brick.tests.lab bench",
            file=sys.stderr,
        )
        return 2
    quiet_logs()
    lab = Lab.from_state()
    lab.reset()
    if len(lab.portals) < 4:
        print("the lab needs 4 portals (--portals 4)", file=sys.stderr)
        return 2

    libs = libraries(args, lab)
    scenarios = scenario_rows.chosen(
        args.scenarios.split(","),
        args.latency_ms,
        args.volumes,
        args.layouts.split(","),
        args.storm_volumes,
    )
    meta = run_meta(args, lab, next((lib for lib in libs if isinstance(lib, OsBrick)), None))
    print(f"[bench] lab attach benchmark: {json.dumps(meta)}", flush=True)
    probe = None if args.no_probe else iscsiadm_probe(lab)
    if probe:
        print(f"[bench] iscsiadm cost probe: {json.dumps(probe)}", flush=True)
    t_start = time.monotonic()
    results, warmups = measure(args, lab, libs, scenarios)
    lab.reset()
    elapsed = time.monotonic() - t_start

    verdicts = report(meta, scenarios, results, probe)
    verdicts["concurrent"] = concurrent_report(scenarios, results)
    print(f"\n[bench] done in {elapsed:.0f} s", flush=True)
    if args.json:
        raw = {
            "meta": meta,
            "scenarios": [dataclasses.asdict(sc) for sc in scenarios],
            "verdicts": verdicts,
            "results": results,
            "warmups": warmups,
            "iscsiadm_probe": probe,
            "elapsed_s": round(elapsed, 1),
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(raw, f, indent=1)
        print(f"[bench] raw numbers in {args.json}", flush=True)
    return 1 if failures(scenarios, results) else 0


if __name__ == "__main__":
    sys.exit(main())
