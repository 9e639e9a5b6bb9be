"""Lab attach benchmark: multipath-brick vs os-brick 7.1's ISCSIConnector, real kernel.

Runs inside the QEMU lab guest (tgt behind 4 portals with CHAP, iscsid, multipathd):

    python -m multipath_brick.tests.functional.lab bench [-- --repeat 3 ...]

Every scenario runs the same workload with both libraries, interleaved run by
run, each run on a fresh LUN (new WWID), attach then detach, then a check that
nothing is left (sessions, node/discovery records, sdX, maps) and a lab reset:

* 1, 2 and 4 portals, ``--latency-ms`` netem delay on every portal;
* 4 portals, one dead (iptables DROP before attach): multipath-brick with its
  default grace and login timeouts, os-brick with the lab's stock iscsid.conf
  login timeouts (15 s x 8 = ~120 s), so os-brick runs it ``--osbrick-dead-repeat``
  times only;
* ``--volumes`` volumes attached at once from as many threads (one connector per
  library, shared by the threads), over 4 portals: LUNs of one target
  (``luns``) and/or one target per volume (``targets``).

Reported: median attach seconds (os-brick/ours = how many times faster we
are), throughput of the concurrent attaches, the issue's targets, and for
multipath-brick a per-step breakdown (every privileged call timed through a
wrapping Host). Raw numbers go to ``--json``.

Both libraries run as root with a forked privsep daemon (no sudo, no
privsep-helper); os-brick's daemon gets the same thread pool size as ours
(``--osbrick-pool``, 0 keeps oslo.privsep's default: the CPU count) so that
the guest's 2 vCPUs do not cap os-brick's parallel logins.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run as a script: bench/ is not a package
    sys.path.insert(0, REPO_ROOT)

from multipath_brick.host.base import CommandResult  # noqa: E402
from multipath_brick.privileged.verbs import Command, NodeLogin, SysfsWrite  # noqa: E402
from multipath_brick.tests.functional.lab import in_lab_guest  # noqa: E402
from multipath_brick.tests.functional.lab.api import Lab  # noqa: E402
from multipath_brick.tests.functional.lab.demo import format_table, lab_props  # noqa: E402

LUN_MB = 64
OURS = "multipath-brick"
OSB = "os-brick"


# --- timing of every privileged call ------------------------------------------------
@dataclasses.dataclass
class Call:
    label: str
    start: float
    end: float
    thread: str


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    @contextmanager
    def timed(self, label: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.calls.append(
                Call(label, start, time.monotonic(), threading.current_thread().name)
            )

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


class TimingHost:
    """A Host that times every privileged call of the real one it wraps."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._rec = recorder

    def run(self, command: Command, *, timeout: float) -> CommandResult:
        with self._rec.timed(type(command).__name__):
            result: CommandResult = self._inner.run(command, timeout=timeout)
            return result

    def login_all(
        self, logins: Sequence[NodeLogin], *, timeout: float
    ) -> tuple[CommandResult, ...]:
        with self._rec.timed(f"login_all[{len(logins)}]"):
            result: tuple[CommandResult, ...] = self._inner.login_all(logins, timeout=timeout)
            return result

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        with self._rec.timed(type(write).__name__):
            self._inner.write(write, timeout=timeout)

    def read_text(self, path: str) -> str:
        text: str = self._inner.read_text(path)
        return text

    def list_dir(self, path: str) -> list[str]:
        names: list[str] = self._inner.list_dir(path)
        return names

    def exists(self, path: str) -> bool:
        return bool(self._inner.exists(path))

    def realpath(self, path: str) -> str:
        real: str = self._inner.realpath(path)
        return real

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def osbrick_label(cmd: Sequence[str]) -> str:
    """A short name for a command os-brick ran: 'iscsiadm update', 'tee .../scan'."""
    if not cmd:
        return "?"
    prog = os.path.basename(cmd[0])
    args = list(cmd[1:])
    if prog == "iscsiadm":
        for flag in ("--op", "-o"):
            if flag in args and args.index(flag) + 1 < len(args):
                return f"iscsiadm {args[args.index(flag) + 1]}"
        for word in ("--login", "--logout", "--rescan", "-R"):
            if word in args:
                return f"iscsiadm {word.lstrip('-')}"
        mode = (
            args[args.index("-m") + 1] if "-m" in args and args.index("-m") + 1 < len(args) else ""
        )
        return f"iscsiadm -m {mode}".strip()
    if prog == "tee" and args:
        return "tee " + "/".join(args[-1].split("/")[-1:])
    return " ".join([prog, *args[:1]])


