"""Soak counters and the final table.

Workers of several threads record into one :class:`Tally` behind its lock;
the table and the JSON are built once, from a snapshot, at the end.
"""

from __future__ import annotations

import collections
import statistics
import threading
from typing import Any

from .params import SoakParams


class Tally:
    """What a soak did and what went wrong, by kind and by cause."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        self.leftovers: collections.Counter[str] = collections.Counter()
        self.durations: dict[str, list[float]] = collections.defaultdict(list)
        self.details: list[str] = []

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def failure(self, cause: str, detail: str) -> None:
        """A failed step; ``cause`` is the table row, ``detail`` goes to the log."""
        with self._lock:
            self.failures[cause] += 1
            self.details.append(f"{cause}: {detail}")
        print(f"[soak] FAILURE {cause}: {detail}", flush=True)

    def leftover(self, kind: str, items: list[str], rnd: int) -> None:
        with self._lock:
            self.leftovers[kind] += len(items)
            self.details.append(f"round {rnd} leftover {kind}: {items}")
        print(f"[soak] LEFTOVER round {rnd} {kind}: {items}", flush=True)

    def took(self, what: str, seconds: float) -> None:
        with self._lock:
            self.durations[what].append(seconds)

    @property
    def mismatches(self) -> int:
        return self.counts["mismatches"]

    @property
    def leftover_total(self) -> int:
        return sum(self.leftovers.values())

    def as_dict(self, params: SoakParams) -> dict[str, Any]:
        with self._lock:
            return {
                "params": {**vars(params)},
                "counts": dict(self.counts),
                "faults": dict(self.faults),
                "failures": dict(self.failures),
                "leftovers": dict(self.leftovers),
                "leftover_total": sum(self.leftovers.values()),
                "mismatches": self.counts["mismatches"],
                "durations": {k: _summary(v) for k, v in sorted(self.durations.items())},
                "details": list(self.details),
            }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2) if values else 0.0,
        "max": round(max(values), 2) if values else 0.0,
    }


def table(data: dict[str, Any]) -> str:
    """The report as an RST simple table (pasted as is into the docs)."""
    rows: list[tuple[str, str]] = []
    p = data["params"]
    rows.append(
        (
            "parameters",
            f"{p['rounds']} rounds x {p['volumes']} volumes on {p['targets']} targets, "
            f"{p['portals']} portals, seed {p['seed']}",
        )
    )
    counts = data["counts"]
    rows.append(("rounds", str(counts.get("rounds", 0))))
    faults = data["faults"]
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none"
    rows.append(("faults injected", f"{sum(faults.values())} ({by_kind})"))
    for key in ("attaches", "writes", "reads", "detaches"):
        rows.append((key, str(counts.get(key, 0))))
    failures = data["failures"]
    by_cause = ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "none"
    rows.append(("failures", f"{sum(failures.values())} ({by_cause})"))
    left = data["leftovers"]
    by_kind = ", ".join(f"{k} {v}" for k, v in sorted(left.items()) if v) or "none"
    rows.append(("leftovers", f"{data['leftover_total']} ({by_kind})"))
    rows.append(("data mismatches", str(data["mismatches"])))
    for what, s in data["durations"].items():
        rows.append((f"{what} s (p50 / max)", f"{s['p50']} / {s['max']} (n={s['n']})"))
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    rule = f"{'=' * width}  {'=' * vwidth}"
    lines = [rule, f"{'what':<{width}}  result", rule]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append(rule)
    return "\n".join(lines)
