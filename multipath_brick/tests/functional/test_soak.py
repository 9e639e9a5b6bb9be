"""The soak, short: what CI runs of ``tox -e soak`` (see lab/soak/ and the
contributor guide's Soak section for the full run and its figures).

One round of 6 volumes on 2 targets over 4 portals, attached and detached at
once while the chaos thread cuts portals and adds latency (at least 2 faults,
each followed by a read-back of every attached volume): every attach and
detach succeeds, every read-back matches what was written, nothing is left.
I/O errors are counted and reported by cause, as the issue asks, but do not
fail the test: a portal cut while a map is still gathering its paths can fail
a write (see the Soak page's findings).
"""

from __future__ import annotations

import dataclasses
import time

from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.soak.params import SoakParams
from multipath_brick.tests.lab.soak.report import table
from multipath_brick.tests.lab.soak.runner import run_soak

from .conftest import Note

IO = ("write", "read")
SHORT = SoakParams(
    rounds=1,
    volumes=6,
    targets=2,
    portals=4,
    fault_rate=20.0,  # a fault every 3 s on average: some land during attach
    faults_per_round=2,
    fault_hold=6.0,
)


def test_soak_short(lab: Lab, note: Note) -> None:
    # A new seed every run widens what CI covers; the seed is in the output.
    params = dataclasses.replace(SHORT, seed=time.time_ns() % 1_000_000)
    t0 = time.monotonic()
    tally = run_soak(lab, params)
    data = tally.as_dict(params)
    note("seconds", round(time.monotonic() - t0, 1))
    note("soak", {k: data[k] for k in ("counts", "faults", "failures", "leftovers")})
    report = f"seed {params.seed}\n{table(data)}\n" + "\n".join(data["details"])
    print(report)
    assert data["leftover_total"] == 0, report
    assert data["mismatches"] == 0, report
    api_failures = {k: n for k, n in data["failures"].items() if k.split()[0] not in IO}
    assert not api_failures, report
    assert sum(data["faults"].values()) >= params.faults_per_round, report
    assert data["counts"].get("attaches") == params.volumes, report
    assert data["counts"].get("detaches") == params.volumes, report