# --- the two libraries ----------------------------------------------------------------
class Library:
    name = ""

    def __init__(self) -> None:
        self.recorder = Recorder()

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        raise NotImplementedError


class Ours(Library):
    name = OURS

    def __init__(self, grace: float) -> None:
        super().__init__()
        from multipath_brick import ISCSIMultipathConnector
        from multipath_brick.host.linux import LinuxHost
        from multipath_brick.privileged import start_daemon

        start_daemon(None)  # fork the privsep daemon now, outside any timing
        self.grace = grace
        self.conn = ISCSIMultipathConnector(
            root_helper=None,
            host=TimingHost(LinuxHost(), self.recorder),
            grace=grace,
            lock_path=tempfile.mkdtemp(prefix="mpb-bench-locks-"),
        )

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(props)
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(props, info)


class OsBrick(Library):
    name = OSB

    def __init__(self, privsep: str, pool: int) -> None:
        super().__init__()
        from oslo_concurrency import lockutils  # noqa: F401 - registers [oslo_concurrency]
        from oslo_config import cfg

        cfg.CONF(args=[], project="mpb-lab-bench", default_config_files=[])
        cfg.CONF.set_override(
            "lock_path", tempfile.mkdtemp(prefix="osbrick-locks-"), "oslo_concurrency"
        )
        import os_brick
        from os_brick import privileged
        from os_brick.initiator.connectors.iscsi import ISCSIConnector
        from os_brick.privileged import rootwrap
        from oslo_privsep import priv_context

        os_brick.setup(cfg.CONF)  # 7.x: sets [os_brick] lock_path from oslo_concurrency's
        if pool > 0:
            cfg.CONF.set_override("thread_pool_size", pool, "privsep_osbrick")
        self.pool = cfg.CONF.privsep_osbrick.thread_pool_size
        self.privsep = privsep
        for ctx in (privileged.default, privileged.brick_privsep_hide_output):
            if privsep == "inprocess":
                ctx.set_client_mode(False)
            else:
                # We are root: fork the daemon as oslo.privsep would after sudo
                # privsep-helper, without needing either.
                ctx.start(priv_context.Method.FORK)
        recorder = self.recorder

        def execute(*cmd: str, **kwargs: Any) -> Any:
            with recorder.timed(osbrick_label(cmd)):
                return rootwrap.execute(*cmd, **kwargs)

        self.conn = ISCSIConnector(root_helper=None, execute=execute, use_multipath=True)
        self.version = getattr(os_brick, "__version__", "")
        try:
            from importlib.metadata import version

            self.version = version("os-brick")
        except Exception:  # noqa: BLE001, S110 - cosmetic only
            pass

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(dict(props))
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(dict(props), info)


# --- one run ---------------------------------------------------------------------------
@dataclasses.dataclass
class Volume:
    props: dict[str, Any]
    wwid: str


def profile(calls: Sequence[Call], t0: float) -> list[dict[str, Any]]:
    """Calls grouped by label: count, summed and max seconds, first start, last end."""
    groups: dict[str, list[Call]] = {}
    for c in calls:
        groups.setdefault(c.label, []).append(c)
    out = []
    for label, cs in groups.items():
        out.append(
            {
                "call": label,
                "n": len(cs),
                "sum_s": round(sum(c.end - c.start for c in cs), 3),
                "max_s": round(max(c.end - c.start for c in cs), 3),
                "first_start_s": round(min(c.start for c in cs) - t0, 3),
                "last_end_s": round(max(c.end for c in cs) - t0, 3),
            }
        )
    return sorted(out, key=lambda g: g["first_start_s"])


