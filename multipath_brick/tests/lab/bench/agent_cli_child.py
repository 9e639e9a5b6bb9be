"""The command process of ``agent_cli``: one ``multipath-brick attach`` on a FakeHost.

Run by path (``python agent_cli_child.py [--before]``), never imported: what it
imports, and when, is what the benchmark measures.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time


def child(before: bool) -> None:
    """One command run in this (fresh) process, as ``cli.run`` does it (``before``:
    as it did before ``start_process``/``end_process``); prints the FakeHost
    set-up seconds and the child's own timings."""
    begin = time.perf_counter()
    from multipath_brick.agent import cli

    if not before:
        cli.start_process()
    import oslo_privsep.priv_context  # noqa: F401

    import multipath_brick.agent.volumes  # noqa: F401
    import multipath_brick.host.linux  # noqa: F401

    start, cpu = time.perf_counter(), time.process_time()
    imports = start - begin
    from multipath_brick.agent.store import VolumeStore
    from multipath_brick.testing import FakeHost
    from multipath_brick.tests.lab.bench.agent_info import IQN, PORTALS, agent, info
    from multipath_brick.tests.lab.bench.fakehost import GIB

    directory = tempfile.mkdtemp()
    host = FakeHost(time_scale=0.01)
    host.add_target(IQN, PORTALS, luns={1: GIB})
    # On a host the store exists before the command runs: made here, it is
    # only opened by the command, as there.
    VolumeStore(os.path.join(directory, "volumes.db")).close()
    setup, setup_cpu = time.perf_counter() - start, time.process_time() - cpu
    out = io.StringIO()
    main_start = time.perf_counter()
    status = cli.main(
        ["attach", "v"],
        volumes=lambda _: agent(host, directory),
        stdin=io.StringIO(json.dumps(info(1))),
        stdout=out,
    )
    main = time.perf_counter() - main_start
    if not before:
        cli.end_process()
    if status != 0:
        raise SystemExit(f"attach failed: {out.getvalue()}")
    start, cpu = time.perf_counter(), time.process_time()
    host.close()
    setup += time.perf_counter() - start
    setup_cpu += time.process_time() - cpu
    print(json.dumps({"setup": setup, "setup_cpu": setup_cpu, "imports": imports, "main": main}))


if __name__ == "__main__":
    child("--before" in sys.argv[1:])
