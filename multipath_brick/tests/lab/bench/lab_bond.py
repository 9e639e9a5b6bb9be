"""Lab bench row of the iSCSI bond: 4 paths through 2 NICs x 2 portals vs 1 path.

Runs inside the QEMU lab guest, on the bond topology of
``multipath_brick/tests/lab/bondnet.py``::

    python -m multipath_brick.tests.lab shell-cmd \\
        'python -m multipath_brick.tests.lab.bench.lab_bond \\
            --json /run/mpb-lab-out/lab_bond_attach.json'

(from the repository root; ``python`` is the interpreter that booted the lab),
or ``tox -e bench-lab-bond [-- --repeat 9]``.
Three modes, interleaved run by run, each run on a fresh LUN, attach then
detach, with :func:`.run.run_once` (the same timing, map watching and
leftover checks as the lab attach bench, :mod:`.lab_attach`):

* ``one``: no bond, one path: portal 192.168.210.1 through ``default``;
* ``bond``: the bond of both routed networks: 2 NICs x 2 portals = 4 paths
  through ``mpb-mpbn0`` and ``mpb-mpbn1``;
* ``plain4``: no bond, the lab's 4 standard portals through ``default``: what
  4 paths cost without a bond (the reference the bond's overhead is read against);
* ``floor-one`` and ``floor-bond``: the same two attaches by the floor
  (:mod:`.floor`: the least a shell script does), through its own ifaces
  ``floor-mpbn0``/``floor-mpbn1`` for the 4 paths: the ratio no library can
  beat on this guest, and ours / floor for the bond row.

The bond's ifaces are host configuration that outlives an attach: an uncounted
warm-up attach per mode creates them (its time is reported), the counted runs
find them, and they are collected at the end. The issue's target is
``bond <= 1.3 x one`` (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from .. import in_lab_guest
from ..api import Lab
from ..props import volume_props
from ..table import format_table
from .floor import Floor
from .libraries import Library, Ours
from .probe import git_describe
from .report import attached, fmt, median, median_run, print_profile
from .run import BenchVolume, run_once
from .scenarios import LUN_MB

LUN = 1
MODES = ("one", "bond", "plain4", "floor-one", "floor-bond")


class BondedOurs(Ours):
    """multipath-brick with the lab's routed bond: san-a on mpbn0, san-b on mpbn1."""

    name = "multipath-brick bond"

    def __init__(self, grace: float, lab: Lab, gather: float | None = None) -> None:
        super().__init__(grace, gather)
        from multipath_brick import ISCSIMultipathConnector
        from multipath_brick.bond import HostInventory, IscsiBond, Network, StorageConnection

        bond = IscsiBond(
            "bench-bond",
            "bench",
            networks=(Network("net-a", "san-a"), Network("net-b", "san-b")),
            storage_connections=tuple(
                StorageConnection(f"conn-{k}", p, lab.iqn) for k, p in enumerate(lab.bond_portals)
            ),
        )
        self.conn = ISCSIMultipathConnector(
            use_multipath=True,
            root_helper=None,
            host=self.conn.host,  # the timing host of this library's recorder
            settings=self.settings,
            lock_path=tempfile.mkdtemp(prefix="mpb-bench-bond-locks-"),
            bonds=[bond],
            inventory=HostInventory(dict(zip(("san-a", "san-b"), lab.bond_nics, strict=True))),
        )


def portals_of(lab: Lab, mode: str) -> list[str]:
    if mode in ("one", "floor-one"):
        return lab.bond_portals[:1]
    return lab.portals if mode == "plain4" else lab.bond_portals


def paths_of(mode: str) -> int:
    return 1 if mode in ("one", "floor-one") else 4


def volume(lab: Lab, mode: str) -> BenchVolume:
    wwid = lab.add_lun(LUN, LUN_MB)
    return BenchVolume(volume_props(lab, LUN, portals=portals_of(lab, mode), volume_id=None), wwid)


