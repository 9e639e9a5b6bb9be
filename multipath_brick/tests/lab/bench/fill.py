"""The volumes already present in ``lab_scaling``: LUNs of one target over the lab's portals.

The fill is not what the bench measures, only what the measured attach finds on
the host: 4 sessions to ``<lab iqn>-fill``, 4 disks per volume and one map each.
Two ways to get there (``--fill``):

``tools`` (:class:`ToolsFill`, the default)
    what the host needs and nothing more, with the plain tools: the records and
    the 4 logins of ``floor.sh login`` (node.startup and node.session.scan
    manual, CHAP), each batch's WWIDs written into multipathd's WWID file
    *before* its disks appear (``find_multipaths strict``: udev's ``multipath
    -u`` and multipathd then claim each new disk on its own uevent, so nobody
    runs ``multipath -a``, which reads every disk), then targeted scans of the
    batch's LUNs on each session, and a wait until every map holds its 4 paths
    and udev's queue is empty (or :data:`DRAIN_S` more). There is no per-path
    deadline: under TCG, with a hundred disks present, udev takes minutes for
    32 new ones, and that is only slow. A fill that makes no progress at all
    for :data:`STALL_S` stops with what it saw (udev's queue, the maps short
    of paths, the kernel log).
``library`` (:class:`LibraryFill`)
    multipath-brick's own attach, ``--batch`` volumes at once: the first try,
    whose per-path timeouts failed late fill paths from about 96 disks on.

Either fill is torn down at the end (:meth:`Fill.teardown`) and the bench
checks that the guest is left with nothing.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Sequence
from typing import Any

from multipath_brick.privileged.wwids_file import WwidsFile

from .. import initiator
from ..api import Lab
from ..props import volume_props
from ..shell import run
from .floor import Floor
from .libraries import Ours
from .run import in_threads
from .scenarios import LUN_MB
from .watch import MapWatcher

PATHS = 4
UDEV_QUEUE = "/run/udev/queue"
#: The guest's WWID file, edited as multipath-tools does (the daemon's own editor).
WWIDS = WwidsFile()
#: Seconds without a new disk or a new path in a map before a fill gives up.
STALL_S = 300.0
#: Seconds udev's queue is given to empty once a batch's maps are full.
DRAIN_S = 60.0
#: Kernel log lines that tell paths and sessions failing under the load.
KERNEL_EVENTS = {
    "failing_path": "Failing path",
    "reinstating_path": "Reinstating path",
    "ping_timeout": "ping timeout",
    "conn_error": "detected conn error",
}


def kernel_path_events() -> dict[str, int]:
    """How many lines of each :data:`KERNEL_EVENTS` kind the kernel has logged since boot."""
    log = run(["dmesg"], check=False).stdout
    return {k: log.count(text) for k, text in KERNEL_EVENTS.items()}


def udev_settle(limit: float = 30.0) -> None:
    """Until udev's queue is empty, at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while os.path.exists(UDEV_QUEUE) and time.monotonic() < deadline:
        time.sleep(0.1)


class FillStuck(RuntimeError):
    """The fill made no progress for :data:`STALL_S`; the message says what was pending."""


class Fill:
    """Volumes added ``batch`` at a time, each batch waited for until every map is full."""

    kind = ""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.iqn = f"{lab.iqn}-fill"
        self.wwids: list[str] = []
        #: One entry per batch: volumes present after it, and its seconds.
        self.batches: list[dict[str, Any]] = []
        lab.add_target(self.iqn, {}, chap=lab.chap)

    def fill_to(self, count: int, batch: int) -> float:
        """Attach fill volumes until ``count`` are present; seconds it took."""
        start = time.monotonic()
        while len(self.wwids) < count:
            t0 = time.monotonic()
            first = len(self.wwids) + 1
            luns = list(range(first, min(count, first + batch - 1) + 1))
            wwids = [self.lab.add_lun(lun, LUN_MB, iqn=self.iqn) for lun in luns]
            self._attach(luns, wwids)
            self.wwids += wwids
            drained = self._wait_full(wwids)
            took = round(time.monotonic() - t0, 1)
            disks = len(initiator.scsi_disks())
            kernel = kernel_path_events()
            self.batches.append(
                {"present": len(self.wwids), "disks": disks, "s": took}
                | {"udev_drained": drained, "kernel": kernel}
            )
            print(
                f"[fill] {self.kind}: {len(self.wwids)} volumes, {disks} disks "
                f"(LUNs {luns[0]}-{luns[-1]} in {took} s; udev queue "
                f"{'empty' if drained else 'still busy'}; kernel so far: {kernel})",
                flush=True,
            )
        return round(time.monotonic() - start, 1)

    def _attach(self, luns: Sequence[int], wwids: Sequence[str]) -> None:
        raise NotImplementedError

    def _wait_full(self, wwids: Sequence[str]) -> bool:
        """Until every map of ``wwids`` holds its paths and udev's queue is empty.

        :returns: whether udev's queue emptied; once the maps are full it is
            given :data:`DRAIN_S`: in the 64-volume run it never emptied (paths
            failed and reinstated all along, each a uevent of its map).
        """
        watcher = MapWatcher(wwids, time.monotonic())
        seen = (-1, -1)
        moved = time.monotonic()
        full_since: float | None = None
        while True:
            watcher.sample()
            if watcher.complete(PATHS):
                if not os.path.exists(UDEV_QUEUE):
                    return True
                full_since = full_since or time.monotonic()
                if time.monotonic() - full_since > DRAIN_S:
                    return False
            now = (len(watcher.events), len(initiator.scsi_disks()))
            if now != seen:
                seen, moved = now, time.monotonic()
            elif full_since is None and time.monotonic() - moved > STALL_S:
                raise FillStuck(self._stuck(watcher.events, wwids))
            time.sleep(1.0)

    def _stuck(self, events: Sequence[Sequence[Any]], wwids: Sequence[str]) -> str:
        slaves = {e[1]: e[3] for e in events}
        short = {w[-8:]: slaves.get(w, 0) for w in wwids if slaves.get(w, 0) < PATHS}
        kernel = run(["dmesg"], check=False).stdout.splitlines()[-8:]
        return (
            f"no progress for {STALL_S:.0f} s with {len(self.wwids)} volumes: "
            f"udev queue {'busy' if os.path.exists(UDEV_QUEUE) else 'empty'}, "
            f"{len(initiator.scsi_disks())} disks, maps short of paths (WWID tail: paths) "
            f"{short}; last kernel lines: {kernel}"
        )

    def teardown(self) -> list[str]:
        """Detach every fill volume and remove the fill target; what failed."""
        raise NotImplementedError


