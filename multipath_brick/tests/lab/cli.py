"""Command line of the functional-test lab.

Host commands (boot ONE guest; exit code = the guest command's):
  python -m multipath_brick.tests.lab run [--portals N] [-- PYTEST ARGS]
  python -m multipath_brick.tests.lab shell-cmd [--rw DIR] 'CMD'
  python -m multipath_brick.tests.lab capture [--part ifaces]  (refresh tests/fixtures)
  python -m multipath_brick.tests.lab demo      (attach/show/detach one volume)
  python -m multipath_brick.tests.lab bench [-- BENCH ARGS]
                                                 (bench/lab_attach.py: ours vs os-brick)
  python -m multipath_brick.tests.lab soak [-- SOAK ARGS]
                                                 (attach/detach under faults; see soak/)

Guest-only command (what the host commands run inside the guest):
  python -m multipath_brick.tests.lab guest {pytest|shell|demo|bench|soak} ...
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import guestcmd
from .config import GUEST_OUT_DIR

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.environ.get("MPB_LAB_OUT", "/var/tmp/mpb-lab/out")
FIXTURES_DIR = os.path.normpath(os.path.join(HERE, "..", "fixtures"))


# --------------------------------------------------------------------- host
def _host(
    args: argparse.Namespace, guest_args: list[str], extra_rw: Sequence[tuple[str, str]] = ()
) -> int:
    from . import vm

    try:
        python = os.path.abspath(sys.executable)
        vm.check_guest_visible(python, "python")
        vm.check_guest_visible(vm.REPO_ROOT, "repository")
        out = os.path.abspath(args.out)
        os.makedirs(out, exist_ok=True)
        exit_file = os.path.join(out, "guest_exit_code")
        for stale in ("guest_exit_code", "junit-functional.xml"):
            if os.path.exists(os.path.join(out, stale)):
                os.unlink(os.path.join(out, stale))
        argv = [
            python,
            "-m",
            "multipath_brick.tests.lab",
            "guest",
            "--portals",
            str(args.portals),
            *guest_args,
        ]
        rc = vm.boot(
            argv,
            rwdirs=[(GUEST_OUT_DIR, out), *extra_rw],
            env=vm.guest_env(python),
            cpus=args.cpus,
            memory=args.memory,
            timeout=args.timeout,
            log_path=os.path.join(out, "console.log"),
        )
    except vm.LabHostError as e:
        print(f"[lab] {e}", file=sys.stderr)
        return 2
    try:
        with open(exit_file, encoding="utf-8") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        print(
            "[lab] the guest command did not report an exit code (boot failure or crash?)",
            file=sys.stderr,
        )
        return rc if rc else 125


def cmd_run(args: argparse.Namespace) -> int:
    rc = _host(args, ["pytest", "--", *args.pytest_args])
    summary = junit_summary(os.path.join(os.path.abspath(args.out), "junit-functional.xml"))
    if summary is not None:
        print(f"[lab] junit: {summary}", flush=True)
    # In CI a functional run that executed nothing proves nothing: fail it.
    if rc == 0 and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        if summary is None or summary["tests"] - summary["skipped"] <= 0:
            print("[lab] CI: the functional suite ran no test (all skipped?)", flush=True)
            return 1
    return rc


def junit_summary(path: str) -> dict[str, int] | None:
    """tests/failures/errors/skipped totals of a junit xml, None if absent."""
    import xml.etree.ElementTree as ET  # noqa: S405 - our own file

    try:
        root = ET.parse(path).getroot()  # noqa: S314
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    keys = ("tests", "failures", "errors", "skipped")
    return {k: sum(int(s.get(k, "0")) for s in suites) for k in keys}


def cmd_shell(args: argparse.Namespace) -> int:
    rw = [(os.path.abspath(d), os.path.abspath(d)) for d in args.rw]
    return _host(args, ["shell", args.command], rw)


def cmd_demo(args: argparse.Namespace) -> int:
    rc = _host(args, ["demo"])
    print(f"[lab] demo {'OK' if rc == 0 else f'FAILED (exit {rc})'}", flush=True)
    return rc


def cmd_bench(args: argparse.Namespace) -> int:
    rest = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    rc = _host(args, ["bench", *rest])
    result = os.path.join(os.path.abspath(args.out), "lab_attach.json")
    if os.path.exists(result):
        print(f"[lab] raw numbers: {result}", flush=True)
    return rc


def cmd_soak(args: argparse.Namespace) -> int:
    rest = args.soak_args[1:] if args.soak_args[:1] == ["--"] else args.soak_args
    rc = _host(args, ["soak", *rest])
    print(f"[lab] soak {'OK' if rc == 0 else f'FAILED (exit {rc})'}", flush=True)
    return rc


#: ``capture --part``: which capture script refreshes which fixtures.
CAPTURE_SCRIPTS = {
    "all": "capture_fixtures.sh",
    "ifaces": "capture_ifaces.sh",
    "tpgt": "capture_tpgt.sh",
    "mapshow": "capture_mapshow.sh",
    "delete": "capture_delete.sh",
    "wwids": "capture_wwids.sh",
}


def cmd_capture(args: argparse.Namespace) -> int:
    script = os.path.join(HERE, CAPTURE_SCRIPTS[args.part])
    args.rw = [FIXTURES_DIR]
    args.command = f"bash {script} {FIXTURES_DIR}"
    return cmd_shell(args)


# --------------------------------------------------------------------- main
def parser() -> argparse.ArgumentParser:
    """Every command: the host ones boot a guest, ``guest`` runs inside it."""
    p = argparse.ArgumentParser(prog="python -m multipath_brick.tests.lab")
    sub = p.add_subparsers(dest="cmd", required=True)

    def host_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--portals", type=int, default=4)
        sp.add_argument(
            "--out", default=DEFAULT_OUT, help="host dir for junit xml, console log, timings"
        )
        sp.add_argument("--cpus", type=int, default=2)
        sp.add_argument("--memory", default="2G")
        sp.add_argument(
            "--timeout", type=float, default=2400, help="kill the guest after this many seconds"
        )

    sp = sub.add_parser("run", help="boot, set up, run pytest on the functional suite")
    host_opts(sp)
    sp.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("shell-cmd", help="boot, set up, run a bash command")
    host_opts(sp)
    sp.add_argument(
        "--rw", action="append", default=[], help="host dir made writable in the guest (same path)"
    )
    sp.add_argument("command")
    sp.set_defaults(func=cmd_shell)

    sp = sub.add_parser("capture", help="re-capture tests/fixtures from a real guest")
    host_opts(sp)
    sp.add_argument(
        "--part",
        choices=sorted(CAPTURE_SCRIPTS),
        default="all",
        help="all: capture_fixtures.sh; ifaces: capture_ifaces.sh (iscsiadm -m iface, netdevs); "
        "tpgt: capture_tpgt.sh (node records of one portal through two ifaces); "
        "mapshow: capture_mapshow.sh (multipathd show map json beside show paths); "
        "delete: capture_delete.sh (what a node record delete removes); "
        "wwids: capture_wwids.sh (what multipath -a/-w write to /etc/multipath/wwids)",
    )
    sp.set_defaults(func=cmd_capture)

    sp = sub.add_parser("demo", help="boot, set up, attach/show/use/detach one volume")
    host_opts(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("bench", help="boot, set up, run the lab attach bench (vs os-brick)")
    host_opts(sp)
    sp.add_argument("bench_args", nargs=argparse.REMAINDER)
    # os-brick's dead-portal attach alone takes ~2 minutes under stock timeouts.
    sp.set_defaults(func=cmd_bench, timeout=5400)

    sp = sub.add_parser("soak", help="boot, set up, run the soak (see soak/params.py)")
    host_opts(sp)
    sp.add_argument("soak_args", nargs=argparse.REMAINDER)
    # The documented full soak runs about half an hour under TCG.
    sp.set_defaults(func=cmd_soak, timeout=5400)

    sp = sub.add_parser("guest", help=argparse.SUPPRESS)
    sp.add_argument("--portals", type=int, default=4)
    sp.add_argument("mode", choices=["pytest", "shell", "demo", "bench", "soak"])
    sp.add_argument("rest", nargs=argparse.REMAINDER)
    sp.set_defaults(func=guestcmd.cmd_guest)

    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    return int(args.func(args))
