"""The soak's rounds, and its command line (inside the lab guest only).

A round: create the LUNs, start the chaos thread, attach every volume at
once and write its checksummed data, let at least ``faults_per_round``
faults pass (each followed by a read-back of every attached volume), detach
every volume at once (the chaos goes on), stop the chaos, wait for the
connector's background paths, then count what is left. The lab is reset
after every round, so one round's leftovers are counted once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from ..api import Lab
from ..config import GUEST_OUT_DIR, MULTIPATHD_LOG
from .chaos import Chaos
from .fleet import Fleet, create_volumes
from .leftovers import round_leftovers, wwids
from .params import SoakParams, add_arguments, fault_plan, from_arguments
from .report import Tally, table

# Background (pending) paths of a dead portal give up after the login
# timeouts the library writes; three minutes is far beyond them.
PENDING_TIMEOUT = 180


def run_soak(lab: Lab, params: SoakParams) -> Tally:
    """Run every round of ``params`` on ``lab``; the tally says what happened."""
    from multipath_brick.connector import ISCSIMultipathConnector

    tally = Tally()
    connector = ISCSIMultipathConnector(use_multipath=True, grace=10)
    print(f"[soak] {params} (seed {params.seed})", flush=True)
    for rnd in range(params.rounds):
        t0 = time.monotonic()
        before = wwids()
        volumes = create_volumes(lab, params)
        fleet = Fleet(connector, volumes, params, tally, rnd)
        chaos = Chaos(lab, fault_plan(params, rnd), params, tally, fleet.verify_all)
        fleet.context = chaos.describe
        chaos.start()
        try:
            fleet.attach_all()
            _phase(rnd, "attached", t0)
            # Faults started during attach count; the rest land on attached volumes.
            chaos.wait_faults(params.faults_per_round, timeout=600 + 120 * params.faults_per_round)
            fleet.detach_all()
            _phase(rnd, "detached", t0)
        finally:
            chaos.finish()
        if not connector.wait_for_pending(timeout=PENDING_TIMEOUT):
            tally.failure("pending paths", f"round {rnd}: still running after {PENDING_TIMEOUT}s")
        for kind, items in round_leftovers(lab, before, {v.wwid for v in volumes}).items():
            if items:
                tally.leftover(kind, items, rnd)
        errors = lab.reset()
        if errors:
            tally.failure("lab reset", f"round {rnd}: {errors}")
        tally.count("rounds")
        tally.took("round", time.monotonic() - t0)
        print(f"[soak] round {rnd} done in {time.monotonic() - t0:.1f}s", flush=True)
    return tally


def _phase(rnd: int, what: str, t0: float) -> None:
    print(f"[soak] round {rnd}: {what} at {time.monotonic() - t0:.1f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m multipath_brick.tests.lab soak -- ARGS`` runs this
    in the guest. Exit 1 when anything was left behind or read back wrong."""
    parser = argparse.ArgumentParser(prog="soak", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--json", default=os.path.join(GUEST_OUT_DIR, "soak.json"))
    args = parser.parse_args(argv)
    params = from_arguments(args)
    if params.portals > (lab := Lab.from_state()).config.portals:
        parser.error(f"--portals {params.portals}: the lab has {lab.config.portals}")
    lab.reset()
    t0 = time.monotonic()
    tally = run_soak(lab, params)
    data = tally.as_dict(params)
    data["total_seconds"] = round(time.monotonic() - t0, 1)
    try:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2) + "\n")
    except OSError as e:
        print(f"[soak] cannot write {args.json}: {e}", flush=True)
    if tally.failures:
        # The guest's /run goes with it: keep multipathd's view of the failures.
        shutil.copy(MULTIPATHD_LOG, os.path.join(os.path.dirname(args.json), "multipathd.log"))
    print(f"[soak] seed {params.seed}, {data['total_seconds']}s\n{table(data)}", flush=True)
    bad = tally.leftover_total or tally.mismatches
    print(f"[soak] {'FAILED' if bad else 'OK'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
