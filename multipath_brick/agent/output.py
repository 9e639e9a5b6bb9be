"""What ``multipath-brick`` prints: one JSON document, or a table for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

#: Columns of each command's ``--human`` table: (heading, key).
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "info": (("VOL_ID", "vol_id"), ("STATE", "state"), ("EXISTS", "exists"), ("PATH", "path")),
    "paths": (
        ("PORTAL", "portal"),
        ("IFACE", "iface"),
        ("LUN", "lun"),
        ("SESSION", "session"),
        ("DEVICE", "device"),
        ("MULTIPATHD", "multipathd"),
    ),
    "doctor": (("CHECK", "name"), ("STATUS", "status"), ("DETAIL", "detail"), ("FIX", "fix")),
}


def render(verb: str, result: Any, *, human: bool) -> str:
    """The text to print for a command's result."""
    if not human:
        return json.dumps(result, sort_keys=True) + "\n"
    if verb in COLUMNS:
        return table(COLUMNS[verb], result)
    if verb == "attach":
        return f"{result['vol_id']} attached at {result['path']}\n"
    if verb == "detach":
        return f"{result['vol_id']} detached\n"
    return "".join(f"{key}: {_cell(result[key])}\n" for key in sorted(result))


def table(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> str:
    """Left-aligned columns, one row per dict; None shows as ``-``."""
    cells = [[heading for heading, _ in columns]]
    cells += [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in cells
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
