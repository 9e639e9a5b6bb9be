"""What the lab's host commands run inside the guest: set up the lab, then one command.

``python -m multipath_brick.tests.lab guest {pytest|shell|demo|bench|soak} ...``;
the guest sees the checkout read-only at the host's path, with it on
``PYTHONPATH``, and writes its results to :data:`~.config.GUEST_OUT_DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .config import GUEST_OUT_DIR, LabConfig

FUNCTIONAL_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "functional")
)


def cmd_guest(args: argparse.Namespace) -> int:
    from . import guest

    cfg = LabConfig(portals=args.portals)
    rc = 3
    t0 = time.monotonic()
    timings: dict[str, object] = {}
    try:
        try:
            setup_timings = guest.setup(cfg)
        except Exception as e:  # report, then exit non-zero
            print(f"[lab] guest setup FAILED: {e}", flush=True)
            raise
        timings["setup"] = setup_timings
        print(
            f"[lab] guest setup done in {setup_timings['total']}s: {json.dumps(setup_timings)}",
            flush=True,
        )
        t1 = time.monotonic()
        if args.mode == "pytest":
            rc = _guest_pytest(args.rest)
        elif args.mode == "demo":
            from .demo import main as demo_main

            rc = demo_main()
        elif args.mode == "bench":
            rc = _guest_bench(args.rest)
        elif args.mode == "soak":
            from .soak.runner import main as soak_main

            rc = soak_main(args.rest[1:] if args.rest[:1] == ["--"] else args.rest)
        else:
            rc = _guest_shell(cfg, " ".join(args.rest))
        timings[args.mode] = round(time.monotonic() - t1, 2)
    finally:
        timings["guest_total"] = round(time.monotonic() - t0, 2)
        _write_out("timings.json", json.dumps(timings, indent=2) + "\n")
        _write_out("guest_exit_code", f"{rc}\n")
    return rc


def _guest_pytest(pytest_args: list[str]) -> int:
    import pytest

    if pytest_args and pytest_args[0] == "--":
        pytest_args = pytest_args[1:]
    argv = [
        "-p",
        "no:cacheprovider",  # the repo is read-only in the guest
        f"--junitxml={GUEST_OUT_DIR}/junit-functional.xml",
        "-rs",
    ]
    if not any(not a.startswith("-") and os.path.exists(a.split("::")[0]) for a in pytest_args):
        argv.append(FUNCTIONAL_DIR)
    return int(pytest.main(argv + pytest_args))


def _guest_bench(bench_args: list[str]) -> int:
    import subprocess

    if bench_args[:1] == ["--"]:
        bench_args = bench_args[1:]
    json_out = os.path.join(GUEST_OUT_DIR, "lab_attach.json")
    argv = [sys.executable, "-m", "multipath_brick.tests.lab.bench.lab_attach"]
    argv += ["--json", json_out, *bench_args]
    return subprocess.run(argv).returncode


def _guest_shell(cfg: LabConfig, command: str) -> int:
    import subprocess

    from .guest import export_env

    env = dict(os.environ, **export_env(cfg))
    return subprocess.run(["bash", "-c", command], env=env).returncode


def _write_out(name: str, text: str) -> None:
    try:
        with open(os.path.join(GUEST_OUT_DIR, name), "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        print(f"[lab] cannot write {name}: {e}", flush=True)