def one_run(lab: Lab, lib: Library, mode: str, settle: float) -> dict[str, Any]:
    run = run_once(lib, lab, [volume(lab, mode)], paths_of(mode), settle)
    lab.remove_lun(LUN)
    # The bond's ifaces stay between runs on purpose (host configuration).
    run["leftovers"] = {k: v for k, v in run["leftovers"].items() if k != "ifaces"}
    if run["leftovers"]:
        print(f"  leftovers {run['leftovers']}; lab reset: {lab.reset()}", flush=True)
    print(
        f"[bench] {mode:<7} attach {run['attach_s']:6.2f} s  all paths "
        f"{fmt(run['all_paths_in_map_s'])} s  detach {run['detach_s']:6.2f} s  "
        f"states {run['path_states']}"
        + (f"  ATTACH ERRORS {run['attach_errors']}" if run["attach_errors"] else ""),
        flush=True,
    )
    return run


def summary(results: dict[str, list[dict[str, Any]]]) -> str:
    med = {m: median(runs) for m, runs in results.items()}
    rows = []
    for mode, runs in results.items():
        base, mine = med.get("floor-one" if mode.startswith("floor") else "one"), med[mode]
        ratio = mine / base if mine is not None and base else None
        full = [r["all_paths_in_map_s"] for r in runs if r["all_paths_in_map_s"] is not None]
        floor = med.get({"one": "floor-one", "bond": "floor-bond"}.get(mode, ""))
        rows.append(
            (
                mode,
                paths_of(mode),
                len(attached(runs)),
                fmt(med[mode]),
                "-" if ratio is None else f"{ratio:.2f}x",
                fmt(statistics.median(full)) if full else "never",
                fmt(statistics.median(r["detach_s"] for r in runs)) if runs else "-",
                f"{mine / floor:.2f}x" if mine is not None and floor else "-",
            )
        )
    headers = (
        "MODE",
        "PATHS",
        "RUNS OK",
        "ATTACH S",
        "VS ONE",
        "ALL PATHS S",
        "DETACH S",
        "OURS/FLOOR",
    )
    return format_table(headers, rows, (1, 2, 3, 4, 5, 6, 7))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="counted runs per mode (median)")
    p.add_argument("--modes", default=",".join(MODES), help="subset of " + ",".join(MODES))
    p.add_argument("--grace", type=float, default=5.0)
    p.add_argument("--settle", type=float, default=60.0)
    p.add_argument("--json", default="", help="write raw results here")
    args = p.parse_args(argv)
    if not in_lab_guest():
        print("this benchmark runs inside the lab guest (see its docstring)", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m in MODES]
    lab = Lab.from_state()
    lab.reset()
    plain = Ours(args.grace)
    libs: dict[str, Library] = {"one": plain, "plain4": plain}
    if "bond" in modes:
        libs["bond"] = BondedOurs(args.grace, lab)
    floor = Floor((lab.chap.user, lab.chap.password))
    libs["floor-one"] = floor
    libs["floor-bond"] = Floor(floor.chap, [f"floor-{nic}" for nic in lab.bond_nics])
    floor.ifaces_up(lab.bond_nics)
    meta = {
        "repeat": args.repeat,
        "grace_s": args.grace,
        "library": git_describe(),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
    }
    print(f"[bench] bond attach benchmark: {json.dumps(meta)}", flush=True)
    warmup = {m: one_run(lab, libs[m], m, args.settle) for m in modes}
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    t0 = time.monotonic()
    for _ in range(args.repeat):
        for mode in modes:
            results[mode].append(one_run(lab, libs[mode], mode, args.settle))
    bond = libs.get("bond")
    collected = bond.conn.collect_ifaces(()) if isinstance(bond, BondedOurs) else None
    floor.ifaces_down(lab.bond_nics)
    print(f"\n[bench] {args.repeat} runs per mode in {time.monotonic() - t0:.0f} s")
    print(
        "[bench] warm-up (uncounted; the bond's creates its ifaces): "
        + ", ".join(f"{m} {w['attach_s']:.2f} s" for m, w in warmup.items())
    )
    print(summary(results))
    for mode in modes:
        run = median_run(results[mode])
        if run is not None:
            print_profile(f"{mode}", run)
    print(f"\n[bench] ifaces collected at the end: {collected}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "warmup": warmup, "results": results}, f, indent=1)
        print(f"[bench] raw numbers: {args.json}")
    failed = any(r["attach_errors"] for runs in results.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
