"""Proves the lab itself, without the library: plain iscsiadm + multipath.

Logs in to every portal with CHAP, builds the multipath map the way the
library is meant to (multipath -a WWID, multipathd add path), writes and reads
back 32 MiB through /dev/dm-N, then tears everything down by hand and checks
nothing is left.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import run, wait_for

LUN = 1
SIZE_MB = 64
IO_MB = 32


def iscsiadm_node(lab: Lab, portal: str, *args: str, **kw):
    return run(
        ["iscsiadm", "-m", "node", "-T", lab.iqn, "-p", portal, "-I", "default", *args], **kw
    )


def login_all(lab: Lab) -> None:
    user, password = lab.chap
    for portal in lab.portals:
        iscsiadm_node(lab, portal, "-o", "new")
        for key, value in (
            ("node.session.auth.authmethod", "CHAP"),
            ("node.session.auth.username", user),
            ("node.session.auth.password", password),
        ):
            iscsiadm_node(lab, portal, "-o", "update", "-n", key, "-v", value)
        iscsiadm_node(lab, portal, "--login")


def logout_all(lab: Lab) -> None:
    for portal in lab.portals:
        iscsiadm_node(lab, portal, "--logout")
        iscsiadm_node(lab, portal, "-o", "delete")


def _checksum_dev(dev: str, nbytes: int) -> str:
    h = hashlib.sha256()
    fd = os.open(dev, os.O_RDONLY)
    try:
        left = nbytes
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            assert chunk, f"short read on {dev}"
            h.update(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return h.hexdigest()


def test_four_paths_chap_multipath_io(lab: Lab, tmp_path) -> None:
    wwid = lab.add_lun(LUN, SIZE_MB)
    login_all(lab)
    try:
        # One sdX per portal, all with the WWID the lab predicted.
        def all_disks() -> list[str] | None:
            found = lab.disks_for_wwid(wwid)
            return found if len(found) == len(lab.portals) else None

        disks = wait_for("4 SCSI disks", all_disks, timeout=60)
        tgt_side = [s for s in lab.target_sessions() if s["target"] == lab.iqn]
        assert len(tgt_side) == 4
        assert all(s["initiator"] == lab.initiator_name for s in tgt_side)

        # find_multipaths strict: no map until the WWID is whitelisted.
        assert lab.dm_for_wwid(wwid) is None
        run(["multipath", "-a", wwid])
        for d in disks:
            run(["multipathd", "add", "path", f"/dev/{d}"])

        def full_map() -> str | None:
            dm = lab.dm_for_wwid(wwid)
            return dm if dm and len(lab.dm_slaves(dm)) == len(disks) else None

        dm = wait_for("multipath map with 4 slaves", full_map, timeout=60)
        assert sorted(lab.dm_slaves(dm)) == sorted(disks)

        # 32 MiB through the map, read back with O_DIRECT-free reads after
        # dropping the page cache of the map.
        src = tmp_path / "src.bin"
        src.write_bytes(os.urandom(IO_MB << 20))
        expected = hashlib.sha256(src.read_bytes()).hexdigest()
        run(
            [
                "dd",
                f"if={src}",
                f"of=/dev/{dm}",
                "bs=1M",
                f"count={IO_MB}",
                "oflag=direct",
                "conv=fsync",
            ],
            timeout=300,
        )
        run(["blockdev", "--flushbufs", f"/dev/{dm}"])
        assert _checksum_dev(f"/dev/{dm}", IO_MB << 20) == expected

        # Tear down by hand: map, disks, sessions, records.
        run(["multipath", "-f", wwid], timeout=60)
        for d in disks:
            with open(f"/sys/block/{d}/device/delete", "w") as f:
                f.write("1")
    finally:
        logout_all_quiet(lab)
    run(["multipath", "-w", wwid], check=False)
    assert lab.leftovers() == {k: [] for k in lab.leftovers()}


def logout_all_quiet(lab: Lab) -> None:
    for portal in lab.portals:
        try:
            iscsiadm_node(lab, portal, "--logout", check=False)
            iscsiadm_node(lab, portal, "-o", "delete", check=False)
        except subprocess.SubprocessError:
            pass


def test_wrong_chap_is_exit_24(lab: Lab) -> None:
    lab.add_lun(LUN, SIZE_MB)
    portal = lab.portals[0]
    iscsiadm_node(lab, portal, "-o", "new")
    for key, value in (
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", lab.chap.user),
        ("node.session.auth.password", "wrong-secret-12"),
    ):
        iscsiadm_node(lab, portal, "-o", "update", "-n", key, "-v", value)
    proc = iscsiadm_node(lab, portal, "--login", check=False)
    iscsiadm_node(lab, portal, "-o", "delete")
    assert proc.returncode == 24, proc.stderr


@pytest.mark.parametrize("down", [1])
def test_portal_down_blocks_login(lab: Lab, down: int) -> None:
    lab.add_lun(LUN, SIZE_MB)
    lab.portal_down(down)
    portal = lab.portals[down]
    iscsiadm_node(lab, portal, "-o", "new")
    for key, value in (
        ("node.conn[0].timeo.login_timeout", "2"),
        ("node.session.initial_login_retry_max", "1"),
    ):
        iscsiadm_node(lab, portal, "-o", "update", "-n", key, "-v", value)
    proc = iscsiadm_node(lab, portal, "--login", check=False, timeout=120)
    iscsiadm_node(lab, portal, "-o", "delete")
    assert proc.returncode != 0
    lab.portal_up(down)
