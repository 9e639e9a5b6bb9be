"""Connector scenarios that run unchanged on the FakeHost and on the real kernel.

Each scenario takes an :class:`Env`: the unit suite passes one built on
:class:`~multipath_brick.testing.FakeHost` (``tests/unit/test_scenarios.py``), the
functional suite one built on the QEMU lab (``tests/functional/test_scenarios.py``).
Everything a scenario checks, it reads through the connector's
:class:`~multipath_brick.host.base.Host` (sysfs), so a behaviour the fake claims is
a behaviour the real kernel is asked to show.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import pytest

from multipath_brick import ISCSIMultipathConnector, verbs
from multipath_brick.exception import AuthenticationError, NoUsablePathError
from multipath_brick.iscsi.iscsiadm import LoginTimeouts

MIB = 1024 * 1024
#: A target of some other program on the host, never logged in to.
OTHER_IQN = "iqn.2024-01.org.example:other-program"

#: Short login timeouts for scenarios with dead portals (real seconds on the lab,
#: scaled down on the fake).
SHORT = LoginTimeouts(login_timeout=3, retries=1)


class Env(Protocol):
    """What a scenario needs from where it runs."""

    portals: Sequence[str]

    def props(self, lun: int, *, password: str | None = None) -> dict[str, Any]:
        """Plural CHAP properties for a LUN of the main target, all portals."""

    def add_lun(self, lun: int, size_mb: int) -> str:
        """Create a LUN on the main target; its multipath WWID."""

    def resize_lun(self, lun: int, size_mb: int) -> None: ...

    def portal_down(self, index: int) -> None: ...

    def connector(
        self, *, grace: float = 5.0, timeouts: LoginTimeouts | None = None, multipath: bool = True
    ) -> ISCSIMultipathConnector:
        """A connector on this environment's host."""

    def leftovers(self) -> dict[str, Any]:
        """Sessions, node records, disks and maps left; empty when clean."""


def _dm(info: dict[str, Any]) -> str:
    return str(info["path"]).rsplit("/", 1)[1]


def slaves(connector: ISCSIMultipathConnector, dm: str) -> list[str]:
    return connector.host.list_dir(f"/sys/block/{dm}/slaves")


def sessions(connector: ISCSIMultipathConnector) -> list[str]:
    return [
        s for s in connector.host.list_dir("/sys/class/iscsi_session") if s.startswith("session")
    ]


def plural_attach_detach(env: Env) -> None:
    wwid = env.add_lun(1, 32)
    connector = env.connector()
    info = connector.connect_volume(env.props(1))
    dm = _dm(info)
    assert info["multipath_id"] == info["scsi_wwn"] == wwid
    assert connector.host.read_text(f"/sys/block/{dm}/dm/uuid").strip() == f"mpath-{wwid}"
    # A login slower than the grace (a busy emulated host) is pending, never failed.
    states = [p["state"] for p in info["paths"]]
    assert "active" in states and "failed" not in states, info["paths"]
    assert connector.check_valid_device(info["path"])
    assert connector.wait_for_pending(120)
    assert len(slaves(connector, dm)) == len(env.portals)
    connector.disconnect_volume(env.props(1), info)
    assert not connector.host.exists(f"/sys/block/{dm}")
    assert env.leftovers() == {}


def dead_portal(env: Env) -> None:
    env.add_lun(1, 32)
    env.portal_down(len(env.portals) - 1)
    connector = env.connector(grace=1.0, timeouts=SHORT)
    info = connector.connect_volume(env.props(1))
    states = [p["state"] for p in info["paths"]]
    assert "active" in states[:-1] and "failed" not in states[:-1], info["paths"]
    assert states[-1] in ("pending", "failed"), info["paths"]
    assert connector.wait_for_pending(120)
    # The dead portal never joins; every other path does.
    assert len(slaves(connector, _dm(info))) == len(env.portals) - 1
    connector.disconnect_volume(env.props(1), info)
    assert env.leftovers() == {}


def all_portals_dead(env: Env) -> None:
    env.add_lun(1, 32)
    for index in range(len(env.portals)):
        env.portal_down(index)
    connector = env.connector(grace=1.0, timeouts=SHORT)
    with pytest.raises(NoUsablePathError) as error:
        connector.connect_volume(env.props(1))
    assert not isinstance(error.value, AuthenticationError)
    assert len(error.value.failures) == len(env.portals)
    assert env.leftovers() == {}


