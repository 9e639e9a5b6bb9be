"""ISCSIMultipathConnector on the real stack: singular properties + discovery.

Singular properties name one portal; the connector asks it (sendtargets) for
the others. tgt answers sendtargets with the contacted portal only (see
tests/fixtures/README.md (c)), so against the lab's tgt target discovery can
only ever find one path. The Linux kernel target (LIO) advertises every
network portal of the target portal group, like the arrays do; the 4-portal
case therefore runs against an LIO target built here through configfs (no
targetcli needed): one fileio LUN, one TPG with 4 portals on a dummy
interface in the root namespace, an ACL for the lab's initiator with CHAP.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import run, wait_for

from .conftest import (
    ConnectorFactory,
    Note,
    dm_name,
    dm_uuid,
    host_state,
    read_sha256,
    volume_props,
    write_random,
)

LIO_IQN = "iqn.2024-01.org.multipath-brick.lab:lio0"
LIO_IFACE = "mpblio0"
LIO_ADDRESSES = [f"10.254.0.{k}" for k in range(1, 5)]
LIO_PORT = 3260
CONFIGFS = "/sys/kernel/config"
TARGET = f"{CONFIGFS}/target"
LIO_MODULES = ("target_core_mod", "target_core_file", "iscsi_target_mod")


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(value)


class LioTarget:
    """An LIO iSCSI target with one fileio LUN 0 behind 4 portals, via configfs."""

    def __init__(self, lab: Lab, backing: str, size_mb: int = 64) -> None:
        self.lab = lab
        self.backing = backing
        self.size_mb = size_mb
        self.portals = [f"{a}:{LIO_PORT}" for a in LIO_ADDRESSES]
        self.dev = f"{TARGET}/core/fileio_0/mpblio"
        self.tpg = f"{TARGET}/iscsi/{LIO_IQN}/tpgt_1"
        self.acl = f"{self.tpg}/acls/{lab.initiator_name}"

    def start(self) -> None:
        run(["modprobe", "-a", *LIO_MODULES])
        if not os.path.isdir(TARGET):
            run(["mount", "-t", "configfs", "configfs", CONFIGFS], check=False)
        if not os.path.isdir(TARGET):
            raise RuntimeError(f"{TARGET} missing after loading {LIO_MODULES}")
        cmds = [f"link add {LIO_IFACE} type dummy", f"link set {LIO_IFACE} up"]
        cmds += [f"addr add {a}/32 dev {LIO_IFACE}" for a in LIO_ADDRESSES]
        run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n")
        with open(self.backing, "wb") as f:
            f.truncate(self.size_mb << 20)
        # Backstore: a fileio device with a unit serial (the LUN's WWID source).
        os.makedirs(self.dev)
        _write(
            f"{self.dev}/control", f"fd_dev_name={self.backing},fd_dev_size={self.size_mb << 20}"
        )
        _write(f"{self.dev}/wwn/vpd_unit_serial", str(uuid.uuid4()))
        _write(f"{self.dev}/enable", "1")
        # Target, TPG 1, LUN 0 -> the device.
        os.makedirs(f"{self.tpg}/lun/lun_0")
        os.symlink(self.dev, f"{self.tpg}/lun/lun_0/mpblio_port")
        for portal in self.portals:
            os.makedirs(f"{self.tpg}/np/{portal}")
        # ACL for the lab's initiator, mapping LUN 0, with CHAP.
        os.makedirs(f"{self.acl}/lun_0")
        os.symlink(f"{self.tpg}/lun/lun_0", f"{self.acl}/lun_0/default")
        user, password = self.lab.chap
        _write(f"{self.acl}/auth/userid", user)
        _write(f"{self.acl}/auth/password", password)
        _write(f"{self.tpg}/attrib/authentication", "1")
        _write(f"{self.tpg}/attrib/generate_node_acls", "0")
        _write(f"{self.tpg}/enable", "1")

    def stop(self) -> list[str]:
        """Undo start(), whatever state it got to; returns what failed."""
        errors: list[str] = []

        def attempt(what: str, func: Callable[..., object], *args: str) -> None:
            try:
                func(*args)
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"{what}: {e}")

        if os.path.isdir(self.tpg):
            attempt("disable tpg", _write, f"{self.tpg}/enable", "0")
            attempt("unmap lun", os.unlink, f"{self.acl}/lun_0/default")
            attempt("rmdir acl lun", os.rmdir, f"{self.acl}/lun_0")
            attempt("rmdir acl", os.rmdir, self.acl)
            for portal in self.portals:
                attempt(f"rmdir np {portal}", os.rmdir, f"{self.tpg}/np/{portal}")
            attempt("unlink lun", os.unlink, f"{self.tpg}/lun/lun_0/mpblio_port")
            attempt("rmdir lun", os.rmdir, f"{self.tpg}/lun/lun_0")
            attempt("rmdir tpg", os.rmdir, self.tpg)
            attempt("rmdir target", os.rmdir, f"{TARGET}/iscsi/{LIO_IQN}")
        attempt("rmdir device", os.rmdir, self.dev)
        attempt("rmdir hba", os.rmdir, f"{TARGET}/core/fileio_0")
        run(["ip", "link", "del", LIO_IFACE], check=False)
        with contextlib.suppress(OSError):
            os.unlink(self.backing)
        return errors


@pytest.fixture
def lio(lab: Lab) -> Iterator[LioTarget]:
    target = LioTarget(lab, os.path.join(lab.config.lun_dir, "lio-lun0.img"))
    try:
        target.start()
    except Exception as e:  # noqa: BLE001 - reported as the skip reason
        errors = target.stop()
        pytest.skip(f"LIO target could not be built in this guest: {e}; cleanup: {errors}")
    yield target
    errors = target.stop()
    assert not errors, f"LIO teardown: {errors}"


def _paths_by_portal(info: dict[str, Any]) -> dict[str, str]:
    return {p["portal"]: p["state"] for p in info["paths"]}


def test_singular_discovery_finds_all_lio_portals(
    lab: Lab, lio: LioTarget, make_connector: ConnectorFactory, tmp_path, note: Note
) -> None:
    """Scenario 2: singular properties naming one LIO portal: discovery finds
    the TPG's 4 portals, the volume is attached through all of them, I/O
    works, and the detach removes every session, record and disk."""
    connector = make_connector(grace=10)
    props = volume_props(lab, 0, portals=lio.portals[:1], iqn=LIO_IQN, singular=True)
    assert "target_portals" not in props

    t0 = time.monotonic()
    info = connector.connect_volume(props)
    note("attach_seconds", round(time.monotonic() - t0, 2))
    note("path_states", _paths_by_portal(info))
    assert connector.wait_for_pending(timeout=120)

    assert sorted(_paths_by_portal(info)) == sorted(lio.portals), info["paths"]
    assert set(_paths_by_portal(info).values()) <= {"active", "pending"}, info["paths"]
    wwid = info["multipath_id"]
    assert wwid and wwid.startswith("36001405"), wwid  # LIO's NAA IEEE id
    dm = dm_name(info["path"])
    assert dm_uuid(dm) == f"mpath-{wwid}"

    def four() -> list[str] | None:
        slaves = lab.dm_slaves(dm)
        return slaves if len(slaves) == 4 else None

    try:
        slaves = wait_for(f"{dm} with 4 slaves", four, timeout=30)
    except TimeoutError:
        raise AssertionError(f"{lab.dm_slaves(dm)}\n{host_state()}") from None
    assert slaves == sorted(lab.disks_for_wwid(wwid))
    sessions = [ln for ln in lab.leftovers()["sessions"] if LIO_IQN in ln]
    assert sorted(ln.split()[2].split(",")[0] for ln in sessions) == sorted(lio.portals)
    expected = write_random(info["path"], str(tmp_path), 8)
    assert read_sha256(info["path"], 8) == expected

    connector.disconnect_volume(props, info)
    assert lab.dm_for_wwid(wwid) is None


def test_singular_discovery_tgt_one_portal(
    lab: Lab, make_connector: ConnectorFactory, tmp_path
) -> None:
    """Scenario 2 against tgt: tgt's sendtargets lists only the portal asked,
    so the volume attaches through that one path; the device works and the
    detach leaves nothing (no node or discovery record either)."""
    wwid = lab.add_lun(1, 64)
    connector = make_connector(grace=5)
    props = volume_props(lab, 1, portals=lab.portals[2:3], singular=True)

    info = connector.connect_volume(props)
    assert connector.wait_for_pending(timeout=60)

    assert _paths_by_portal(info) == {lab.portals[2]: "active"}, info["paths"]
    assert info["multipath_id"] == wwid
    dm = dm_name(info["path"])
    assert lab.dm_slaves(dm) == lab.disks_for_wwid(wwid) and len(lab.dm_slaves(dm)) == 1
    expected = write_random(info["path"], str(tmp_path), 8)
    assert read_sha256(info["path"], 8) == expected

    connector.disconnect_volume(props, info)
    assert lab.dm_for_wwid(wwid) is None
