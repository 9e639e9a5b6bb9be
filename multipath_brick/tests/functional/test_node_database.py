"""How the library writes node records, on the real open-iscsi.

Records of different targets are written two at a time (the machine's
node-record queue, ``inflight.node_records``):
every record must come out whole, with every setting we wrote (as iscsiadm
itself reads it back, and as the daemon's own read gives it), and deleting
them side by side must leave nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from multipath_brick import verbs
from multipath_brick.host.base import Host
from multipath_brick.inflight import NODE_DB_WRITERS, node_records
from multipath_brick.iscsi.iscsiadm import Iscsiadm, LoginTimeouts, node_settings
from multipath_brick.iscsi.properties import Chap, Target

from .conftest import ConnectorFactory, Note

TARGETS = 8
PORTALS = ("192.0.2.1:3260", "192.0.2.2:3260", "192.0.2.3:3260", "192.0.2.4:3260")
ROUNDS = 3


def _show(host: Host, target: Target) -> dict[str, str]:
    result = host.run(verbs.NodeShow(target.portal, target.iqn, "default"), timeout=60).check()
    settings = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            settings[name.strip()] = value.strip()
    return settings


def test_records_of_different_targets_written_side_by_side(
    make_connector: ConnectorFactory, note: Note
) -> None:
    host = make_connector().host
    records = node_records(host)
    iscsiadm = Iscsiadm(host, timeout=120)
    chap = Chap("records-user", "records-secret-0123")
    timeouts = LoginTimeouts(login_timeout=7, retries=3)
    settings = node_settings(chap, timeouts)
    targets = [
        Target(portal, f"iqn.2024-01.org.example:records{t}", 1)
        for t in range(TARGETS)
        for portal in PORTALS
    ]
    lock = threading.Lock()
    inside: list[str] = []
    most = 0
    errors: list[str] = []

    def in_turn(ticket: int | None, target: Target, work: Any) -> None:
        nonlocal most
        try:
            with records.turn(ticket, key=target.iqn):
                with lock:
                    assert target.iqn not in inside, "two writers on one target"
                    inside.append(target.iqn)
                    most = max(most, len(inside))
                try:
                    work(target)
                finally:
                    with lock:
                        inside.remove(target.iqn)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{target}: {error}")

    def all_at_once(ticket: int | None, work: Any) -> None:
        threads = [threading.Thread(target=in_turn, args=(ticket, t, work)) for t in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)

    for _ in range(ROUNDS):
        all_at_once(records.ticket(), lambda t: iscsiadm.create_node(t, "default", settings))
        assert errors == []
        for target in targets:
            shown = _show(host, target)
            assert shown["node.name"] == target.iqn
            assert shown["node.conn[0].address"] == target.portal.rsplit(":", 1)[0]
            assert shown["node.session.auth.authmethod"] == "CHAP"
            assert shown["node.session.auth.username"] == chap.username
            assert shown["node.session.auth.password"] == "********"  # set, and masked
            assert shown["node.session.scan"] == "manual"
            assert shown["node.startup"] == "manual"
            assert shown["node.conn[0].timeo.login_timeout"] == "7"
            assert shown["node.session.initial_login_retry_max"] == "3"
            # The daemon's own read of the file (NodeRead) says what iscsiadm says.
            read = iscsiadm.show_node(target, "default")
            assert read is not None and read.items() <= shown.items()
            assert read["node.session.auth.password"] == "********"
        all_at_once(None, lambda t: iscsiadm.delete_node(t, "default"))
        assert errors == []
    note("records_per_round", len(targets))
    note("most_writers_at_once", most)
    assert most == NODE_DB_WRITERS
