"""The soak's volumes: attach, checksummed write, read back, detach.

Every volume is driven by the library's ISCSIMultipathConnector exactly as a
caller would: ``connect_volume`` with Cinder-style properties (the helper the
other functional tests use), then I/O on the returned ``/dev/dm-N``, then
``disconnect_volume`` with the same properties and the ``device_info``.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import mmap
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..api import Lab
from ..props import volume_props
from ..shell import run
from .params import SoakParams
from .report import Tally

TARGET_PREFIX = "iqn.2024-01.org.multipath-brick.lab:soak"


class SoakVolume:
    """One LUN of a round and what the soak knows about it.

    ``digest`` is set while the volume is attached and holds known data; the
    chaos thread's read-back only touches volumes that have one. ``lock``
    keeps a read-back and the start of the detach apart.
    """

    def __init__(self, index: int, iqn: str, lun: int, wwid: str, props: dict[str, Any]) -> None:
        self.index = index
        self.name = f"vol{index} ({iqn} lun {lun})"
        self.wwid = wwid
        self.props = props
        self.lock = threading.Lock()
        self.info: dict[str, Any] | None = None
        self.digest: str | None = None


def create_volumes(lab: Lab, params: SoakParams) -> list[SoakVolume]:
    """Spread the round's LUNs over ``params.targets`` targets (the lab's
    own first), 32 MiB each, on fresh WWIDs (the lab gives every new LUN
    one), so a WWID a round leaves behind is seen as that round's."""
    portals = lab.portals[: params.portals]
    iqns = [lab.iqn] + [f"{TARGET_PREFIX}{t}" for t in range(1, params.targets)]
    for iqn in iqns[1:]:
        lab.add_target(iqn, chap=lab.chap)
    volumes = []
    for i in range(params.volumes):
        iqn = iqns[i % params.targets]
        lun = i // params.targets + 1
        wwid = lab.add_lun(lun, 32, iqn=iqn)
        props = volume_props(lab, lun, portals=portals, iqn=iqn)
        volumes.append(SoakVolume(i, iqn, lun, wwid, props))
    return volumes


class Fleet:
    """Drives one round's volumes through one shared connector."""

    def __init__(
        self, connector: Any, volumes: list[SoakVolume], params: SoakParams, tally: Tally, rnd: int
    ) -> None:
        self.connector = connector
        self.volumes = volumes
        self.params = params
        self.tally = tally
        self.rnd = rnd
        # What the chaos thread is doing now, for failure details.
        self.context: Callable[[], str] = lambda: "no fault"

    # --- phases ---------------------------------------------------------------
    def attach_all(self) -> None:
        self._each(self._attach, self.volumes)

    def verify_all(self, why: str) -> None:
        """Read back every volume that holds known data (after a fault)."""
        self._each(lambda v: self._verify(v, why), [v for v in self.volumes if v.digest])

    def detach_all(self) -> None:
        self._each(self._detach, self.volumes)

    def _each(self, work: Callable[[SoakVolume], None], volumes: Iterable[SoakVolume]) -> None:
        todo = list(volumes)
        if not todo:
            return
        with concurrent.futures.ThreadPoolExecutor(len(todo), "soak-vol") as pool:
            for future in [pool.submit(work, v) for v in todo]:
                future.result()  # workers record their own failures

    # --- one volume -----------------------------------------------------------
    def _attach(self, vol: SoakVolume) -> None:
        t0 = time.monotonic()
        try:
            info = self.connector.connect_volume(vol.props)
        except Exception as e:  # noqa: BLE001 - every cause is counted
            self.tally.failure(f"attach {type(e).__name__}", f"{vol.name}: {e}")
            return
        self.tally.took("attach", time.monotonic() - t0)
        self.tally.count("attaches")
        vol.info = info
        if info.get("multipath_id") != vol.wwid:
            self.tally.failure(
                "attach wrong map", f"{vol.name}: {info.get('multipath_id')} != {vol.wwid}"
            )
            return
        data = self.params.rng("data", self.rnd, vol.index).randbytes(self.params.mib << 20)
        try:
            write_direct(info["path"], data)
        except OSError as e:
            self._io_failure("write", vol, e, "attach")
            return
        self.tally.count("writes")
        with vol.lock:
            vol.digest = hashlib.sha256(data).hexdigest()

    def _verify(self, vol: SoakVolume, why: str) -> None:
        with vol.lock:
            if vol.digest is None or vol.info is None:
                return  # detaching since the list was made
            t0 = time.monotonic()
            try:
                got = read_direct(vol.info["path"], self.params.mib << 20)
            except OSError as e:
                self._io_failure("read", vol, e, why)
                return
            self.tally.took("read", time.monotonic() - t0)
            self.tally.count("reads")
            if hashlib.sha256(got).hexdigest() != vol.digest:
                self.tally.count("mismatches")
                self.tally.failure("data mismatch", f"{vol.name} after {why}")

    def _io_failure(self, op: str, vol: SoakVolume, error: OSError, why: str) -> None:
        """Count an I/O error by what the map shows now: an error while the
        map has no active path is an all-paths-down window (the lab's maps
        do not queue), anything else is a path-switching failure."""
        status = run(["dmsetup", "status", vol.wwid], check=False).stdout.strip()
        states = re.findall(r" \d+:\d+ ([AF]) ", status + " ")
        active = states.count("A")
        kind = "no active path" if not active else "with active paths"
        paths = ", ".join(f"{p['portal']}={p['state']}" for p in (vol.info or {}).get("paths", []))
        self.tally.failure(
            f"{op} {_errno(error)} ({kind})",
            f"{vol.name} after {why}, during {self.context()}: {error}; "
            f"map {active}/{len(states)} active: {status!r}; attach paths: {paths}",
        )

    def _detach(self, vol: SoakVolume) -> None:
        if vol.info is None:
            return  # the attach failed (counted) and left nothing to detach
        self._verify(vol, "the last fault, before detach")
        with vol.lock:
            vol.digest = None
        t0 = time.monotonic()
        try:
            self.connector.disconnect_volume(vol.props, vol.info)
        except Exception as e:  # noqa: BLE001 - every cause is counted
            self.tally.failure(f"detach {type(e).__name__}", f"{vol.name}: {e}")
            return
        self.tally.took("detach", time.monotonic() - t0)
        self.tally.count("detaches")
        vol.info = None


# --- O_DIRECT I/O: bypass the page cache, so a read-back really crosses a path.
def write_direct(device: str, data: bytes) -> None:
    """Write ``data`` at offset 0 with O_DIRECT, then fsync."""
    buf = _aligned(data)
    try:
        fd = os.open(device, os.O_WRONLY | os.O_DIRECT)
        try:
            done = os.pwritev(fd, [buf], 0)
            if done != len(data):
                raise OSError(errno.EIO, f"short write: {done} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        buf.close()


def read_direct(device: str, size: int) -> bytes:
    """Read ``size`` bytes at offset 0 with O_DIRECT."""
    buf = mmap.mmap(-1, size)  # page aligned, as O_DIRECT needs
    try:
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
        try:
            done = os.preadv(fd, [buf], 0)
        finally:
            os.close(fd)
        if done != size:
            raise OSError(errno.EIO, f"short read: {done} of {size} bytes")
        return bytes(buf)
    finally:
        buf.close()


def _aligned(data: bytes) -> mmap.mmap:
    buf = mmap.mmap(-1, len(data))
    buf.write(data)
    return buf


def _errno(e: OSError) -> str:
    return errno.errorcode.get(e.errno, "OSError") if e.errno else type(e).__name__
