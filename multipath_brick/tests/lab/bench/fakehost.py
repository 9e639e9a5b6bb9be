"""What the FakeHost benchmarks share: sizes, connection properties, a timer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

GIB = 1024**3


def plural_props(iqn: str, portals: Sequence[str], lun: int = 1) -> dict[str, Any]:
    """Plural connection properties of LUN ``lun`` of ``iqn`` on every portal (no CHAP)."""
    return {
        "target_portals": list(portals),
        "target_iqns": [iqn] * len(portals),
        "target_luns": [lun] * len(portals),
    }


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``fn()`` took, and what it returned."""
    start = time.monotonic()
    out = fn()
    return time.monotonic() - start, out
