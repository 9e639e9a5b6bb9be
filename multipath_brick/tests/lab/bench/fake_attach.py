"""Attach-time benchmark on the FakeHost: prints a table, asserts nothing.

    python -m multipath_brick.tests.lab.bench.fake_attach [--latency 0.2] [--grace 5] [--repeat 3]

Rows:
* N portals, every login taking ``--latency`` seconds: attach time must not grow
  with N (target: within 1.3x of the 1-portal time);
* 4 portals, one unreachable (stock-like login timeouts): attach must return
  within the grace, not after the dead portal's login timeout;
* 8 volumes on 8 targets attached from 8 threads at once, against the same 8
  attached one after another.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
from functools import partial
from typing import Any

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.attach import AttachSettings
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost

from .fakehost import GIB, plural_props, timed


def portals(n: int, base: int = 0) -> list[str]:
    return [f"10.{base}.{i}.2:3260" for i in range(1, n + 1)]


def connector(host: FakeHost, grace: float) -> ISCSIMultipathConnector:
    settings = AttachSettings(grace=grace, timeouts=LoginTimeouts(login_timeout=15, retries=8))
    return ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=settings, lock_path=tempfile.mkdtemp()
    )


def bench_portals(n: int, latency: float, grace: float, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        with FakeHost() as host:
            ports = portals(n)
            host.add_target("iqn.2024-01.bench:t", ports, luns={1: GIB})
            for p in ports:
                host.set_latency(p, latency)
            conn = connector(host, grace)
            data = plural_props("iqn.2024-01.bench:t", ports)
            seconds, info = timed(partial(conn.connect_volume, data))
            runs.append(seconds)
            conn.disconnect_volume(data, info)
    return statistics.median(runs)


def bench_dead_portal(latency: float, grace: float) -> tuple[float, str]:
    # Stock iscsid.conf timeouts (15 s x 8) on the dead portal, run 100x faster so
    # the background login ends sooner: the dead login "takes" 120 s, 12 s real.
    with FakeHost(time_scale=0.1) as host:
        ports = portals(4)
        host.add_target("iqn.2024-01.bench:dead", ports, luns={1: GIB})
        for p in ports:
            host.set_latency(p, latency / 0.1)
        host.set_unreachable(ports[3], True)
        conn = connector(host, grace)
        data = plural_props("iqn.2024-01.bench:dead", ports)
        seconds, info = timed(partial(conn.connect_volume, data))
        states = "/".join(p["state"] for p in info["paths"])
        conn.disconnect_volume(data, info)
        return seconds, states


def bench_concurrent(latency: float, grace: float, volumes: int = 8) -> tuple[float, float]:
    with FakeHost() as host:
        conn = connector(host, grace)
        datas = []
        for v in range(volumes):
            ports = portals(4, base=v + 1)
            iqn = f"iqn.2024-01.bench:v{v}"
            host.add_target(iqn, ports, luns={1: GIB})
            for p in ports:
                host.set_latency(p, latency)
            datas.append(plural_props(iqn, ports))

        def serial() -> None:
            for d in datas:
                conn.disconnect_volume(d, conn.connect_volume(d))

        def parallel() -> None:
            infos: list[dict[str, Any]] = [{} for _ in datas]
            threads = [
                threading.Thread(target=lambda i=i: infos[i].update(conn.connect_volume(datas[i])))
                for i in range(len(datas))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for d, info in zip(datas, infos, strict=True):
                conn.disconnect_volume(d, info)

        return timed(serial)[0], timed(parallel)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per login")
    parser.add_argument("--grace", type=float, default=5.0, help="grace once the map is usable")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"FakeHost attach benchmark: login latency {args.latency}s, grace {args.grace}s\n")
    print(f"{'scenario':<38} {'attach s':>9} {'vs 1 portal':>12}")
    print("-" * 61)
    base = None
    for n in (1, 2, 4, 8, 16):
        seconds = bench_portals(n, args.latency, args.grace, args.repeat)
        base = base or seconds
        print(f"{f'{n} portal(s)':<38} {seconds:>9.3f} {seconds / base:>11.2f}x")
    seconds, states = bench_dead_portal(args.latency, args.grace)
    print(f"{'4 portals, 1 dead (stock 15s x 8)':<38} {seconds:>9.3f}   paths {states}")
    serial, parallel = bench_concurrent(args.latency, args.grace)
    print(f"{'8 volumes x 4 portals, one by one':<38} {serial:>9.3f}   (attach+detach)")
    speedup = serial / parallel
    print(f"{'8 volumes x 4 portals, 8 threads':<38} {parallel:>9.3f}   {speedup:.1f}x faster")


if __name__ == "__main__":
    main()
