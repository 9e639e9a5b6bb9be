"""What one attach runs, counted on the FakeHost: programs started and daemon record verbs.

    python -m multipath_brick.tests.lab.bench.fake_processes [--portals 1,4,8]

Attaches and detaches one CHAP volume over N portals and prints, per N, the
``iscsiadm`` processes the attach started by operation, the other programs it
started, and the record verbs the privsep daemon did itself (no process). Every
process is CPU the host spends per path (about 0.1 to 0.2 CPU-seconds for an
``iscsiadm`` in the TCG lab, see the Performance page); the floor of that page
starts 3 ``iscsiadm`` per path (``-o new``, ``-o update``, ``--login``). The
counts do not depend on the machine: a table to read, nothing asserted.
"""

from __future__ import annotations

import argparse
import collections
import tempfile

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.testing import FakeHost

from .fakehost import GIB, plural_props

IQN = "iqn.2024-01.bench:processes"
CHAP = ("bench-user", "bench-secret-0123")
OPERATIONS = ("-o show", "-o new", "-o update", "--login")


def count(portals: int) -> tuple[collections.Counter[str], int]:
    """(processes of one attach by kind, daemon record verbs) over ``portals`` portals."""
    addresses = [f"10.8.{i}.2:3260" for i in range(1, portals + 1)]
    props = {
        **plural_props(IQN, addresses),
        "auth_method": "CHAP",
        "auth_username": CHAP[0],
        "auth_password": CHAP[1],
    }
    with FakeHost(time_scale=0) as host, tempfile.TemporaryDirectory() as locks:
        host.add_target(IQN, addresses, luns={1: GIB}, chap=CHAP)
        connector = ISCSIMultipathConnector(use_multipath=True, host=host, lock_path=locks)
        info = connector.connect_volume(props)
        connector.wait_for_pending()
        argvs = [" ".join(call[0]) for call in host.calls]
        connector.disconnect_volume(props, info)
    kinds: collections.Counter[str] = collections.Counter()
    records = 0
    for argv in argvs:
        if argv.startswith(("write-record", "read-record", "delete-record", "write-wwids")):
            records += 1
        elif argv.startswith("iscsiadm"):
            kinds[next((op for op in OPERATIONS if op in argv), "iscsiadm, other")] += 1
        else:
            kinds[argv.split()[0]] += 1
    return kinds, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portals", default="1,4,8", help="portal counts, comma-separated")
    args = parser.parse_args()
    columns = ("iscsiadm", *OPERATIONS, "other programs", "record verbs")
    print("  ".join(f"{c:>14}" for c in ("portals", *columns)))
    for n in (int(p) for p in args.portals.split(",")):
        kinds, records = count(n)
        iscsiadm = sum(kinds[op] for op in OPERATIONS) + kinds["iscsiadm, other"]
        other = sum(kinds.values()) - iscsiadm
        cells = (n, iscsiadm, *(kinds[op] for op in OPERATIONS), other, records)
        print("  ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
