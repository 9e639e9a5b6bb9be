"""What a lab benchmark records about its setting: the library's commit, iscsiadm's cost."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from ..api import Lab
from ..vm import REPO_ROOT


def git_describe() -> str:
    """The library's commit (and whether the checkout has changes), for the record."""

    def git(*args: str) -> str:
        argv = ["git", "-C", REPO_ROOT, *args]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=60
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + local changes' if dirty else ''}" if head else "unknown"


def iscsiadm_probe(lab: Lab) -> dict[str, Any]:
    """What one iscsiadm costs here, and whether one update can carry every setting.

    On a scratch node record (an IQN no target has): 7 settings (no secret:
    a password never goes on a command line, not even a scratch one) written with
    one ``iscsiadm -o update`` each (as the library does) vs all 7 as repeated
    ``-n/-v`` pairs of a single update; both read back with ``-o show``.
    """
    iqn = "iqn.2024-01.org.multipath-brick.bench:probe"
    node = ["iscsiadm", "-m", "node", "-T", iqn, "-p", lab.portals[0], "-I", "default"]
    settings = [
        ("node.startup", "manual"),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", "7"),
        ("node.session.initial_login_retry_max", "3"),
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", "probeuser"),
        ("node.conn[0].timeo.noop_out_interval", "5"),
    ]

    def timed_run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        return time.monotonic() - start, proc

    def applied() -> bool:
        shown = timed_run([*node, "-o", "show"])[1].stdout
        return all(f"{k} = {v}" in shown for k, v in settings)

    out: dict[str, Any] = {}
    out["true_s"] = round(timed_run(["true"])[0], 3)
    timed_run([*node, "-o", "new"])
    t = time.monotonic()
    for k, v in settings:
        timed_run([*node, "-o", "update", "-n", k, "-v", v])
    out["seven_updates_s"] = round(time.monotonic() - t, 3)
    out["seven_updates_applied"] = applied()
    timed_run([*node, "-o", "delete"])
    timed_run([*node, "-o", "new"])
    pairs = [a for k, v in settings for a in ("-n", k, "-v", v)]
    seconds, proc = timed_run([*node, "-o", "update", *pairs])
    out["one_update_s"] = round(seconds, 3)
    out["one_update_rc"] = proc.returncode
    out["one_update_applied"] = applied()
    timed_run([*node, "-o", "delete"])
    return out
