"""What starting the privsep daemon costs a root caller: a fork against a program.

    python -m multipath_brick.tests.lab.bench.daemon_start [--repeat 15]

Root only (as an oVirt helper or a host agent runs). Each sample is a new
process that imports the privileged layer, starts the daemon, then makes one
privileged call (``iscsiadm -m session``, which the daemon imports its
entrypoints for). Rows, in milliseconds (min, median, max):

* ``fork``: oslo.privsep's ``Method.FORK``, how the library started the daemon
  until it was found to cut calls short when its caller died;
* ``program``: :func:`multipath_brick.privileged.start_daemon`, ``python -m
  multipath_brick.privsep_daemon`` (a new interpreter, eventlet kept out);
* ``program, eventlet imported``: the same command without keeping eventlet out.

Prints a table and asserts nothing; wall times follow the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from ..table import ms_header, ms_row

WIDTHS = (8, 9, 8)

#: One sample, run in a new interpreter: prints {"start": s, "first_call": s}.
CHILD = """
import json, sys, time
from oslo_privsep import priv_context
from multipath_brick import privileged
from multipath_brick.privileged import entrypoints
how = sys.argv[1]
if how == "eventlet":
    privileged.cfg.CONF.set_default(
        "helper_command",
        f"{sys.executable} -c 'from oslo_privsep.daemon import helper_main; helper_main()'",
        group=privileged.CFG_SECTION,
    )
t0 = time.monotonic()
if how == "fork":
    privileged.context.start(priv_context.Method.FORK)
else:
    privileged.start_daemon(None)
t1 = time.monotonic()
entrypoints.session_list(30.0)
t2 = time.monotonic()
privileged.context.stop()
print(json.dumps({"start": t1 - t0, "first_call": t2 - t1}))
"""

CASES = {"fork": "fork", "program": "program", "program, eventlet imported": "eventlet"}


def sample(how: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: a root caller's daemon is what this measures")
    times: dict[str, dict[str, list[float]]] = {c: {"start": [], "first_call": []} for c in CASES}
    for _ in range(args.repeat):  # the cases take turns, so the load hits them alike
        for case, how in CASES.items():
            for key, value in sample(how).items():
                times[case][key].append(value)
    print(f"load average {os.getloadavg()[0]:.2f}, {args.repeat} samples per case, ms")
    width = max(len(c) for c in CASES) + len(" first call") + 2
    print(ms_header("", ("min", "median", "max"), width, WIDTHS))
    for case in CASES:
        print(ms_row(f"{case}: start", times[case]["start"], width, WIDTHS))
        print(ms_row(f"{case}: first call", times[case]["first_call"], width, WIDTHS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
