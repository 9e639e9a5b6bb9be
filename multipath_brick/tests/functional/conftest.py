"""Fixtures for the real-kernel functional tests.

These tests only run inside the lab guest (``python -m
multipath_brick.tests.lab run``). Anywhere else every test is
skipped with the reason below: the host kernel has no SCSI/iSCSI/dm, and the
tests must never touch a real host's storage stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import pprint
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multipath_brick.tests.lab import in_lab_guest
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.props import volume_props as volume_props  # the tests' import
from multipath_brick.tests.lab.shell import read_file

IN_GUEST = in_lab_guest()
SKIP_REASON = (
    "functional tests need the lab guest (real kernel with iSCSI, dm-multipath, "
    "tgt; this kernel has none of them): run "
    "`python -m multipath_brick.tests.lab run`"
)
_HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--concurrency-rounds",
        type=int,
        default=None,
        help="rounds of test_connector_concurrency (the issue asks for 5; default in the test)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if str(item.path).startswith(_HERE + os.sep):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab() -> Lab:
    """The prepared lab (one per guest boot); see lab/api.py for the API."""
    if not IN_GUEST:
        pytest.skip(SKIP_REASON)
    lab = Lab.from_state()
    # Start from a clean host even if something ran before pytest.
    lab.reset()
    return lab


def _is_clean(left: dict[str, list[str]]) -> bool:
    return not any(left.values())


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest):
    """After every test: nothing may be left (sessions, node records,
    discovery records, sdX, multipath maps). The lab is then reset anyway so
    one failing test cannot break the next ones."""
    if not IN_GUEST:
        yield
        return
    lab: Lab = request.getfixturevalue("lab")
    yield
    left = lab.leftovers()
    errors = lab.reset()
    assert _is_clean(left), "leftovers after test:\n" + pprint.pformat(left)
    assert not errors, "lab reset errors:\n" + "\n".join(errors)


# --- helpers of the connector tests (test_connector_*.py) ----------------------


def dm_name(device_path: str) -> str:
    """'/dev/dm-3' -> 'dm-3'."""
    name = os.path.basename(os.path.realpath(device_path))
    assert name.startswith("dm-"), f"not a device-mapper device: {device_path}"
    return name


def dm_uuid(dm: str) -> str:
    with open(f"/sys/block/{dm}/dm/uuid", encoding="utf-8") as f:
        return f.read().strip()


def dev_size_bytes(dev: str) -> int:
    with open(f"/sys/block/{dev}/size", encoding="utf-8") as f:
        return int(f.read().strip()) * 512


def write_random(device: str, tmp_dir: str, mib: int, *, timeout: float = 300) -> str:
    """Write `mib` MiB of random data at the start of `device` with O_DIRECT
    (dd oflag=direct, then fsync); return the data's sha256."""
    src = os.path.join(tmp_dir, f"src-{os.path.basename(device)}-{os.getpid()}.bin")
    data = os.urandom(mib << 20)
    with open(src, "wb") as f:
        f.write(data)
    try:
        subprocess.run(
            [
                "dd",
                f"if={src}",
                f"of={device}",
                "bs=1M",
                f"count={mib}",
                "oflag=direct",
                "conv=fsync",
                "status=none",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    finally:
        os.unlink(src)
    return hashlib.sha256(data).hexdigest()


class BackgroundWrite:
    """``mib`` MiB of random data written to ``device`` by dd in the background,
    one 64 KiB O_DIRECT write at a time (then fsync), so a fault injected while
    it runs lands mid-I/O; :meth:`wait` fails the test if dd failed."""

    def __init__(self, device: str, tmp_dir: str, mib: int) -> None:
        data = os.urandom(mib << 20)
        self.mib = mib
        self.sha256 = hashlib.sha256(data).hexdigest()
        self._src = os.path.join(tmp_dir, f"bg-{os.path.basename(device)}-{os.getpid()}.bin")
        with open(self._src, "wb") as f:
            f.write(data)
        self.proc = subprocess.Popen(
            [
                "dd",
                f"if={self._src}",
                f"of={device}",
                "bs=64k",
                f"count={(mib << 20) // 65536}",
                "oflag=direct",
                "conv=fsync",
                "status=none",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 300) -> None:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        finally:
            os.unlink(self._src)
        assert self.proc.returncode == 0, f"dd failed: {err.decode()}"


def read_sha256(device: str, mib: int, *, timeout: float = 300) -> str:
    """sha256 of the first `mib` MiB of `device`, read with O_DIRECT (no page cache)."""
    proc = subprocess.run(
        ["dd", f"if={device}", "bs=1M", f"count={mib}", "iflag=direct", "status=none"],
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    assert len(proc.stdout) == mib << 20, f"short read on {device}: {len(proc.stdout)} bytes"
    return hashlib.sha256(proc.stdout).hexdigest()


ConnectorFactory = Callable[..., Any]
Note = Callable[[str, object], None]

# Measurements the connector tests note (attach time, path states...), by test
# id; written to the results directory as connector_notes.json at the end.
_NOTES: dict[str, dict[str, object]] = {}


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Note:
    """note(key, value): keep a measurement of this test for the run's report."""

    def add(key: str, value: object) -> None:
        _NOTES.setdefault(request.node.nodeid, {})[key] = value

    return add


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not (IN_GUEST and _NOTES):
        return
    from multipath_brick.tests.lab.config import GUEST_OUT_DIR

    try:
        with open(os.path.join(GUEST_OUT_DIR, "connector_notes.json"), "w") as f:
            json.dump(_NOTES, f, indent=2, default=str)
    except OSError:
        pass


@pytest.fixture
def make_connector() -> Iterator[ConnectorFactory]:
    """Build ISCSIMultipathConnectors on the real host (LinuxHost; as root the
    privsep daemon is started without a root helper). At teardown, background (pending)
    paths are waited for, so nothing a connector still does leaks into the
    leftovers check or the next test."""
    from multipath_brick.connector import ISCSIMultipathConnector

    made: list[ISCSIMultipathConnector] = []

    def make(**kwargs: Any) -> ISCSIMultipathConnector:
        connector = ISCSIMultipathConnector(**{"use_multipath": True, **kwargs})
        made.append(connector)
        return connector

    yield make
    for connector in made:
        assert connector.wait_for_pending(timeout=180), "background paths still running"


def wwids_file() -> list[str]:
    """The WWIDs in /etc/multipath/wwids."""
    text = read_file("/etc/multipath/wwids")
    return [line.strip("/") for line in text.splitlines() if line.startswith("/")]


def nothing_left(lab: Lab, wwid: str) -> None:
    """No session, record, disk, map or iface left, and the WWID forgotten."""
    left = {kind: items for kind, items in lab.leftovers().items() if items}
    assert not left, f"left behind: {left}\n{host_state()}"
    assert wwid not in wwids_file(), f"{wwid} still in /etc/multipath/wwids"


def host_state() -> str:
    """What the kernel and daemons show now, for assertion messages."""
    out = []
    for argv in (
        ["iscsiadm", "-m", "session"],
        ["multipathd", "show", "paths", "raw", "format", "%d %t %T %m"],
        ["multipath", "-ll"],
        ["dmsetup", "table"],
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        out.append(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
    with open("/etc/multipath/wwids", encoding="utf-8") as f:
        out.append("/etc/multipath/wwids:\n" + f.read())
    # A disk udev has not processed yet has no udev database entry.
    pending = []
    for disk in sorted(os.listdir("/sys/block")):
        if disk.startswith("sd"):
            with open(f"/sys/block/{disk}/dev", encoding="utf-8") as f:
                devno = f.read().strip()
            if not os.path.exists(f"/run/udev/data/b{devno}"):
                pending.append(disk)
    out.append(f"disks udev has not processed: {pending}")
    out.append("multipathd log, decisions only (last 150):\n" + "\n".join(_multipathd_decisions()))
    return "\n".join(out)


_DECISIONS = re.compile(
    r"orphan|domap|fail|delay|wait|udev|blacklist|not allowed|add path|creat|reload|adopt|wwid",
    re.IGNORECASE,
)


def _multipathd_decisions(last: int = 150) -> list[str]:
    from multipath_brick.tests.lab.config import MULTIPATHD_LOG

    try:
        with open(MULTIPATHD_LOG, encoding="utf-8", errors="replace") as f:
            lines = [line.rstrip() for line in f if _DECISIONS.search(line)]
    except OSError as e:
        return [f"(no log: {e})"]
    return lines[-last:]


def attach_every_path(
    lab: Lab, connector: Any, props: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Attach, then wait until every lab portal's disk is in the map: (device_info, dm-N)."""
    info = connector.connect_volume(props)
    assert connector.wait_for_pending(timeout=120)
    dm = dm_name(info["path"])
    wait_slaves(lab, dm, len(lab.portals))
    return info, dm


def wait_slaves(lab: Lab, dm: str, n: int, timeout: float = 30) -> list[str]:
    """Wait until the map has ``n`` slaves; fail with the host's state otherwise."""
    from multipath_brick.tests.lab.shell import wait_for

    def full() -> list[str] | None:
        slaves = lab.dm_slaves(dm)
        return slaves if len(slaves) == n else None

    try:
        return wait_for(f"{dm} with {n} slaves", full, timeout=timeout)
    except TimeoutError as e:
        raise AssertionError(f"{e}: slaves {lab.dm_slaves(dm)}\n{host_state()}") from None
