"""Shared pieces of the agent's unit tests: hosts, connection infos, agents on a FakeHost."""

from __future__ import annotations

import os
from typing import Any

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.agent import ManagedVolumes, VolumeStore
from multipath_brick.host.base import Host
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import CHAP, FAST, GIB, IQN, PORTALS, plural

#: The oVirt feature's example connection info (a Kaminario K2, singular keys).
KAMINARIO_IQN = "iqn.2009-01.com.kaminario:storage.k2.22612"
KAMINARIO_PORTAL = "3.2.1.1:3260"
KAMINARIO = {
    "driver_volume_type": "iscsi",
    "data": {
        "target_lun": 26,
        "target_iqn": KAMINARIO_IQN,
        "target_portal": KAMINARIO_PORTAL,
        "target_discovered": "True",
    },
}
VOL = "01713ade-9688-43ff-a46c-0e2e35974dce"


def make_host(time_scale: float = 0.02) -> FakeHost:
    """A fake host with the 4-portal CHAP target (LUNs 1-8) and the Kaminario target."""
    host = FakeHost(time_scale=time_scale)
    host.add_target(IQN, PORTALS, luns={n: GIB for n in range(1, 9)}, chap=CHAP)
    host.add_target(KAMINARIO_IQN, [KAMINARIO_PORTAL], luns={26: GIB})
    return host


def iscsi(data: dict[str, Any]) -> dict[str, Any]:
    return {"driver_volume_type": "iscsi", "data": data}


def plural_info(lun: int = 1, **extra: Any) -> dict[str, Any]:
    """Plural connection info with CHAP, as Pure or 3PAR send it."""
    return iscsi(plural(lun=lun, **extra))


def agent(host: Host, directory: str, store: VolumeStore | None = None) -> ManagedVolumes:
    """A ManagedVolumes on ``host``, its store and locks under ``directory``.

    Each call is a new "process" as far as the connector goes (its own pending
    paths); the store file and the lock directory are shared.
    """
    connector = ISCSIMultipathConnector(
        use_multipath=True,
        host=host,
        settings=FAST,
        lock_path=os.path.join(directory, "connector-locks"),
    )
    return ManagedVolumes(
        connector,
        store=store or os.path.join(directory, "volumes.db"),
        lock_path=os.path.join(directory, "agent-locks"),
    )


def logins(host: FakeHost) -> int:
    return sum(1 for call in host.calls if "--login" in call[0])


def sessions_of(host: FakeHost, iqn: str = IQN) -> list[tuple[str, str]]:
    """(portal, iface) of each logged-in session to ``iqn``."""
    return sorted((s[1], s[3]) for s in host.sessions() if s[2] == iqn)