def run_once(lib: Library, lab: Lab, volumes: Sequence[Volume]) -> dict[str, Any]:
    """Attach every volume (from one thread each when several), detach, check leftovers."""
    n = len(volumes)
    infos: list[dict[str, Any] | None] = [None] * n
    errors: list[str | None] = [None] * n
    own: list[float] = [0.0] * n
    barrier = threading.Barrier(n) if n > 1 else None

    def attach(i: int) -> None:
        if barrier is not None:
            barrier.wait()
        start = time.monotonic()
        try:
            infos[i] = lib.connect(volumes[i].props)
        except Exception as error:  # noqa: BLE001 - recorded per volume
            errors[i] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        own[i] = time.monotonic() - start

    lib.recorder.take()
    t0 = time.monotonic()
    if n == 1:
        attach(0)
    else:
        threads = [threading.Thread(target=attach, args=(i,), name=f"vol{i}") for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    attach_s = time.monotonic() - t0
    attach_calls = lib.recorder.take()

    states: list[str] = []
    for i, info in enumerate(infos):
        if info is None:
            continue
        got = info.get("multipath_id") or info.get("scsi_wwn")
        if got != volumes[i].wwid:
            errors[i] = errors[i] or f"WWID {got} != {volumes[i].wwid}"
        if not str(info.get("path", "")).startswith("/dev/dm-"):
            errors[i] = errors[i] or f"not a multipath device: {info.get('path')}"
        states += [p["state"] for p in info.get("paths") or ()]

    def detach(i: int) -> None:
        info = infos[i]
        if info is None:
            return
        try:
            lib.disconnect(volumes[i].props, info)
        except Exception as error:  # noqa: BLE001
            errors[i] = errors[i] or f"detach: {type(error).__name__}: {error}"
            traceback.print_exc()

    t1 = time.monotonic()
    if n == 1:
        detach(0)
    else:
        threads = [threading.Thread(target=detach, args=(i,), name=f"det{i}") for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    detach_s = time.monotonic() - t1
    lib.recorder.take()
    left = {k: v for k, v in lab.leftovers().items() if v}
    return {
        "attach_s": round(attach_s, 3),
        "per_volume_attach_s": [round(s, 3) for s in own],
        "detach_s": round(detach_s, 3),
        "path_states": {s: states.count(s) for s in sorted(set(states))},
        "errors": [e for e in errors if e],
        "leftovers": left,
        "profile": profile(attach_calls, t0),
    }


# --- scenarios ----------------------------------------------------------------------------
@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    portals: int
    dead: int | None = None
    volumes: int = 1
    layout: str = "luns"  # several volumes: LUNs of one target, or one target each


def prepare(lab: Lab, sc: Scenario, latency_ms: int) -> list[Volume]:
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
    chosen = list(range(sc.portals))
    for v in range(sc.volumes):
        if sc.layout == "targets" and sc.volumes > 1:
            iqn = f"{lab.iqn}-v{v}"
            wwid = lab.add_target(iqn, {1: LUN_MB}, chap=lab.chap)[1]
            props = lab_props(lab, 1, chosen)
            props["target_iqns"] = [iqn] * len(chosen)
        else:
            wwid = lab.add_lun(v + 1, LUN_MB)
            props = lab_props(lab, v + 1, chosen)
        volumes.append(Volume(props, wwid))
    return volumes


def median(runs: Sequence[dict[str, Any]], key: str = "attach_s") -> float | None:
    ok = [r[key] for r in runs if not r["errors"]]
    return round(statistics.median(ok), 3) if ok else None


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    ok = sorted((r for r in runs if not r["errors"]), key=lambda r: r["attach_s"])
    return ok[(len(ok) - 1) // 2] if ok else None


def fmt(x: float | None, unit: str = "") -> str:
    return "ERR" if x is None else f"{x:.2f}{unit}"


def states_text(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    st = run["path_states"]
    return "/".join(f"{st[k]}{k[0]}" for k in ("active", "pending", "failed") if st.get(k))


def print_profile(title: str, run: dict[str, Any]) -> None:
    print(f"\n  {title}: per-step breakdown of the median run ({run['attach_s']:.2f} s)")
    rows = [
        (
            g["call"],
            g["n"],
            f"{g['sum_s']:.2f}",
            f"{g['max_s']:.2f}",
            f"{g['first_start_s']:.2f}",
            f"{g['last_end_s']:.2f}",
        )
        for g in run["profile"]
    ]
    headers = ("CALL", "N", "SUM S", "MAX S", "FIRST START", "LAST END")
    table = format_table(headers, rows, (1, 2, 3, 4, 5))
    print("\n".join("    " + ln for ln in table.splitlines()), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    p.add_argument("--latency-ms", type=int, default=100, help="netem delay on every portal")
    p.add_argument("--grace", type=float, default=5.0, help="multipath-brick's grace")
    p.add_argument("--osbrick-dead-repeat", type=int, default=1)
    p.add_argument("--concurrent-repeat", type=int, default=1)
    p.add_argument("--volumes", type=int, default=8)
    p.add_argument(
        "--layouts", default="luns,targets", help="concurrent rows: luns and/or targets"
    )
    p.add_argument(
        "--scenarios",
        default="p1,p2,p4,dead,conc",
        help="subset of p1,p2,p4,dead,conc",
    )
    p.add_argument("--libs", default="ours,osbrick")
    p.add_argument("--osbrick-privsep", choices=["fork", "inprocess"], default="fork")
    p.add_argument("--osbrick-pool", type=int, default=32, help="0 = oslo.privsep default")
    p.add_argument("--json", default="", help="write raw results here")
    args = p.parse_args(argv)

    if not in_lab_guest():
        print(
            "this benchmark runs inside the lab guest: "
            "python -m multipath_brick.tests.functional.lab bench",
            file=sys.stderr,
        )
        return 2
    import logging

    logging.basicConfig(level=logging.WARNING, format="  [%(name)s] %(levelname)s %(message)s")
    lab = Lab.from_state()
    lab.reset()
    n_portals = len(lab.portals)
    if n_portals < 4:
        print("the lab needs 4 portals (--portals 4)", file=sys.stderr)
        return 2

    # Both privsep daemons are forked now, before any thread exists.
    libs: list[Library] = []
    wanted = args.libs.split(",")
    if "ours" in wanted:
        libs.append(Ours(args.grace))
    osb: OsBrick | None = None
    if "osbrick" in wanted:
        osb = OsBrick(args.osbrick_privsep, args.osbrick_pool)
        libs.append(osb)

    chosen = args.scenarios.split(",")
    scenarios: list[Scenario] = []
    lat = f"{args.latency_ms} ms" if args.latency_ms else "no delay"
    for n in (1, 2, 4):
        if f"p{n}" in chosen:
            title = f"{n} portal{'s' if n > 1 else ''}, {lat} each"
            scenarios.append(Scenario(f"p{n}", title, n))
    if "dead" in chosen:
        scenarios.append(Scenario("dead", f"4 portals, 1 dead, {lat}", 4, dead=3))
    if "conc" in chosen:
        for layout in args.layouts.split(","):
            what = "LUNs of 1 target" if layout == "luns" else "targets"
            title = f"{args.volumes} concurrent ({args.volumes} {what}) x 4 portals, {lat}"
            scenarios.append(
                Scenario(f"conc-{layout}", title, 4, volumes=args.volumes, layout=layout)
            )

    meta = {
        "latency_ms": args.latency_ms,
        "grace_s": args.grace,
        "repeat": args.repeat,
        "portals": lab.portals,
        "osbrick_version": osb.version if osb else None,
        "osbrick_privsep": args.osbrick_privsep,
        "osbrick_thread_pool": osb.pool if osb else None,
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
    }
    print(f"[bench] lab attach benchmark: {json.dumps(meta)}", flush=True)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    t_start = time.monotonic()
    for sc in scenarios:
        results[sc.key] = {lib.name: [] for lib in libs}
        for r in range(max(args.repeat, 1)):
            for lib in libs:
                if sc.volumes > 1:
                    runs_wanted = args.concurrent_repeat
                elif lib.name == OSB and sc.dead is not None:
                    runs_wanted = args.osbrick_dead_repeat
                else:
                    runs_wanted = args.repeat
                if r >= runs_wanted:
                    continue
                volumes = prepare(lab, sc, args.latency_ms)
                run = run_once(lib, lab, volumes)
                results[sc.key][lib.name].append(run)
                bad = run["errors"] or run["leftovers"]
                print(
                    f"[bench] {sc.key:<13} {lib.name:<15} run {r + 1}: attach "
                    f"{run['attach_s']:7.2f} s  detach {run['detach_s']:6.2f} s  "
                    f"paths {states_text(run)}"
                    + (f"  ERRORS {run['errors']}" if run["errors"] else "")
                    + (f"  LEFTOVERS {run['leftovers']}" if run["leftovers"] else ""),
                    flush=True,
                )
                if bad:
                    lab.reset()
    lab.reset()
    elapsed = time.monotonic() - t_start

    # --- the table ---------------------------------------------------------------
    def med(key: str, lib: str) -> float | None:
        return median(results.get(key, {}).get(lib, []))

    rows = []
    verdicts: dict[str, Any] = {}
    for sc in scenarios:
        ours_runs = results[sc.key].get(OURS, [])
        osb_runs = results[sc.key].get(OSB, [])
        m_ours, m_osb = median(ours_runs), median(osb_runs)
        ratio = f"{m_osb / m_ours:.2f}x" if m_ours and m_osb else "-"
        target = ""
        if sc.key == "p4" and med("p1", OURS) and m_ours:
            r4 = m_ours / (med("p1", OURS) or 1)
            target = f"4p/1p {r4:.2f}x (<=1.3x) {'MET' if r4 <= 1.3 else 'MISSED'}"
            verdicts["4p_over_1p"] = round(r4, 3)
        if sc.key == "dead" and m_ours is not None:
            base = med("p4", OURS)
            limit = (base or 0.0) + args.grace
            ok = m_ours <= limit
            target = f"<= 4p + grace = {limit:.1f} s {'MET' if ok else 'MISSED'}"
            verdicts["dead_within_grace"] = ok
        if sc.volumes > 1 and m_ours and m_osb:
            tp_ours, tp_osb = sc.volumes / m_ours, sc.volumes / m_osb
            target = (
                f"{tp_ours:.2f} vs {tp_osb:.2f} att/s = {tp_ours / tp_osb:.2f}x (>=3x) "
                f"{'MET' if tp_ours / tp_osb >= 3 else 'MISSED'}"
            )
            verdicts[f"{sc.key}_throughput_ratio"] = round(tp_ours / tp_osb, 3)
        rows.append(
            (
                sc.title,
                f"{fmt(m_ours)} ({len(ours_runs)}, {states_text(median_run(ours_runs))})",
                f"{fmt(m_osb)} ({len(osb_runs)}, {states_text(median_run(osb_runs))})",
                ratio,
                target,
            )
        )
    print()
    print(
        f"Attach time, seconds (median; runs, paths a=active p=pending f=failed) -- "
        f"kernel {meta['kernel']}, TCG, {meta['cpus']} vCPU; "
        f"os-brick {meta['osbrick_version']} (privsep {args.osbrick_privsep}, "
        f"pool {meta['osbrick_thread_pool']}); grace {args.grace} s"
    )
    print(
        format_table(
            (
                "SCENARIO",
                OURS,
                f"{OSB} {meta['osbrick_version'] or ''}".strip(),
                "OS-BRICK/OURS",
                "TARGET",
            ),
            rows,
            (3,),
        )
    )
    for sc in scenarios:
        mrun = median_run(results[sc.key].get(OURS, []))
        if mrun is not None:
            print_profile(f"{OURS} {sc.title}", mrun)
    for sc in scenarios:
        if sc.volumes > 1:
            mrun = median_run(results[sc.key].get(OSB, []))
            if mrun is not None:
                print_profile(f"{OSB} {sc.title}", mrun)
    print(f"\n[bench] done in {elapsed:.0f} s", flush=True)

    failures = [
        (sc.key, name, r["errors"], r["leftovers"])
        for sc in scenarios
        for name, runs in results[sc.key].items()
        for r in runs
        if r["errors"] or r["leftovers"]
    ]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {"meta": meta, "verdicts": verdicts, "results": results, "elapsed_s": elapsed},
                f,
                indent=1,
            )
        print(f"[bench] raw numbers in {args.json}", flush=True)
    for key, name, errs, left in failures:
        print(f"[bench] {key} {name}: errors {errs} leftovers {left}", flush=True)
    # Errors of our library fail the run; os-brick's leftovers are only reported.
    return 1 if any(name == OURS for _, name, _, _ in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