def wrong_chap(env: Env) -> None:
    env.add_lun(1, 32)
    connector = env.connector()
    with pytest.raises(AuthenticationError) as error:
        connector.connect_volume(env.props(1, password="wrong-Passw0rd-1234"))
    assert "wrong-Passw0rd-1234" not in str(error.value)
    assert env.leftovers() == {}


def two_luns_share_sessions(env: Env) -> None:
    env.add_lun(1, 32)
    env.add_lun(2, 32)
    connector = env.connector()
    one = connector.connect_volume(env.props(1))
    two = connector.connect_volume(env.props(2))
    assert connector.wait_for_pending(120)
    assert len(sessions(connector)) == len(env.portals)
    connector.disconnect_volume(env.props(1), one)
    assert len(sessions(connector)) == len(env.portals)
    assert len(slaves(connector, _dm(two))) == len(env.portals)
    connector.disconnect_volume(env.props(2), two)
    assert env.leftovers() == {}


def extend(env: Env) -> None:
    env.add_lun(1, 32)
    connector = env.connector()
    info = connector.connect_volume(env.props(1))
    assert connector.wait_for_pending(120)
    env.resize_lun(1, 48)
    assert connector.extend_volume(env.props(1)) == 48 * MIB
    size = int(connector.host.read_text(f"/sys/block/{_dm(info)}/size")) * 512
    assert size == 48 * MIB
    connector.disconnect_volume(env.props(1), info)
    assert env.leftovers() == {}


def detach_is_idempotent(env: Env) -> None:
    env.add_lun(1, 32)
    connector = env.connector()
    info = connector.connect_volume(env.props(1))
    connector.disconnect_volume(env.props(1), info)
    connector.disconnect_volume(env.props(1), info)
    connector.disconnect_volume(env.props(2), None)  # never attached
    assert env.leftovers() == {}


def single_path_without_multipath(env: Env) -> None:
    env.add_lun(1, 32)
    connector = env.connector(multipath=False)
    info = connector.connect_volume(env.props(1))
    assert str(info["path"]).startswith("/dev/sd")
    assert len(sessions(connector)) == 1
    connector.disconnect_volume(env.props(1), info)
    assert env.leftovers() == {}


def concurrent_volumes(env: Env, volumes: int = 4, rounds: int = 2) -> None:
    wwids = {lun: env.add_lun(lun, 16) for lun in range(1, volumes + 1)}
    connector = env.connector()
    errors: list[BaseException] = []

    def worker(lun: int) -> None:
        try:
            for _ in range(rounds):
                info = connector.connect_volume(env.props(lun))
                assert info["multipath_id"] == wwids[lun]
                uuid = connector.host.read_text(f"/sys/block/{_dm(info)}/dm/uuid").strip()
                assert uuid == f"mpath-{wwids[lun]}"
                connector.disconnect_volume(env.props(lun), info)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(lun,)) for lun in wwids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert env.leftovers() == {}


def records_come_and_go(env: Env, rounds: int = 3) -> None:
    """Another program creates and deletes node records of its own target while we attach.

    iscsiadm finds a login's record by listing every record, and lists the
    directories without its lock: when one it listed is gone before it opens
    it, the login goes on but iscsiadm exits 6 (open-iscsi 2.1.8). No path
    may fail for that.
    """
    wwid = env.add_lun(1, 16)
    connector = env.connector()
    stop = threading.Event()
    errors: list[BaseException] = []

    def other_program() -> None:
        portals = ("192.0.2.1:3260", "192.0.2.2:3260")
        try:
            while not stop.is_set():
                for portal in portals:
                    connector.host.run(verbs.NodeNew(portal, OTHER_IQN, "default"), timeout=30)
                for portal in portals:
                    connector.host.run(verbs.NodeDelete(portal, OTHER_IQN, "default"), timeout=30)
                connector.host.sleep(0.05)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=other_program)
    thread.start()
    try:
        for _ in range(rounds):
            info = connector.connect_volume(env.props(1))
            assert info["multipath_id"] == wwid
            assert [p for p in info["paths"] if p["state"] == "failed"] == []
            connector.disconnect_volume(env.props(1), info)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert env.leftovers() == {}


ALL = (
    plural_attach_detach,
    dead_portal,
    all_portals_dead,
    wrong_chap,
    two_luns_share_sessions,
    extend,
    detach_is_idempotent,
    single_path_without_multipath,
    concurrent_volumes,
    records_come_and_go,
)
