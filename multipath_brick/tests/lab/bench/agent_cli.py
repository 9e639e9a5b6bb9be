"""What ``multipath-brick attach`` costs as a process over the library call (FakeHost).

    python bench/agent_cli.py [--repeat 15] [--top 12]

Prints a table and asserts nothing. Rows (milliseconds):

* ``library call``: ``ManagedVolumes.attach_volume()`` of one 4-portal volume in
  a warm process (everything imported), each run on a fresh FakeHost;
* ``command process``: a new ``python`` running what the console script runs
  (``cli.start_process()``, ``cli.main(["attach", ...])`` with the connection
  info on stdin, ``cli.end_process()``), wall time from spawn to exit and CPU
  time (user + system) of the child, with the child's own timings of its
  imports and of ``cli.main``. The child imports what the command imports on a real host (the
  agent, the connector, :mod:`multipath_brick.host.linux` and oslo.privsep's
  context), then builds its FakeHost; the FakeHost's own import and set-up are
  timed inside the child and taken out of both figures;
* the same process as the command ran before ``cli.start_process`` and
  ``cli.end_process`` (eventlet imported, the garbage collector at work during
  the imports and at exit);
* ``python -c pass``: the interpreter alone; then the interpreter and what the
  connector cannot do without (os-brick's ``InitiatorConnector`` and exception
  module, imported as ``cli.start_process`` does): the floor of any process
  using the connector;
* the overhead: median command process minus median library call.

Then ``python -X importtime`` of what the command imports: the self time of
every module summed per top-level package, largest first. Wall times depend
on the machine's load (printed first); CPU times much less.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

#: What the command imports on a real host once it runs a verb (cli.run order).
COMMAND_IMPORTS = (
    "import multipath_brick.agent.cli as cli; cli.start_process(); "
    "import multipath_brick.agent.volumes, multipath_brick.host.linux, "
    "oslo_privsep.priv_context"
)


#: What the connector cannot do without: it subclasses os-brick's InitiatorConnector
#: (whose import pulls os_brick, oslo.log, oslo.config, oslo.concurrency and
#: oslo.privsep's capabilities), and the errors subclass os-brick's.
FLOOR = (
    "import gc, sys; sys.modules['eventlet'] = None; gc.disable(); "
    "import os_brick.initiator.initiator_connector, os_brick.exception; gc.freeze()"
)


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
    sys.path.insert(0, HERE)
    from agent_info import GIB, IQN, PORTALS, agent, info

    from multipath_brick.agent.store import VolumeStore
    from multipath_brick.testing import FakeHost

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


def process(argv: list[str]) -> tuple[float, float, str]:
    """Run a child; wall seconds, CPU seconds, stdout."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def command_runs(repeat: int, before: bool) -> dict[str, list[float]]:
    """Per run: wall and CPU of the process, and the child's imports and cli.main."""
    runs: dict[str, list[float]] = {"wall": [], "cpu": [], "imports": [], "main": []}
    argv = [sys.executable, os.path.abspath(__file__), "--child"]
    if before:
        argv.append("--before")
    for _ in range(repeat):
        wall, cpu, out = process(argv)
        fake = json.loads(out.strip().splitlines()[-1])
        runs["wall"].append(wall - fake["setup"])
        runs["cpu"].append(cpu - fake["setup_cpu"])
        runs["imports"].append(fake["imports"])
        runs["main"].append(fake["main"])
    return runs


def library_runs(repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the library call (CPU: this process, FakeHost included)."""
    warnings.simplefilter("ignore")  # eventlet deprecation, imported by oslo.privsep here
    sys.path.insert(0, HERE)
    from agent_info import GIB, IQN, PORTALS, agent, info

    from multipath_brick.testing import FakeHost

    walls, cpus = [], []
    for _ in range(repeat + 1):
        with tempfile.TemporaryDirectory() as directory, FakeHost(time_scale=0.01) as host:
            host.add_target(IQN, PORTALS, luns={1: GIB})
            volumes = agent(host, directory)
            start, cpu = time.perf_counter(), time.process_time()
            volumes.attach_volume("v", info(1))
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
    # The first call pays this process's first-use costs.
    return walls[1:], cpus[1:]


def importtime(top: int) -> list[tuple[int, str]]:
    """Self time of the command's imports, summed per top-level package, largest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", COMMAND_IMPORTS],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=True,
    )
    packages: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.split("|")
        package = name.strip().split(".")[0]
        packages[package] = packages.get(package, 0) + int(own.split(":")[1])
    total = sum(packages.values())
    largest = sorted(((us, name) for name, us in packages.items()), reverse=True)
    return [(total, "(all)"), *largest[:top]]


def row(name: str, times: list[float]) -> str:
    return (
        f"{name:<50} {min(times) * 1000:8.1f} {statistics.median(times) * 1000:9.1f}"
        f" {max(times) * 1000:8.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.before)
        return

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case (ms)':<50} {'min':>8} {'median':>9} {'max':>8}")
    library, library_cpu = library_runs(args.repeat)
    print(row("attach, 4 portals: library call, wall", library))
    print(row("attach, 4 portals: library call, CPU (+ FakeHost)", library_cpu))
    now = command_runs(args.repeat, before=False)
    print(row("attach, 4 portals: command process, wall", now["wall"]))
    print(row("  of which its imports", now["imports"]))
    print(row("  of which cli.main (the attach, in a cold process)", now["main"]))
    print(row("attach, 4 portals: command process, CPU", now["cpu"]))
    before = command_runs(args.repeat, before=True)
    print(row("same, as before (eventlet, collector), wall", before["wall"]))
    print(row("  of which its imports", before["imports"]))
    print(row("same, as before (eventlet, collector), CPU", before["cpu"]))
    bare = [process([sys.executable, "-c", "pass"])[0] for _ in range(args.repeat)]
    print(row("python -c pass", bare))
    floor = [process([sys.executable, "-c", FLOOR])[0] for _ in range(args.repeat)]
    print(row("python + os-brick's InitiatorConnector (the floor)", floor))
    overhead = statistics.median(now["wall"]) - statistics.median(library)
    old = statistics.median(before["wall"]) - statistics.median(library)
    print(f"command over library call (medians): {overhead * 1000:.0f} ms", end="")
    print(f" (as before: {old * 1000:.0f} ms)")

    print("\npython -X importtime of what the command imports: self time per package")
    for us, name in importtime(args.top):
        print(f"{us / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
