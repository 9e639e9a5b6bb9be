"""InFlight, the machine's node-record queue, and the waiting helpers.

Attach and detach share only an InFlight: neither imports the other. The
node-record queue is the machine's: every connector on it uses one queue.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from multipath_brick.host.linux import LinuxHost
from multipath_brick.inflight import node_records
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import PORTALS, connector_with, plural
from multipath_brick.tests.unit.test_package_layout import PACKAGE, imported
from multipath_brick.volume import Volume
from multipath_brick.waiting import Backoff, pauses, wait_until


def test_attach_and_detach_do_not_import_each_other() -> None:
    attach = imported(PACKAGE / "attach.py")
    detach = imported(PACKAGE / "detach.py")
    assert not any(name.startswith("multipath_brick.detach") for name in attach)
    assert not any(name.startswith("multipath_brick.attach") for name in detach)
    assert "multipath_brick.inflight.InFlight" in attach & detach


def test_one_node_record_queue_per_machine(host: FakeHost, tmp_path: Any) -> None:
    first = connector_with(host, tmp_path)
    second = connector_with(host, tmp_path)
    assert first._inflight.records is second._inflight.records is node_records(host)
    with FakeHost() as other:
        assert node_records(other) is not node_records(host)
    # Every LinuxHost drives this one machine, whatever its root.
    assert node_records(LinuxHost()) is node_records(LinuxHost(str(tmp_path)))
    assert node_records(LinuxHost()) is not node_records(host)


def test_each_connector_reports_its_own_pending_paths(host: FakeHost, tmp_path: Any) -> None:
    # The slow portal logs in after 2 s (real): still out when the attach returns.
    slow = LoginTimeouts(login_timeout=60, retries=1)
    patient = connector_with(host, tmp_path, grace=0.0, timeouts=slow)
    other = connector_with(host, tmp_path)
    host.set_latency(PORTALS[3], 40.0)
    info = patient.connect_volume(plural())
    pending = [p["state"] for p in info["paths"]].count("pending")
    assert pending >= 1
    assert other.wait_for_pending(0)  # not its attach
    report = patient.wait_for_pending(30)
    assert report and len(report.joined) + len(report.failed) == pending
    patient.disconnect_volume(plural(), info)


def test_forget_marks_an_attached_volume_gone(connector: Any) -> None:
    inflight = connector._inflight
    volume = Volume(0.0, 0.0)
    inflight.attached("36001405aabbccdd", volume)
    inflight.forget("36001405feedbeef")  # another volume: nothing to do
    assert not volume.is_gone()
    inflight.forget("36001405aabbccdd")
    assert volume.is_gone()
    inflight.forget("36001405aabbccdd")  # detached twice


def test_pauses_widen_to_the_most() -> None:
    assert list(itertools.islice(pauses(0.1, 0.25), 4)) == pytest.approx([0.1, 0.15, 0.225, 0.25])
    assert list(itertools.islice(pauses(0.01, 0.05, growth=2.0), 4)) == [0.01, 0.02, 0.04, 0.05]
    assert list(itertools.islice(pauses(0.5, 0.25), 2)) == [0.5, 0.5]  # never below the first


def test_wait_until_answers_the_first_true_look(host: FakeHost) -> None:
    answers = iter([None, "", "", "sdb"])
    assert wait_until(host, lambda: next(answers), 60.0, 0.001) == "sdb"


def test_wait_until_looks_once_more_at_the_deadline(host: FakeHost) -> None:
    looks: list[int] = []
    assert wait_until(host, lambda: looks.append(1), 0.0, 0.001) is None
    assert len(looks) == 1


def test_backoff_asks_later_and_later(host: FakeHost) -> None:
    asks = Backoff(host, 1000.0, 4000.0)
    assert asks.due()
    asks.asked()
    assert not asks.due() and asks.pause == 2000.0
    asks.asked()
    asks.asked()
    assert asks.pause == 4000.0
    asks.ask_after(0.0)
    assert asks.due() and asks.pause == 4000.0
