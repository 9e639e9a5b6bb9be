"""Plain-text tables of the demo and the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> str:
    """An aligned plain-text table; columns listed in ``right`` are right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def ms_header(first: str, columns: Sequence[str], width: int, widths: Sequence[int]) -> str:
    """The header line of :func:`ms_row` rows: ``first`` padded, then right-aligned columns."""
    return f"{first:<{width}}" + "".join(
        f" {c:>{w}}" for c, w in zip(columns, widths, strict=True)
    )


def ms_row(name: str, times: Sequence[float], width: int, widths: Sequence[int]) -> str:
    """``name`` padded to ``width``, then min, median and max of ``times`` in milliseconds."""
    figures = (min(times), statistics.median(times), max(times))
    return f"{name:<{width}}" + "".join(
        f" {s * 1000:{w}.1f}" for s, w in zip(figures, widths, strict=True)
    )


def run_median(runs: Sequence[dict[str, Any]], key: str, digits: int = 3) -> float | None:
    """The median of ``key`` over the runs without an ``error``; None without any."""
    vals = [r[key] for r in runs if not r["error"] and r.get(key) is not None]
    return round(statistics.median(vals), digits) if vals else None


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as ``1.23x``; ``-`` when either is missing."""
    return f"{a / b:.2f}x" if a is not None and b else "-"


def problems(run: dict[str, Any]) -> str:
    """What went wrong in a run, for its progress line: its error and its leftovers."""
    return (f"  ERROR {run['error']}" if run["error"] else "") + (
        f"  LEFT {run['leftovers']}" if run["leftovers"] else ""
    )
