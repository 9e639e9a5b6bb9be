"""One agent process for the store's concurrency test: 8 threads on a shared store.

Run as ``python -m multipath_brick.tests.unit.agent_worker STORE LOCKS LOG NAME``.
Every thread attaches a volume shared by all threads and processes
(``shared-<i % 4>``, LUN ``i % 4 + 1``) and one of its own (``NAME-t<i>``, LUN
``i + 5``), lists them, and (once every thread has attached) detaches its own
when ``i`` is even. Each
``connect_volume`` is logged to LOG as ``lun start end`` (CLOCK_MONOTONIC,
which every process shares).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.agent import ManagedVolumes, VolumeStore
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import CHAP, FAST, GIB, IQN, PORTALS, plural

THREADS = 8


class RecordingConnector(ISCSIMultipathConnector):
    """Writes down when each connect_volume ran (a real subclass, nothing patched)."""

    log: list[str]

    def connect_volume(self, connection_properties: dict[str, Any]) -> dict[str, Any]:
        start = time.monotonic()
        try:
            return super().connect_volume(connection_properties)
        finally:
            lun = connection_properties["target_luns"][0]
            self.log.append(f"{lun} {start} {time.monotonic()}\n")


def main(store_path: str, lock_path: str, log_path: str, name: str) -> int:
    with FakeHost(time_scale=0.02) as host:
        host.add_target(IQN, PORTALS, luns={n: GIB for n in range(1, 13)}, chap=CHAP)
        connector = RecordingConnector(
            use_multipath=True, host=host, settings=FAST, lock_path=os.path.join(lock_path, name)
        )
        connector.log = []
        volumes = ManagedVolumes(connector, store=VolumeStore(store_path), lock_path=lock_path)
        errors: list[BaseException] = []
        # Detaches start once this process's attaches are done: the detacher waits
        # for a deleted sdX by name, and the fake (like the kernel) gives a new
        # disk of a concurrent attach the freed name at once; that race is the
        # detacher's to fix, not something the store can show.
        attached = threading.Barrier(THREADS)

        def work(i: int) -> None:
            try:
                shared = {"driver_volume_type": "iscsi", "data": plural(lun=i % 4 + 1)}
                own = {"driver_volume_type": "iscsi", "data": plural(lun=i + 5)}
                volumes.attach_volume(f"shared-{i % 4}", shared)
                volumes.attach_volume(f"{name}-t{i}", own)
                volumes.volumes_info([f"shared-{i % 4}", f"{name}-t{i}"])
                attached.wait(timeout=120)
                if i % 2 == 0:
                    volumes.detach_volume(f"{name}-t{i}")
            except BaseException as error:  # noqa: BLE001 - reported to the test
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with open(log_path, "w", encoding="utf-8") as f:
            f.writelines(connector.log)
        for error in errors:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
