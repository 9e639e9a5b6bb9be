"""Soak parameters and the seeded fault plan.

Everything random in a soak (which fault, on which portal, how long the
chaos thread waits, the data written) comes from one ``random.Random`` per
purpose seeded from :attr:`SoakParams.seed`, so a run's fault sequence and
data are reproduced by its seed. Thread interleaving is not: the kernel and
the daemons decide it.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections.abc import Sequence
from typing import Literal

FaultKind = Literal["drop", "latency"]


@dataclasses.dataclass(frozen=True)
class SoakParams:
    """What one soak run does.

    :ivar rounds: rounds of attach-all / faults / detach-all.
    :ivar volumes: volumes per round, attached and detached concurrently.
    :ivar targets: targets the volumes are spread over (round robin), so
        some sessions carry several LUNs and some detaches log out.
    :ivar portals: portals of the lab used per volume (at most the lab's).
    :ivar fault_rate: faults per minute the chaos thread aims at.
    :ivar faults_per_round: faults that must have happened in a round
        before its volumes are detached.
    :ivar fault_hold: seconds a fault stays in place before the read-back.
    :ivar latency_ms: delay a latency fault adds to the portal's replies.
    :ivar mib: MiB of checksummed data written to each volume.
    :ivar seed: the seed of every random choice of the run.
    """

    rounds: int = 5
    volumes: int = 16
    targets: int = 4
    portals: int = 4
    fault_rate: float = 6.0
    faults_per_round: int = 4
    fault_hold: float = 8.0
    latency_ms: int = 100
    mib: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "rounds": self.rounds >= 1,
            "volumes": 1 <= self.volumes <= 255,
            "targets": 1 <= self.targets <= self.volumes,
            # One fault at a time on a single portal: a second portal keeps
            # every volume reachable while one is cut.
            "portals": 2 <= self.portals <= 16,
            "fault_rate": self.fault_rate > 0,
            "faults_per_round": self.faults_per_round >= 0,
            "fault_hold": self.fault_hold > 0,
            "latency_ms": 1 <= self.latency_ms <= 10_000,
            "mib": 1 <= self.mib <= 64,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"bad soak parameter(s): {', '.join(bad)} in {self}")

    def rng(self, purpose: str, *keys: int) -> random.Random:
        """A generator for one purpose (``"chaos"``, ``"data"``...), seeded
        from the run's seed and the given keys (round, volume)."""
        return random.Random(f"{self.seed}:{purpose}:{':'.join(map(str, keys))}")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault: ``drop`` cuts the portal (iptables DROP both ways),
    ``latency`` delays its replies (netem)."""

    kind: FaultKind
    portal: int
    gap: float  # seconds the chaos thread waits before injecting it

    def __str__(self) -> str:
        return f"{self.kind} portal {self.portal}"


def fault_plan(params: SoakParams, rnd: int) -> list[Fault]:
    """The faults of round ``rnd``, in order; more than any round can use.

    Gaps are exponential around ``60 / fault_rate`` seconds (a Poisson
    process), so faults land at random points of attach, I/O and detach.
    """
    rng = params.rng("chaos", rnd)
    mean = 60.0 / params.fault_rate
    kinds: Sequence[FaultKind] = ("drop", "latency")
    return [
        Fault(
            kind=rng.choice(kinds),
            portal=rng.randrange(params.portals),
            gap=min(rng.expovariate(1 / mean), 3 * mean),
        )
        for _ in range(1000)
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SoakParams()
    for field in dataclasses.fields(SoakParams):
        if field.name == "seed":
            continue
        flag = "--" + field.name.replace("_", "-")
        value = getattr(defaults, field.name)
        parser.add_argument(flag, type=type(value), default=value, help=f"(default {value})")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of every random choice (default: time)"
    )


def from_arguments(args: argparse.Namespace) -> SoakParams:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(SoakParams)}
    if values["seed"] is None:
        values["seed"] = time.time_ns() % 1_000_000
    return SoakParams(**values)
