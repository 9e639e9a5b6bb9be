"""The lab attach benchmark's report: the tables, the verdicts on the targets, the breakdowns.

Also reads a saved result file again (``lab_attach --report FILE``).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from ..table import format_table
from .floor import FLOOR
from .guest_cpu import format_breakdown
from .libraries import OSB, OURS
from .scenarios import BenchScenario

#: Runs by scenario key, then by library name.
Results = dict[str, dict[str, list[dict[str, Any]]]]


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


def usable_s(run: dict[str, Any]) -> float | None:
    """When the map was first seen usable (end of that check): a show-map (or,
    in older runs, show-paths) answer with a usable WWID, or (older still) a
    successful 'multipath -C'."""
    for t in run.get("timeline") or ():
        asked = t[3] in ("MultipathdShowMap", "MultipathdShowPaths")
        seen = asked and str(t[6]).strip() != "usable:"
        if seen or (t[3] in ("MultipathCheck", "multipath -C") and t[4] == 0):
            return round(float(t[0]) + float(t[1]), 2)
    return None


def throughput(run: dict[str, Any], volumes: int) -> float:
    """Volumes attached successfully per second of the concurrent attach."""
    ok = volumes - len(run["attach_errors"])
    return ok / run["attach_s"] if run["attach_s"] else 0.0


def _med(results: Results, key: str, lib: str) -> float | None:
    return median(results.get(key, {}).get(lib, []))


def _p4_target(
    results: Results, m_ours: float | None, m_osb: float | None, verdicts: dict[str, Any]
) -> str:
    p1 = _med(results, "p1", OURS)
    if not (p1 and m_ours):
        return ""
    r4 = m_ours / p1
    verdicts["ours_4p_over_1p"] = round(r4, 3)
    p1_osb = _med(results, "p1", OSB)
    if p1_osb and m_osb:
        verdicts["osbrick_4p_over_1p"] = round(m_osb / p1_osb, 3)
    return f"4p/1p = {r4:.2f}x (<= 1.3x): {'met' if r4 <= 1.3 else 'MISSED'}"


def _dead_target(
    results: Results,
    runs: Sequence[dict[str, Any]],
    m_ours: float | None,
    grace: float,
    verdicts: dict[str, Any],
) -> str:
    if m_ours is None:
        return ""
    limit = (_med(results, "p4", OURS) or 0.0) + grace
    ok = m_ours <= limit
    after = [round(r["attach_s"] - u, 1) for r in attached(runs) if (u := usable_s(r))]
    verdicts["dead_within_grace"] = ok
    verdicts["dead_return_after_usable_s"] = after
    return (
        f"<= 4p + grace = {limit:.1f} s: {'met' if ok else 'MISSED'}; "
        f"returned {after} s after the map was usable"
    )


def _concurrent_cell(runs: Sequence[dict[str, Any]], vols: int) -> tuple[str, float | None]:
    """Concurrent rows: every run counts; throughput counts the volumes attached."""
    if not runs:
        return "-", None
    mid = sorted(runs, key=lambda r: r["attach_s"])[(len(runs) - 1) // 2]
    ok = vols - len(mid["attach_errors"])
    tp = statistics.median(throughput(r, vols) for r in runs)
    return f"{mid['attach_s']:.2f} ({ok}/{vols} vol ok)", tp


def attach_row(
    sc: BenchScenario, results: Results, grace: float, verdicts: dict[str, Any]
) -> tuple[str, ...]:
    """One row of the attach table; the row's verdicts go into ``verdicts``."""
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
    if sc.key == "p4":
        target = _p4_target(results, m_ours, m_osb, verdicts)
    if sc.key == "dead":
        target = _dead_target(results, ours_runs, m_ours, grace, verdicts)
    if sc.volumes > 1:
        cell_ours, tp_ours = _concurrent_cell(ours_runs, sc.volumes)
        cell_osb, tp_osb = _concurrent_cell(osb_runs, sc.volumes)
        if tp_ours is not None and tp_osb:
            ratio = f"{tp_ours / tp_osb:.2f}x"
            target = (
                f"{tp_ours:.3f} vs {tp_osb:.3f} vol/s = {tp_ours / tp_osb:.2f}x "
                f"(>= 3x): {'met' if tp_ours / tp_osb >= 3 else 'MISSED'}"
            )
            verdicts[f"{sc.key}_throughput_ratio"] = round(tp_ours / tp_osb, 3)
    return (
        sc.title,
        cell_ours,
        full_text(ours_runs),
        cell_osb,
        full_text(osb_runs),
        ratio,
        *_floor_cells(ours_runs, results.get(sc.key, {}).get(FLOOR, [])),
        target,
    )


