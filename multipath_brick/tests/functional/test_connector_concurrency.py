"""ISCSIMultipathConnector on the real stack: many volumes at once.

8 volumes (6 LUNs of the lab's target and one LUN on each of two extra
targets, all behind the same 4 portals) are attached and detached by 8
threads sharing one connector, for several rounds. The threads start each
round together, so attaches of one volume overlap detaches of another on the
same sessions: the per-record and per-WWID locks are what keeps a detach from
logging out a session another volume is being scanned on.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any

import pytest

from multipath_brick.tests.lab.api import Lab

from .conftest import ConnectorFactory, Note, dm_name, dm_uuid, host_state, volume_props

# Rounds: the issue asks for 5. On an idle 2-core host one round (8 attaches
# and 8 detaches at once) takes about 60 s under TCG; `--concurrency-rounds N`
# changes the count.
DEFAULT_ROUNDS = 5
THREADS = 8
MARK = 4096


def _marker(name: str, rnd: int) -> bytes:
    return f"{name} round {rnd}\n".encode().ljust(MARK, b".")


def _write_read_marker(device: str, data: bytes) -> bytes:
    """Write one direct 4 KiB block at offset 0 and read it back (O_DIRECT
    needs an aligned buffer: mmap gives a page-aligned one)."""
    import mmap

    buf = mmap.mmap(-1, MARK)
    try:
        buf.write(data)
        fd = os.open(device, os.O_RDWR | os.O_DIRECT)
        try:
            os.pwritev(fd, [buf], 0)
            os.fsync(fd)
            buf.seek(0)
            buf.write(b"\0" * MARK)
            os.preadv(fd, [buf], 0)
        finally:
            os.close(fd)
        return bytes(buf[:MARK])
    finally:
        buf.close()


def test_eight_volumes_concurrently(
    lab: Lab, make_connector: ConnectorFactory, note: Note, request: pytest.FixtureRequest
) -> None:
    """Scenario 9: 8 threads, one volume each, attach + check + detach per
    round: every attach returns its own volume's map (dm uuid and
    multipath_id = that LUN's WWID, a marker written through it reads back),
    and nothing is left after the last round."""
    volumes: list[tuple[str, dict[str, Any], str]] = []
    for lun in range(1, 7):
        wwid = lab.add_lun(lun, 32)
        volumes.append((f"{lab.iqn} lun {lun}", volume_props(lab, lun), wwid))
    for k in (1, 2):
        iqn = f"iqn.2024-01.org.multipath-brick.lab:extra{k}"
        wwids = lab.add_target(iqn, {1: 32}, chap=lab.chap)
        volumes.append((f"{iqn} lun 1", volume_props(lab, 1, iqn=iqn), wwids[1]))
    assert len(volumes) == THREADS
    rounds: int = request.config.getoption("--concurrency-rounds", None) or DEFAULT_ROUNDS

    connector = make_connector(grace=10)
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []
    attach_times: list[float] = []
    detach_times: list[float] = []
    round_ends: list[list[float]] = [[] for _ in range(rounds)]
    lock = threading.Lock()
    state: list[str] = []

    def worker(name: str, props: dict[str, Any], wwid: str) -> None:
        try:
            for rnd in range(rounds):
                barrier.wait(timeout=600)
                t0 = time.monotonic()
                info = connector.connect_volume(props)
                took = time.monotonic() - t0
                dm = dm_name(info["path"])
                problems = []
                if info["multipath_id"] != wwid:
                    problems.append(f"multipath_id {info['multipath_id']} != {wwid}")
                if dm_uuid(dm) != f"mpath-{wwid}":
                    problems.append(f"{dm} uuid {dm_uuid(dm)} != mpath-{wwid}")
                if any(p["state"] == "failed" for p in info["paths"]):
                    problems.append(f"failed paths: {info['paths']}")
                if problems:
                    with lock:
                        if not state:
                            state.append(host_state())
                mark = _marker(name, rnd)
                if _write_read_marker(info["path"], mark) != mark:
                    problems.append(f"marker read back from {dm} differs")
                t1 = time.monotonic()
                connector.disconnect_volume(props, info)
                detached = time.monotonic() - t1
                with lock:
                    attach_times.append(took)
                    detach_times.append(detached)
                    round_ends[rnd].append(time.monotonic())
                    errors.extend(f"{name} round {rnd}: {p}" for p in problems)
        except threading.BrokenBarrierError:
            return  # another worker failed first and said why
        except Exception:  # noqa: BLE001 - reported below, with the others
            with lock:
                errors.append(f"{name}: {traceback.format_exc()}")
                if not state:
                    state.append(host_state())  # the first failure's host view
            barrier.abort()

    threads = [
        threading.Thread(target=worker, args=v, name=f"vol{i}") for i, v in enumerate(volumes)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    total = time.monotonic() - start

    note("rounds", rounds)
    note("total_seconds", round(total, 1))
    note("round_end_seconds", [round(max(e) - start, 1) if e else None for e in round_ends])
    if attach_times:
        note("attach_seconds_max", round(max(attach_times), 2))
        note("attach_seconds_mean", round(sum(attach_times) / len(attach_times), 2))
        note("detach_seconds_max", round(max(detach_times), 2))
        note("detach_seconds_mean", round(sum(detach_times) / len(detach_times), 2))
    assert not any(t.is_alive() for t in threads), "worker threads hung"
    assert not errors, "\n".join(errors + state)
    assert len(attach_times) == THREADS * rounds
    for _, _, wwid in volumes:
        assert lab.dm_for_wwid(wwid) is None
        assert lab.disks_for_wwid(wwid) == []
