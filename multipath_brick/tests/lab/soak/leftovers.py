"""What a soak round may leave behind, read with the plain tools.

The initiator side is the lab's own judge (``Lab.leftovers``: sessions, node
and discovery records, sdX, multipath maps); added here are the WWIDs the
round taught multipathd (``/etc/multipath/wwids``) and the chaos thread's
own traces (iptables DROP rules and netem qdiscs in the target namespace),
so a fault that was never restored is caught too.
"""

from __future__ import annotations

import re

from ..api import Lab
from ..shell import read_file, run

WWIDS_FILE = "/etc/multipath/wwids"


def wwids() -> set[str]:
    """The WWIDs listed in multipath's wwids file (lines ``/WWID/``)."""
    return set(re.findall(r"^/([^/\s]+)/\s*$", read_file(WWIDS_FILE), re.MULTILINE))


def chaos_rules(lab: Lab) -> dict[str, list[str]]:
    """DROP rules and netem qdiscs left in the target namespace."""
    ns = ["ip", "netns", "exec", lab.config.netns]
    rules = run([*ns, "iptables", "-S"], check=False).stdout.splitlines()
    qdiscs = run([*ns, "tc", "qdisc", "show"], check=False).stdout.splitlines()
    return {
        "iptables_rules": [r for r in rules if "DROP" in r and not r.startswith("-P")],
        "netem_qdiscs": [q for q in qdiscs if "netem" in q],
    }


def round_leftovers(
    lab: Lab, wwids_before: set[str], round_wwids: set[str]
) -> dict[str, list[str]]:
    """Everything the round left, by kind; every list empty when clean."""
    found = dict(lab.leftovers())
    found["wwids"] = sorted((wwids() - wwids_before) & round_wwids)
    found.update(chaos_rules(lab))
    return found