def _floor_cells(
    ours_runs: Sequence[dict[str, Any]], floor_runs: Sequence[dict[str, Any]]
) -> tuple[str, str, str]:
    """The floor's median attach, its all-paths time, and ours / floor for both."""
    if not floor_runs:
        return "-", "-", "-"

    def full(runs: Sequence[dict[str, Any]]) -> float | None:
        done = [r["all_paths_in_map_s"] for r in attached(runs) if r["all_paths_in_map_s"]]
        return statistics.median(done) if done else None

    m_ours, m_floor = median(ours_runs), median(floor_runs)
    full_ours, full_floor = full(ours_runs), full(floor_runs)
    ratios = [
        f"{a / b:.2f}x" if a and b else "-"
        for a, b in ((m_ours, m_floor), (full_ours, full_floor))
    ]
    return (
        f"{fmt(m_floor)} ({len(attached(floor_runs))}/{len(floor_runs)})",
        full_text(floor_runs),
        " / ".join(ratios),
    )


def print_tables(
    meta: dict[str, Any], rows: Sequence[Sequence[str]], detach_rows: Sequence[Sequence[str]]
) -> None:
    osb_name = f"{OSB} {meta.get('osbrick_version') or ''}".strip()
    print()
    print(
        f"Attach seconds, median (ok runs/runs, paths a=active p=pending f=failed); "
        f"kernel {meta['kernel']} under TCG, {meta['cpus']} vCPU; {osb_name} "
        f"(privsep {meta.get('osbrick_privsep')}, pool {meta.get('osbrick_thread_pool')}); "
        f"multipath-brick {meta.get('library', '')}, grace {float(meta['grace_s'])} s"
    )
    headers = (
        "SCENARIO",
        OURS,
        "all paths",
        osb_name,
        "all paths",
        "OS-BRICK/OURS",
        FLOOR,
        "all paths",
        "OURS/FLOOR",
        "TARGET",
    )
    print(format_table(headers, rows, (2, 4, 5, 7)))
    print(
        "  all paths = seconds from the attach call until every live path is in the map "
        f"(median; waited for at most {meta.get('settle_s', 60):.0f} s after the attach "
        "returned); concurrent rows: OS-BRICK/OURS is the throughput ratio; "
        "OURS/FLOOR: attach / all paths (floor.sh, one volume on live portals only)"
    )
    print()
    print("Detach seconds, median (including retries of a detach that raised)")
    print(format_table(("SCENARIO", OURS, osb_name), detach_rows))


def print_profiles(scenarios: Sequence[BenchScenario], results: Results) -> None:
    """Ours for every scenario; os-brick's for 4 portals and the concurrent rows."""
    for sc in scenarios:
        runs = results.get(sc.key, {}).get(OURS, [])
        mrun = median_run(runs) or (runs[0] if runs else None)
        if mrun is not None:
            print_profile(f"{OURS}, {sc.title}", mrun)
    for sc in scenarios:
        mrun = median_run(results.get(sc.key, {}).get(OSB, []))
        if mrun is not None and (sc.volumes > 1 or sc.key == "p4"):
            print_profile(f"{OSB}, {sc.title}", mrun)


def print_probe(probe: dict[str, Any]) -> None:
    print(
        f"\n  iscsiadm cost in this guest: /bin/true {probe['true_s']:.2f} s; 7 settings "
        f"written with 7 'iscsiadm -o update' {probe['seven_updates_s']:.2f} s "
        f"(applied: {probe['seven_updates_applied']}); the same 7 as -n/-v pairs of ONE "
        f"update {probe['one_update_s']:.2f} s (rc {probe['one_update_rc']}, "
        f"applied: {probe['one_update_applied']})"
    )


def report(
    meta: dict[str, Any],
    scenarios: Sequence[BenchScenario],
    results: Results,
    probe: dict[str, Any] | None,
) -> dict[str, Any]:
    """Print the tables and per-step breakdowns; return the verdicts on the targets."""
    grace = float(meta["grace_s"])
    verdicts: dict[str, Any] = {}
    rows = [attach_row(sc, results, grace, verdicts) for sc in scenarios]
    detach_rows = [
        (
            sc.title,
            detach_text(results.get(sc.key, {}).get(OURS, [])),
            detach_text(results.get(sc.key, {}).get(OSB, [])),
        )
        for sc in scenarios
    ]
    print_tables(meta, rows, detach_rows)
    print_profiles(scenarios, results)
    if probe:
        print_probe(probe)
    return verdicts