class ToolsFill(Fill):
    """The fill done with the plain tools (see the module's docstring)."""

    kind = "tools"

    def __init__(self, lab: Lab, floor: Floor) -> None:
        super().__init__(lab)
        self.floor = floor
        self.hosts: list[int] = []

    def _attach(self, luns: Sequence[int], wwids: Sequence[str]) -> None:
        if not self.hosts:
            self.hosts = self.floor.login(self.iqn, self.lab.portals)
        # As ``multipath -a`` writes them, under its lock; multipathd and
        # ``multipath -u`` read the file again for every new path.
        for w in wwids:
            WWIDS.add(w, 30.0)

        def scan(i: int) -> None:
            # Channel 0, target 0 (one target per iSCSI session), this LUN only.
            for lun in luns:
                with open(f"/sys/class/scsi_host/host{self.hosts[i]}/scan", "w") as f:
                    f.write(f"0 0 {lun}\n")

        in_threads(len(self.hosts), scan, "scan")

    def _session_luns(self) -> list[str]:
        """The fill sessions' SCSI devices (``.../H:C:T:L``)."""
        found = []
        for base in glob.glob("/sys/class/iscsi_session/session*"):
            try:
                with open(f"{base}/targetname", encoding="ascii") as f:
                    if f.read().strip() != self.iqn:
                        continue
            except OSError:
                continue
            found += glob.glob(f"{base}/device/target*/*:*:*:*")
        return found

    def teardown(self) -> list[str]:
        errors: list[str] = []
        for wwid in self.wwids:
            # The daemon removes the map without a path discovery of its own,
            # which ``multipath -f`` would do over every disk.
            for _ in range(20):
                if run(["multipathd", "del", "map", wwid], check=False).stdout.strip() == "ok":
                    break
                time.sleep(0.5)
            else:
                if run(["multipath", "-f", wwid], check=False, timeout=120).returncode:
                    errors.append(f"map {wwid} not removed")
        for dev in self._session_luns():
            try:
                with open(f"{dev}/delete", "w", encoding="ascii") as f:
                    f.write("1\n")
            except OSError as error:
                errors.append(f"delete {os.path.basename(dev)}: {error}")
        deadline = time.monotonic() + 120
        while self._session_luns() and time.monotonic() < deadline:
            time.sleep(0.5)
        if self.hosts:
            try:
                self.floor.logout(self.iqn, self.lab.portals)
            except RuntimeError as error:
                errors.append(str(error))
        for wwid in self.wwids:
            WWIDS.remove(wwid, 30.0)
        self.lab.remove_target(self.iqn)
        return errors


class LibraryFill(Fill):
    """The fill done by multipath-brick, ``batch`` volumes at once, and detached by it."""

    kind = "library"

    def __init__(self, lab: Lab, ours: Ours) -> None:
        super().__init__(lab)
        self.ours = ours
        self.attached: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def _props(self, lun: int) -> dict[str, Any]:
        return volume_props(self.lab, lun, iqn=self.iqn, volume_id=None)

    def _attach(self, luns: Sequence[int], wwids: Sequence[str]) -> None:
        def attach(i: int) -> None:
            props = self._props(luns[i])
            self.attached.append((props, self.ours.conn.connect_volume(props)))

        in_threads(len(luns), attach, "fill")

    def teardown(self) -> list[str]:
        errors: list[str] = []
        for props, info in self.attached:
            try:
                self.ours.conn.disconnect_volume(props, info)
            except Exception as error:  # noqa: BLE001 - reported, the others still go
                errors.append(f"detach LUN {props['target_luns'][0]}: {error}")
        self.lab.remove_target(self.iqn)
        return errors
