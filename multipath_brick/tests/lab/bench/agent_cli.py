"""What ``multipath-brick attach`` costs as a process over the library call (FakeHost).

    python -m multipath_brick.tests.lab.bench.agent_cli [--repeat 15] [--top 12]

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
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import multipath_brick

from ..table import ms_header, ms_row

#: Widths of the min, median and max columns.
WIDTHS = (8, 9, 8)
#: The command process of the figures (a script: see command_runs).
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_cli_child.py")
#: Where that child finds this package when it is not installed.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(multipath_brick.__file__)))

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


def process(argv: list[str], path: str = "") -> tuple[float, float, str]:
    """Run a child (``path``: where it finds this package); wall seconds, CPU seconds, stdout."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH")) if p)
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
    # By path, not with -m: -m would import the package (and os-brick) before
    # the child's cli.start_process(), which is what the command process measures.
    argv = [sys.executable, CHILD]
    if before:
        argv.append("--before")
    for _ in range(repeat):
        wall, cpu, out = process(argv, PACKAGE_PARENT)
        fake = json.loads(out.strip().splitlines()[-1])
        runs["wall"].append(wall - fake["setup"])
        runs["cpu"].append(cpu - fake["setup_cpu"])
        runs["imports"].append(fake["imports"])
        runs["main"].append(fake["main"])
    return runs


def library_runs(repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the library call (CPU: this process, FakeHost included)."""
    warnings.simplefilter("ignore")  # eventlet deprecation, imported by oslo.privsep here
    from multipath_brick.testing import FakeHost

    from .agent_info import IQN, PORTALS, agent, info
    from .fakehost import GIB

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
        env={
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(
                p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p
            ),
        },
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
    return ms_row(name, times, 50, WIDTHS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(ms_header("case (ms)", ("min", "median", "max"), 50, WIDTHS))
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
