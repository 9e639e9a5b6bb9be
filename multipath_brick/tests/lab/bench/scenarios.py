"""The lab attach benchmark's scenarios and the target side each one needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..api import Lab
from ..props import volume_props
from .run import BenchVolume

#: Size of every benchmarked LUN, MiB.
LUN_MB = 64
#: Every scenario's keys, in the table's order (``--scenarios``).
KEYS = ("p1", "p2", "p4", "dead", "conc", "storm")
#: What runs when ``--scenarios`` is not given: the boot storm takes minutes.
DEFAULT_KEYS = KEYS[:-1]


@dataclasses.dataclass
class BenchScenario:
    """One row of the table: how many portals, a dead one, how many volumes at once."""

    key: str
    title: str
    portals: int
    dead: int | None = None
    volumes: int = 1
    layout: str = "luns"  # several volumes: LUNs of one target, or one target each


def portals_row(n: int, lat: str) -> BenchScenario:
    return BenchScenario(f"p{n}", f"{n} portal{'s' if n > 1 else ''}, {lat} each", n)


def dead_row(lat: str) -> BenchScenario:
    return BenchScenario("dead", f"4 portals, 1 dead, {lat}", 4, dead=3)


def concurrent_row(volumes: int, layout: str, lat: str, key: str = "conc") -> BenchScenario:
    """``volumes`` attached at once; ``key`` "storm" is the boot storm's row."""
    what = "LUNs, 1 target" if layout == "luns" else "targets"
    title = f"{volumes} concurrent ({volumes} {what}), 4 portals, {lat}"
    if key == "storm":
        title = f"boot storm: {title}"
    return BenchScenario(f"{key}-{layout}", title, 4, volumes=volumes, layout=layout)


def chosen(
    keys: Sequence[str],
    latency_ms: int,
    volumes: int,
    layouts: Sequence[str],
    storm_volumes: int = 32,
) -> list[BenchScenario]:
    """The scenarios ``--scenarios`` names, in the table's order."""
    lat = f"{latency_ms} ms" if latency_ms else "no delay"
    rows = [portals_row(n, lat) for n in (1, 2, 4) if f"p{n}" in keys]
    if "dead" in keys:
        rows.append(dead_row(lat))
    for key, count in (("conc", volumes), ("storm", storm_volumes)):
        if key in keys:
            rows += [concurrent_row(count, layout, lat, key) for layout in layouts]
    return rows


def scenarios_from(saved: dict[str, Any]) -> list[BenchScenario]:
    """The scenarios of a saved result file (stored since; rebuilt from keys before)."""
    if saved.get("scenarios"):
        return [BenchScenario(**sc) for sc in saved["scenarios"]]
    lat = f"{saved['meta']['latency_ms']} ms"
    out = []
    for key in saved["results"]:
        if key.startswith("p"):
            out.append(portals_row(int(key[1:]), lat))
        elif key == "dead":
            out.append(dead_row(lat))
        elif key.startswith(("conc-", "storm-")):
            runs: list[dict[str, Any]] = next(iter(saved["results"][key].values()), [])
            vols = len(runs[0]["per_volume_attach_s"]) if runs else 8
            row, layout = key.split("-", 1)
            out.append(concurrent_row(vols, layout, lat, row))
    return out


def prepare(lab: Lab, sc: BenchScenario, latency_ms: int) -> list[BenchVolume]:
    """Reset the lab, then build the scenario's target side; returns the volumes."""
    errors = lab.reset()
    if errors:
        print(f"  lab reset errors: {errors}", flush=True)
    for k in range(sc.portals):
        if latency_ms:
            lab.set_latency(k, latency_ms)
    if sc.dead is not None:
        lab.portal_down(sc.dead)
    volumes = []
    portals = lab.portals[: sc.portals]
    for v in range(sc.volumes):
        if sc.layout == "targets" and sc.volumes > 1:
            iqn = f"{lab.iqn}-v{v}"
            wwid = lab.add_target(iqn, {1: LUN_MB}, chap=lab.chap)[1]
            props = volume_props(lab, 1, portals=portals, iqn=iqn, volume_id=None)
        else:
            wwid = lab.add_lun(v + 1, LUN_MB)
            props = volume_props(lab, v + 1, portals=portals, volume_id=None)
        volumes.append(BenchVolume(props, wwid))
    return volumes
