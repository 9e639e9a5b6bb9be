"""The rows of volumes attached at once: full redundancy, per-volume medians, detach, failures.

One table for the ``conc`` (8 at once) and ``storm`` (32 at once) rows of
:mod:`.lab_attach`, per library: when every map held all its live paths (the
*full* time, from the attach call), the median over the volumes of when each
call *returned* and of when each map was first *usable* (in sysfs with a path),
the detach of them all, and what failed. The ratios are within one run: the
row's full time over the same library's lone 4-portal attach (``p4``, its full
time), and ours against os-brick and the floor. Issue 15's targets:

* 8 at once: every map full within 1.5x of a lone 4-portal attach, and the
  detach of the 8 within 4 s;
* 32 at once (the boot storm): full redundancy at least 3x faster than os-brick.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..table import format_table
from .floor import FLOOR
from .libraries import OSB, OURS
from .scenarios import BenchScenario

#: Runs by scenario key, then by library name (as :data:`.report.Results`).
Results = dict[str, dict[str, list[dict[str, Any]]]]

CONC_FULL_OVER_P4 = 1.5
CONC_DETACH_S = 4.0
STORM_OVER_OSBRICK = 3.0


def usable_at(run: dict[str, Any]) -> list[float]:
    """When each volume's map was first seen with a path (volumes never seen: left out)."""
    first: dict[str, float] = {}
    for t, wwid, _dm, slaves in run.get("map_events") or ():
        if slaves >= 1 and wwid not in first:
            first[wwid] = float(t)
    return sorted(first.values())


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.median(got), 2) if got else None


def figures(run: dict[str, Any]) -> dict[str, Any]:
    """One run's figures: full, per-volume returned and usable medians, detach, failures."""
    volumes = len(run["per_volume_attach_s"])
    usable = usable_at(run)
    return {
        "volumes": volumes,
        "full_s": run["all_paths_in_map_s"],
        "returned_median_s": _median(run["per_volume_attach_s"]),
        "returned_last_s": run["attach_s"],
        "usable_median_s": _median(usable),
        "maps_seen": len(usable),
        "detach_s": run["detach_s"],
        "attach_failures": len(run["attach_errors"]),
        "detach_failures": sum(1 for a in run["detach_attempts"] if a > 1),
        "leftovers": bool(run["leftovers"]),
    }


def summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The medians of a library's runs of one row (None: no run)."""
    if not runs:
        return None
    each = [figures(r) for r in runs]
    out: dict[str, Any] = {"runs": len(each)}
    for key in ("full_s", "returned_median_s", "returned_last_s", "usable_median_s", "detach_s"):
        out[key] = _median([f[key] for f in each])
    out["never_full"] = sum(1 for f in each if f["full_s"] is None)
    for key in ("attach_failures", "detach_failures", "maps_seen"):
        out[key] = sum(f[key] for f in each)
    out["left_state"] = sum(1 for f in each if f["leftovers"])
    out["volumes"] = each[0]["volumes"]
    return out


def _p4_full(results: Results, lib: str) -> float | None:
    runs = [r for r in results.get("p4", {}).get(lib, []) if not r["attach_errors"]]
    return _median([r["all_paths_in_map_s"] for r in runs])


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def _failures(s: dict[str, Any]) -> str:
    parts = [
        f"{s['attach_failures']} attach",
        f"{s['detach_failures']} detach retried",
    ]
    if s["never_full"]:
        parts.append(f"{s['never_full']} run(s) never full")
    if s["left_state"]:
        parts.append(f"{s['left_state']} LEFT STATE")
    return ", ".join(parts)


def verdicts_of(sc: BenchScenario, results: Results) -> dict[str, Any]:
    """The row's ratios and its targets' verdicts (only those the run can judge)."""
    by_lib = results.get(sc.key, {})
    ours, osb, floor = (summary(by_lib.get(n, [])) for n in (OURS, OSB, FLOOR))
    out: dict[str, Any] = {}
    for name, s in ((OURS, ours), (OSB, osb), (FLOOR, floor)):
        if s is not None:
            out[f"{name}_full_over_p4"] = _ratio(s["full_s"], _p4_full(results, name))
    if ours and osb:
        out["osbrick_over_ours_full"] = _ratio(osb["full_s"], ours["full_s"])
    if ours and floor:
        out["ours_over_floor_full"] = _ratio(ours["full_s"], floor["full_s"])
    if ours and sc.key.startswith("conc-") and sc.volumes == 8:
        r = out.get(f"{OURS}_full_over_p4")
        out["target_full_within_1.5x_p4"] = None if r is None else r <= CONC_FULL_OVER_P4
        out["target_detach_8_within_4s"] = (
            None if ours["detach_s"] is None else ours["detach_s"] <= CONC_DETACH_S
        )
    if ours and osb and sc.key.startswith("storm-"):
        r = out.get("osbrick_over_ours_full")
        out["target_storm_3x_osbrick"] = None if r is None else r >= STORM_OVER_OSBRICK
    return out


def concurrent_report(scenarios: Sequence[BenchScenario], results: Results) -> dict[str, Any]:
    """Print the concurrent rows' table; return their verdicts by scenario key."""
    rows: list[tuple[str, ...]] = []
    verdicts: dict[str, Any] = {}
    for sc in scenarios:
        if sc.volumes <= 1:
            continue
        v = verdicts_of(sc, results)
        verdicts[sc.key] = v
        for name in (OURS, OSB, FLOOR):
            s = summary(results.get(sc.key, {}).get(name, []))
            if s is None:
                continue
            rows.append(
                (
                    sc.title,
                    name,
                    str(s["runs"]),
                    _s(s["full_s"]),
                    _x(v.get(f"{name}_full_over_p4")),
                    _s(s["returned_median_s"]),
                    _s(s["returned_last_s"]),
                    _s(s["usable_median_s"]),
                    _s(s["detach_s"]),
                    _failures(s),
                )
            )
    if not rows:
        return verdicts
    print("\nVolumes at once (seconds from the calls; medians of the runs)")
    headers = (
        "SCENARIO",
        "WHO",
        "RUNS",
        "ALL FULL",
        "/ P4 FULL",
        "RETURNED MED",
        "LAST RETURNED",
        "USABLE MED",
        "DETACH ALL",
        "FAILURES",
    )
    print(format_table(headers, rows, (2, 3, 4, 5, 6, 7, 8)))
    print(
        "  ALL FULL: until every map held all its live paths; / P4 FULL: over the same "
        "library's lone 4-portal attach (full) in this run; RETURNED MED / USABLE MED: "
        "median over the volumes of when its call returned / its map had a path"
    )
    for key, v in verdicts.items():
        print(f"  {key}: {v}")
    return verdicts
