"""Two agent processes x 8 threads on one store: no lost rows, no double attach.

Each process has its own FakeHost (a fake cannot be shared between
processes), so a process re-attaches a shared volume that the other attached:
its own host lacks the device, as after a reboot. What is checked is what the
store and the per-volume locks promise: every row that should be there is,
each host attaches each volume once, and no two attaches of one volume ever
run at the same time, in any thread of any process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

import multipath_brick
from multipath_brick.agent import State, VolumeStore
from multipath_brick.tests.unit.agent_worker import THREADS


def test_two_processes_of_eight_threads_share_one_store(tmp_path):
    store = str(tmp_path / "volumes.db")
    locks = str(tmp_path / "locks")
    VolumeStore(store).close()
    names = ["p0", "p1"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(multipath_brick.__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "multipath_brick.tests.unit.agent_worker",
                store,
                locks,
                str(tmp_path / f"{name}.log"),
                name,
            ],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in names
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]

    rows = {row.vol_id: row for row in VolumeStore(store).rows()}
    expected = {f"shared-{n}" for n in range(4)} | {
        f"{name}-t{i}" for name in names for i in range(THREADS) if i % 2
    }
    assert set(rows) == expected
    assert all(row.state is State.ATTACHED for row in rows.values())

    intervals: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for name in names:
        per_host: dict[int, int] = defaultdict(int)
        with open(tmp_path / f"{name}.log", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                per_host[int(fields[0])] += 1
                intervals[int(fields[0])].append((float(fields[1]), float(fields[2])))
        # 8 threads asked for 4 shared volumes twice each: one attach per volume.
        assert {lun: per_host[lun] for lun in range(1, 5)} == {1: 1, 2: 1, 3: 1, 4: 1}
        assert all(per_host[lun] == 1 for lun in range(5, 5 + THREADS))
    for shared in range(1, 5):
        (_, first_end), (second_start, _) = sorted(intervals[shared])
        assert first_end <= second_start, f"two attaches of shared-{shared - 1} overlapped"
